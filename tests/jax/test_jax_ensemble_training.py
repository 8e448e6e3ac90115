"""mrnn_jax.train.train on an Ensemble: each member trains as if alone; resuming is exact.

As tests/torch/test_torch_ensemble_training.py, for the JAX backend. The
optimiser clips the global gradient norm before Adam, so the test also
shows that the clip is each member's own (``member_optimiser``). Equivalence
(float64): every member's arrays, readout and per-step losses equal those of
the same network trained alone by ``train``, to atol 1e-12 / rtol 1e-10 (the
batched matmul may sum in another order). Resuming after an interruption is
compared bit for bit with a run never interrupted.
"""

import json
import os

import jax
import numpy as np
import optax
import pytest

import mrnn_core
from mrnn_core import MRNNConfigError, training
from mrnn_core.tasks import make_task
from mrnn_core.training import RunMismatchError
from mrnn_jax import ElmanmRNN, Ensemble, Readout, mRNN
from mrnn_jax.train import train

ATOL, RTOL = 1e-12, 1e-10
SEEDS = (3, 5, 11)
TAUS = (50.0, 80.0, 120.0)
# one object, so every run shares its compiled step; max_norm small enough to clip
OPTIMISER = optax.chain(optax.clip_by_global_norm(0.05), optax.adam(0.01))
TASK = make_task("flip_flop", steps=10, p_pulse=0.2, dtype="float64")
SETTINGS = dict(batch_size=4, optimizer=OPTIMISER, seed=7, progress=False)


def _spec(units=6):
    return (mrnn_core.NetworkSpec().with_recurrent_region("ctx", units).with_input_region("u", 3)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))


def _members(kind="leaky", n=len(SEEDS), units=6):
    """Members that differ in seed and tau, with noise (float64: the session enables x64)."""
    cls = {"leaky": mRNN, "elman": ElmanmRNN}[kind]
    out = []
    for seed, tau in zip(SEEDS[:n], TAUS[:n]):
        dyn = mrnn_core.Dynamics(kind=kind, activation="tanh", tau=tau, noise_level_act=0.1,
                                 noise_level_inp=0.1)
        out.append(cls.from_checkpoint(mrnn_core.Checkpoint.initialise(_spec(units), dyn, seed)))
    return out


def _readouts(models):
    return [Readout(m, "ctx", 3, seed=20 + e) for e, m in enumerate(models)]


def _rate_l2(hs):
    return 1e-2 * (hs ** 2).mean()


def _assert_tree_close(a, b, **tolerance):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerance)


def _assert_tree_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


# Compiling a step dominates the time, so every test runs the same ensemble
# (leaky, E = 3, readouts, regularizer) and shares one compiled step; the
# torch tests cover Elman members and no readout.
def test_each_member_trains_as_if_alone():
    models = _members()
    readouts = _readouts(models)
    result = train(Ensemble.from_models(models), TASK, readout=readouts, steps=4,
                   regularizer=_rate_l2, **SETTINGS)
    assert result.member_history.shape == (4, len(SEEDS))
    np.testing.assert_allclose(result.history, result.member_history.sum(axis=1),
                               rtol=1e-14, atol=0)
    for e, member in enumerate(result.model.members()):
        alone = train(models[e], TASK, readout=readouts[e], steps=4, regularizer=_rate_l2,
                      **SETTINGS)
        np.testing.assert_allclose(result.member_history[:, e], alone.history, rtol=RTOL, atol=ATOL)
        _assert_tree_close(member, alone.model, rtol=RTOL, atol=ATOL)
        _assert_tree_close(result.readout[e], alone.readout, rtol=RTOL, atol=ATOL)
    # the members did train: the weights moved
    assert not np.array_equal(np.asarray(result.model.members()[0].W_rec), np.asarray(models[0].W_rec))


class _Stop(Exception):
    pass


def _stop_at(step):
    def callback(done, loss, folder):
        if done == step:
            raise _Stop
    return callback


def _run(run_dir, steps=8, **kwargs):
    models = _members()
    settings = dict(SETTINGS, steps=steps, run_dir=run_dir, checkpoint_every=2, keep=2,
                    regularizer=_rate_l2, **kwargs)
    return train(Ensemble.from_models(models), TASK, readout=_readouts(models), **settings)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    whole = _run(tmp_path / "whole")
    with pytest.raises(_Stop):
        _run(tmp_path / "cut", callback=_stop_at(5), callback_every=1)  # step 5: after checkpoint 4
    with open(tmp_path / "cut" / training.HISTORY) as f:
        assert json.load(f)["step"] == 4
    resumed = _run(tmp_path / "cut", resume=True)
    assert resumed.step == whole.step == 8
    assert resumed.history == whole.history
    assert np.array_equal(resumed.member_history, whole.member_history)
    _assert_tree_equal((resumed.model, resumed.readout), (whole.model, whole.readout))
    # the optimiser states too: the last checkpoints' files are identical
    for name in ("training.npz", "network_0.npz", "network_2.npz"):
        with open(os.path.join(resumed.last_checkpoint, name), "rb") as f, \
                open(os.path.join(whole.last_checkpoint, name), "rb") as g:
            assert f.read() == g.read(), name
    with open(tmp_path / "cut" / training.HISTORY) as f, open(tmp_path / "whole" / training.HISTORY) as g:
        assert json.load(f) == json.load(g)


def test_checkpoints_hold_every_member_and_reload(tmp_path):
    result = _run(tmp_path, steps=2)
    assert result.last_checkpoint == os.path.join(tmp_path, "checkpoints", "step-000000002")
    paths = training.member_network_paths(result.last_checkpoint, len(SEEDS))
    assert [os.path.basename(p) for p in paths] == ["network_0.npz", "network_1.npz", "network_2.npz"]
    _assert_tree_equal(Ensemble.from_checkpoints(paths), result.model)
    for e, path in enumerate(paths):
        _assert_tree_equal(Readout.from_checkpoint(mrnn_core.Checkpoint.load(path)), result.readout[e])
    with open(tmp_path / training.HISTORY) as f:
        record = json.load(f)
    assert np.array_equal(record["member_loss"], result.member_history)
    assert record["loss"] == result.history


def test_bad_readouts_and_mismatched_runs_are_refused(tmp_path):
    models = _members(n=2)
    ens = Ensemble.from_models(models)
    one = Readout(models[0], "ctx", 3, seed=1)
    with pytest.raises(MRNNConfigError, match=r"readout: an ensemble of 2 members takes a list"):
        train(ens, TASK, readout=one, steps=1, **SETTINGS)
    with pytest.raises(MRNNConfigError, match=r"expected 2 readouts, one per member, got 3"):
        train(ens, TASK, readout=[one, one, one], steps=1, **SETTINGS)
    with pytest.raises(MRNNConfigError, match=r"readout\[1\]: expected a readout like readout\[0\]"):
        train(ens, TASK, readout=[one, Readout(models[1], "ctx", 2, seed=1)], steps=1, **SETTINGS)

    _run(tmp_path, steps=2)                            # an ensemble of 3
    with pytest.raises(RunMismatchError, match=r"trained an ensemble of 3 members; train got an "
                                               r"ensemble of 2"):
        train(ens, TASK, readout=_readouts(models), steps=4, run_dir=tmp_path, resume=True,
              **SETTINGS)
    with pytest.raises(RunMismatchError, match=r"trained an ensemble of 3 members; resuming it "
                                               r"needs that Ensemble"):
        train(models[0], TASK, readout=one, steps=4, run_dir=tmp_path, resume=True, **SETTINGS)

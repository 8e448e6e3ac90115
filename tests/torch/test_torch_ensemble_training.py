"""mrnn_torch.train.train on an Ensemble: each member trains as if alone; resuming is exact.

Equivalence (float64): after a few Adam steps every member's parameters,
readout and per-step losses equal those of the same network trained alone
by ``train`` with the same settings, to atol 1e-12 / rtol 1e-10 (the
batched matmul may sum in another order, and Adam's normalisation carries
such rounding into the update). Resuming after an interruption is compared
bit for bit with a run never interrupted.
"""

import json
import os

import numpy as np
import pytest
import torch

import mrnn_core
from mrnn_core import MRNNConfigError, training
from mrnn_core.tasks import make_task
from mrnn_core.training import RunMismatchError
from mrnn_torch import ElmanmRNN, Ensemble, Readout, mRNN
from mrnn_torch.train import train

ATOL, RTOL = 1e-12, 1e-10
SEEDS = (3, 5, 11)
TAUS = (50.0, 80.0, 120.0)


def _spec(units=6):
    return (mrnn_core.NetworkSpec().with_recurrent_region("ctx", units).with_input_region("u", 3)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))


def _members(kind="leaky", n=len(SEEDS), units=6):
    """Fresh float64 members (each a different seed and tau), built the same way every call."""
    cls = mRNN if kind == "leaky" else ElmanmRNN
    out = []
    for seed, tau in zip(SEEDS[:n], TAUS[:n]):
        dyn = mrnn_core.Dynamics(kind=kind, activation="tanh", tau=tau, noise_level_act=0.1,
                                 noise_level_inp=0.1)
        ckpt = mrnn_core.Checkpoint.initialise(_spec(units), dyn, seed)
        out.append(cls.from_checkpoint(ckpt, device="cpu", dtype=torch.float64))
    return out


def _readouts(models):
    return [Readout(m, "ctx", 3, seed=20 + e, dtype=torch.float64) for e, m in enumerate(models)]


TASK = make_task("flip_flop", steps=10, p_pulse=0.2)
SETTINGS = dict(batch_size=4, lr=0.01, seed=7, progress=False)


def _rate_l2(hs):
    return 1e-2 * (hs ** 2).mean()


# without a readout the rates are the outputs: 3 units for the 3 flip-flop bits
@pytest.mark.parametrize("kind,with_readout,units", [("leaky", True, 6), ("elman", False, 3)])
def test_each_member_trains_as_if_alone(kind, with_readout, units):
    models = _members(kind, units=units)
    readouts = _readouts(models) if with_readout else None
    result = train(Ensemble.from_models(models), TASK, readout=readouts, steps=4,
                   regularizer=_rate_l2, **SETTINGS)
    assert result.member_history.shape == (4, len(SEEDS))
    np.testing.assert_allclose(result.history, result.member_history.sum(axis=1),
                               rtol=1e-14, atol=0)
    for e, alone_model in enumerate(_members(kind, units=units)):
        alone_readout = _readouts(_members(kind, units=units))[e] if with_readout else None
        alone = train(alone_model, TASK, readout=alone_readout, steps=4, regularizer=_rate_l2,
                      **SETTINGS)
        np.testing.assert_allclose(result.member_history[:, e], alone.history, rtol=RTOL, atol=ATOL)
        trained = result.model.members()[e].state_dict()
        for key, value in alone_model.state_dict().items():
            np.testing.assert_allclose(trained[key].numpy(), value.numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"member {e}: {key}")
        if with_readout:
            for key, value in alone_readout.state_dict().items():
                np.testing.assert_allclose(result.readout[e].state_dict()[key].numpy(),
                                           value.numpy(), rtol=RTOL, atol=ATOL)
    # the members did train: the parameters moved
    assert not torch.equal(result.model.members()[0].W_rec, _members(kind, units=units)[0].W_rec)


class _Stop(Exception):
    pass


def _stop_at(step):
    def callback(done, loss, folder):
        if done == step:
            raise _Stop
    return callback


def _run(run_dir, steps=8, **kwargs):
    models = _members()
    ens = Ensemble.from_models(models)
    readouts = _readouts(models)
    optimiser = torch.optim.Adam(list(ens.parameters())
                                 + [p for r in readouts for p in r.parameters()], lr=0.01)
    settings = dict(SETTINGS, optimizer=optimiser, steps=steps, run_dir=run_dir,
                    checkpoint_every=2, keep=2, **kwargs)
    return train(ens, TASK, readout=readouts, **settings), optimiser


def test_resume_after_interruption_is_bit_identical(tmp_path):
    whole, whole_opt = _run(tmp_path / "whole")
    with pytest.raises(_Stop):
        _run(tmp_path / "cut", callback=_stop_at(5), callback_every=1)  # step 5: after checkpoint 4
    with open(tmp_path / "cut" / training.HISTORY) as f:
        assert json.load(f)["step"] == 4
    resumed, resumed_opt = _run(tmp_path / "cut", resume=True)   # fresh objects, from step 4
    assert resumed.step == whole.step == 8
    assert resumed.history == whole.history
    assert np.array_equal(resumed.member_history, whole.member_history)
    for a, b in [(resumed.model, whole.model)] + list(zip(resumed.readout, whole.readout)):
        for key, value in b.state_dict().items():
            assert torch.equal(a.state_dict()[key], value), key
    for a, b in zip(resumed_opt.state.values(), whole_opt.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in b)
    with open(tmp_path / "cut" / training.HISTORY) as f, open(tmp_path / "whole" / training.HISTORY) as g:
        assert json.load(f) == json.load(g)


def test_checkpoints_hold_every_member_and_reload(tmp_path):
    result, _ = _run(tmp_path, steps=4)
    E = len(SEEDS)
    assert result.last_checkpoint == os.path.join(tmp_path, "checkpoints", "step-000000004")
    paths = training.member_network_paths(result.last_checkpoint, E)
    assert [os.path.basename(p) for p in paths] == ["network_0.npz", "network_1.npz", "network_2.npz"]
    loaded = Ensemble.from_checkpoints(paths, dtype=torch.float64)
    for key, value in result.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    for e, path in enumerate(paths):
        back = Readout.from_checkpoint(mrnn_core.Checkpoint.load(path), dtype=torch.float64)
        for key, value in result.readout[e].state_dict().items():
            assert torch.equal(back.state_dict()[key], value), key
    with open(tmp_path / training.HISTORY) as f:
        record = json.load(f)
    assert np.array_equal(record["member_loss"], result.member_history)
    assert record["loss"] == result.history


def test_bad_readouts_and_mismatched_runs_are_refused(tmp_path):
    models = _members(n=2, units=3)
    ens = Ensemble.from_models(models)
    one = Readout(models[0], "ctx", 3, seed=1, dtype=torch.float64)
    before = [p.detach().clone() for p in ens.parameters()]
    with pytest.raises(MRNNConfigError, match=r"readout: an ensemble of 2 members takes a list"):
        train(ens, TASK, readout=one, steps=1, **SETTINGS)
    with pytest.raises(MRNNConfigError, match=r"expected 2 readouts, one per member, got 1"):
        train(ens, TASK, readout=[one], steps=1, **SETTINGS)
    with pytest.raises(MRNNConfigError, match=r"readout\[1\] is the same object as readout\[0\]"):
        train(ens, TASK, readout=[one, one], steps=1, **SETTINGS)
    assert all(torch.equal(a, b) for a, b in zip(before, ens.parameters()))  # untouched

    train(ens, TASK, steps=2, run_dir=tmp_path / "ens", checkpoint_every=2, **SETTINGS)
    with pytest.raises(RunMismatchError, match=r"trained an ensemble of 2 members; train got an "
                                               r"ensemble of 3"):
        train(Ensemble.from_models(_members(units=3)), TASK, steps=4, run_dir=tmp_path / "ens",
              resume=True, **SETTINGS)
    with pytest.raises(RunMismatchError, match=r"trained an ensemble of 2 members; resuming it "
                                               r"needs that Ensemble"):
        train(_members(n=1, units=3)[0], TASK, steps=4, run_dir=tmp_path / "ens", resume=True, **SETTINGS)
    train(models[0], TASK, steps=2, run_dir=tmp_path / "one", checkpoint_every=2, **SETTINGS)
    with pytest.raises(RunMismatchError, match=r"trained a single model; train got an ensemble"):
        train(ens, TASK, steps=4, run_dir=tmp_path / "one", resume=True, **SETTINGS)

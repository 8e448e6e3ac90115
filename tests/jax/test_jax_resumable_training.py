"""mrnn_jax.train.train: a run killed anywhere and resumed ends bit-identical to one never killed.

As tests/torch/test_torch_resumable_training.py, for the JAX backend: a child
process trains a tiny network (float64, as this test session runs JAX) and
SIGKILLs itself at a randomly chosen event (drawing a batch, writing a
checkpoint file, renaming one into place); fresh children resume the run
until it finishes. Its trained arrays, optax state and loss history must
equal, bit for bit, those of the same run never killed (run in this
process, same environment). A damaged or partial newest checkpoint falls
back to the previous one with a warning. Every child runs on CPU.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_core
from mrnn_core import training
from mrnn_core.tasks import make_task
from mrnn_core.training import CheckpointFallbackWarning
from mrnn_jax import Readout, mRNN
from mrnn_jax.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS, EVERY = 24, 4

SETUP = """
import optax
import mrnn_core
from mrnn_core.tasks import make_task
from mrnn_jax import Readout, mRNN

def setup():
    task = make_task("flip_flop", steps=12, p_pulse=0.2, dtype="float64")
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 6).with_input_region("u", 3)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))
    ckpt = mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(activation="tanh"), seed=3)
    model = mRNN.from_checkpoint(ckpt)
    settings = dict(readout=Readout(model, "ctx", 3, seed=4), steps=%(steps)d, batch_size=4,
                    optimizer=optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)),
                    checkpoint_every=%(every)d, keep=2, resume=True, seed=7, progress=False)
    return model, task, settings
""" % {"steps": STEPS, "every": EVERY}

CHILD = textwrap.dedent("""
    import jax
    jax.config.update("jax_enable_x64", True)
""") + SETUP + textwrap.dedent("""
    import os, signal, sys
    from mrnn_core import training
    from mrnn_jax.train import train

    run_dir, kill_at = sys.argv[1], int(sys.argv[2])
    events = [0]

    def ticking(f):
        def wrapped(*args, **kwargs):
            events[0] += 1
            if events[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return f(*args, **kwargs)
        return wrapped

    # The events a kill may land on: drawing a batch, fsyncing a finished file
    # of a checkpoint, and every rename (files into place, the folder itself).
    training._digest = ticking(training._digest)
    os.replace = ticking(os.replace)
    model, task, settings = setup()
    object.__setattr__(task, "sample", ticking(task.sample))
    train(model, task, run_dir=run_dir, **settings)
""")


def uninterrupted(run_dir):
    """The same run in this process (float64, as in the children), never killed."""
    namespace = {}
    exec(SETUP, namespace)
    model, task, settings = namespace["setup"]()
    return train(model, task, run_dir=run_dir, **settings)


def run_child(run_dir, kill_at: int) -> int:
    # The children share a persistent compilation cache: only the first compiles.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "backends")]),
           "PYTHONWARNINGS": "error::UserWarning", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(run_dir.parent / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(kill_at)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, -9), done.stderr
    return done.returncode


def newest_arrays(run_dir):
    """``(state.json, arrays of training.npz)`` of the newest checkpoint."""
    newest = training.list_checkpoints(run_dir)[0][1]
    with np.load(os.path.join(newest, "training.npz")) as data:
        return training.read_state(newest), {k: data[k] for k in data.files}


def test_killed_at_random_points_and_resumed_equals_an_uninterrupted_run(tmp_path):
    straight = uninterrupted(tmp_path / "straight")
    # More than 60 events happen in a life of 24 steps with a checkpoint every 4:
    # two lives end at a random one (a resumed life may finish first), a last
    # life finishes the run.
    kills = [int(k) for k in np.random.default_rng().integers(1, 60, size=2)]
    assert run_child(tmp_path / "killed", kills[0]) == -9, f"kill at event {kills[0]}"
    if run_child(tmp_path / "killed", kills[1]) == -9:
        assert run_child(tmp_path / "killed", 0) == 0
    state_a, arrays_a = newest_arrays(tmp_path / "straight")
    state_b, arrays_b = newest_arrays(tmp_path / "killed")
    assert state_a["step"] == state_b["step"] == STEPS
    assert state_b["history"] == state_a["history"] == straight.history, f"kill points {kills}"
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert arrays_a[key].dtype == arrays_b[key].dtype, key
        np.testing.assert_array_equal(arrays_b[key], arrays_a[key], err_msg=f"{key}, kills {kills}")
    assert arrays_a["param_00000"].dtype == np.float64
    assert training.read_history(tmp_path / "killed") == straight.history
    assert len(training.list_checkpoints(tmp_path / "killed")) == 2  # keep=2


# In-process tests: a tiny network, a few steps.

SPEC = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 5).with_input_region("u", 2)
        .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))
TASK = make_task("flip_flop", steps=8, n_bits=2, p_pulse=0.2, dtype="float64")


def build():
    ckpt = mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(activation="tanh"), seed=1)
    model = mRNN.from_checkpoint(ckpt)
    return model, Readout(model, "ctx", 2, seed=2)


def run(run_dir=None, steps=12, **kwargs):
    model, readout = build()
    settings = dict(steps=steps, batch_size=3, lr=0.05, readout=readout, run_dir=run_dir,
                    checkpoint_every=4, seed=5, progress=False)
    return train(model, TASK, **{**settings, **kwargs})


def assert_same_network(a, b):
    leaves_a, leaves_b = jax.tree.leaves((a.model, a.readout)), jax.tree.leaves((b.model, b.readout))
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def straight():
    return run()


def damage(path, how):
    if how == "bit flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "missing":
        path.unlink()


@pytest.mark.parametrize("file, how, reason", [
    ("training.npz", "bit flip", r"training\.npz is corrupt"),
    ("network.npz", "truncated", r"network\.npz is corrupt"),
    ("state.json", "missing", r"no state\.json \(a partial checkpoint\)"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, straight, file, how,
                                                                    reason):
    run(tmp_path, steps=12)
    damage(tmp_path / "checkpoints" / "step-000000012" / file, how)
    with pytest.warns(CheckpointFallbackWarning, match=r"step-000000012 cannot be used \(.*" + reason):
        resumed = run(tmp_path, steps=12, resume=True)
    assert resumed.history == straight.history
    assert_same_network(resumed, straight)


def test_resuming_a_longer_run_continues_the_same_run(tmp_path):
    longer = run(steps=16)
    run(tmp_path, steps=8)
    resumed = run(tmp_path, steps=16, resume=True)
    assert resumed.history == longer.history and resumed.step == 16
    assert_same_network(resumed, longer)


def test_a_checkpoint_of_another_optimiser_is_refused(tmp_path):
    run(tmp_path, steps=4)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"holds \d+ optimiser state arrays, this run has \d+"):
        run(tmp_path, steps=8, resume=True, optimizer=optax.sgd(0.1, momentum=0.9))


def test_callback_sees_each_complete_checkpoint_and_the_network_it_holds(tmp_path, straight):
    seen = []

    def callback(step, loss, checkpoint_dir):
        state = training.read_state(checkpoint_dir) if checkpoint_dir else None
        seen.append((step, state and state["step"]))

    result = run(tmp_path, callback=callback)
    assert seen == [(4, 4), (8, 8), (12, 12)]
    ckpt = mrnn_core.Checkpoint.load(os.path.join(result.last_checkpoint, "network.npz"))
    trained = mRNN.from_checkpoint(ckpt)
    for name in ("W_rec", "W_inp", "W_rec_mask", "base_firing"):
        np.testing.assert_array_equal(getattr(trained, name), getattr(straight.model, name))
    np.testing.assert_array_equal(Readout.from_checkpoint(ckpt).weight, straight.readout.weight)


def test_masks_never_train_and_the_loss_falls():
    model, _ = build()
    result = run(steps=60)
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix"):
        np.testing.assert_array_equal(getattr(result.model, name), getattr(model, name))
    assert not np.array_equal(result.model.W_rec, model.W_rec)
    assert np.mean(result.history[-10:]) < 0.7 * np.mean(result.history[:10])


def test_batches_come_in_the_models_dtype():
    seen = []

    class Spy:
        loss = "mse"

        def sample(self, batch_size, rng):
            batch = make_task("flip_flop", steps=8, n_bits=2).sample(batch_size, rng)
            seen.append(batch.inputs.dtype)
            return batch

    model, readout = build()
    out = train(model, Spy(), readout=readout, steps=2, batch_size=2, progress=False)
    assert seen == [np.float32, np.float32] and out.model.W_rec.dtype == jnp.float64
    assert all(np.isfinite(out.history))


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": -1}, r"train: steps must be an integer >= 0, got -1"),
    ({"keep": 0}, r"train: keep must be an integer >= 1, got 0"),
    ({"loss": "cross_entropy"}, r"loss='cross_entropy' does not fit the task 'flip_flop'.*loss='mse'"),
    ({"optimizer": "adam"}, r"optimizer: expected an optax\.GradientTransformation.*got str"),
    ({"callback": 3}, r"callback must be callable\(step, loss, checkpoint_dir\), got 3"),
])
def test_bad_settings_are_refused(kwargs, match):
    model, readout = build()
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        train(model, TASK, **{**dict(steps=4, batch_size=3, readout=readout, progress=False), **kwargs})


def test_a_run_folder_is_never_overwritten_or_resumed_with_another_seed(tmp_path):
    run(tmp_path, steps=4)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"already holds checkpoints; pass resume=True"):
        run(tmp_path, steps=4)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"started with seed=5; resuming with seed=6"):
        run(tmp_path, steps=8, seed=6, resume=True)


def test_both_backends_train_with_the_same_arguments():
    import inspect

    import mrnn_torch.train

    # JAX adds one argument of its own: `mesh`, the devices an ensemble is split over
    assert (list(inspect.signature(mrnn_torch.train.train).parameters) + ["mesh"]
            == list(inspect.signature(train).parameters))
    assert mrnn_torch.train.TrainResult is training.TrainResult


def test_resuming_restores_the_checkpoints_frozen_arrays_too(tmp_path):
    """Masks and sign matrices come back from the checkpoint, as torch's buffers do:
    a model built from another seed (other sparse masks) resumes the same run."""
    sparse = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 6).with_input_region("u", 2)
              .with_recurrent_connection("ctx", "ctx", sparsity=0.5)
              .with_input_connection("u", "ctx"))

    def sparse_run(seed, run_dir, steps, **kwargs):
        model = mRNN.from_checkpoint(mrnn_core.Checkpoint.initialise(
            sparse, mrnn_core.Dynamics(activation="tanh"), seed=seed))
        return train(model, TASK, readout=Readout(model, "ctx", 2, seed=2), steps=steps,
                     batch_size=3, lr=0.05, run_dir=run_dir, checkpoint_every=4, seed=5,
                     progress=False, **kwargs)

    straight = sparse_run(1, None, 8)
    sparse_run(1, tmp_path, 4)
    resumed = sparse_run(9, tmp_path, 8, resume=True)
    other = mRNN.from_checkpoint(mrnn_core.Checkpoint.initialise(
        sparse, mrnn_core.Dynamics(activation="tanh"), seed=9))
    assert not np.array_equal(other.W_rec_mask, straight.model.W_rec_mask)
    assert resumed.history == straight.history
    assert_same_network(resumed, straight)

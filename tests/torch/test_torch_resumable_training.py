"""mrnn_torch.train.train: a run killed anywhere and resumed ends bit-identical to one never killed.

The promise is tested for real: a child process trains a tiny network and
SIGKILLs itself at a randomly chosen event (drawing a batch, writing a
checkpoint file, renaming one into place); the run is then resumed in a
fresh child, again and again until it finishes. Its final parameters,
optimiser state and loss history must equal, bit for bit, those of a run in
a child that was never killed (same thread settings: one thread). A
damaged or partial newest checkpoint falls back to the previous one with a
warning. Every child runs on CPU.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import mrnn_core
from mrnn_core import training
from mrnn_core.tasks import make_task
from mrnn_core.training import CheckpointFallbackWarning
from mrnn_torch import Readout, mRNN
from mrnn_torch.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS, EVERY = 24, 4

SETUP = """
import mrnn_core
from mrnn_core.tasks import make_task
from mrnn_torch import Readout, mRNN

def setup():
    task = make_task("flip_flop", steps=12, p_pulse=0.2)
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 6).with_input_region("u", 3)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))
    ckpt = mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(activation="tanh"), seed=3)
    model = mRNN.from_checkpoint(ckpt, device="cpu")
    settings = dict(readout=Readout(model, "ctx", 3, seed=4), steps=%(steps)d, batch_size=4,
                    lr=0.01, checkpoint_every=%(every)d, keep=2, resume=True, seed=7,
                    progress=False)
    return model, task, settings
""" % {"steps": STEPS, "every": EVERY}

CHILD = SETUP + textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from mrnn_core import training
    from mrnn_torch.train import train

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
    """The same run in this process, never killed, on one thread as the children."""
    namespace = {}
    exec(SETUP, namespace)
    model, task, settings = namespace["setup"]()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(model, task, run_dir=run_dir, **settings)
    finally:
        torch.set_num_threads(threads)


def run_child(run_dir, kill_at: int) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "backends")]),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error::UserWarning"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(kill_at)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, -9), done.stderr
    return done.returncode


def final_state(run_dir):
    """The newest checkpoint's training state and history, and the list of checkpoints."""
    newest = training.list_checkpoints(run_dir)[0][1]
    state = training.read_state(newest)
    saved = torch.load(os.path.join(newest, "training.pt"), weights_only=True)
    return state, saved


def assert_same_tree(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}/{k}")
    else:
        assert a == b, where


def test_killed_at_random_points_and_resumed_equals_an_uninterrupted_run(tmp_path):
    uninterrupted(tmp_path / "straight")
    # More than 60 events happen in a life of 24 steps with a checkpoint every 4:
    # two lives end at a random one, the third finishes the run.
    # two lives end at a random one (a resumed life may finish first), a last
    # life finishes the run.
    kills = [int(k) for k in np.random.default_rng().integers(1, 60, size=2)]
    assert run_child(tmp_path / "killed", kills[0]) == -9, f"kill at event {kills[0]}"
    if run_child(tmp_path / "killed", kills[1]) == -9:
        assert run_child(tmp_path / "killed", 0) == 0
    state_a, saved_a = final_state(tmp_path / "straight")
    state_b, saved_b = final_state(tmp_path / "killed")
    assert state_a["step"] == state_b["step"] == STEPS
    assert state_a["history"] == state_b["history"], f"kill points {kills}"
    assert_same_tree(saved_a, saved_b, f"kill points {kills}")
    with open(tmp_path / "killed" / "history.json") as f:
        assert json.load(f)["loss"] == state_a["history"]
    assert len(training.list_checkpoints(tmp_path / "killed")) == 2  # keep=2


# In-process tests: a tiny network, a few steps.

SPEC = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 5).with_input_region("u", 2)
        .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))
TASK = make_task("flip_flop", steps=8, n_bits=2, p_pulse=0.2)


def build():
    ckpt = mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(activation="tanh"), seed=1)
    model = mRNN.from_checkpoint(ckpt, device="cpu")
    return model, Readout(model, "ctx", 2, seed=2)


def run(run_dir=None, steps=12, **kwargs):
    model, readout = build()
    settings = dict(steps=steps, batch_size=3, lr=0.01, readout=readout, run_dir=run_dir,
                    checkpoint_every=4, seed=5, progress=False)
    return train(model, TASK, **{**settings, **kwargs})


def state_of(result):
    return {**{f"model.{k}": v for k, v in result.model.state_dict().items()},
            **{f"readout.{k}": v for k, v in result.readout.state_dict().items()}}


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
    ("network.npz", "bit flip", r"network\.npz is corrupt"),
    ("training.pt", "truncated", r"training\.pt is corrupt"),
    ("state.json", "missing", r"no state\.json \(a partial checkpoint\)"),
    ("state.json", "truncated", r"state\.json is unreadable"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, straight, file, how,
                                                                    reason):
    run(tmp_path, steps=12)
    damage(tmp_path / "checkpoints" / "step-000000012" / file, how)
    with pytest.warns(CheckpointFallbackWarning, match=r"step-000000012 cannot be used \(.*" + reason):
        resumed = run(tmp_path, steps=12, resume=True)
    assert resumed.history == straight.history
    for key, value in state_of(straight).items():
        assert torch.equal(state_of(resumed)[key], value), key


def test_resuming_a_longer_run_continues_the_same_run(tmp_path):
    longer = run(steps=16)
    run(tmp_path, steps=8)
    resumed = run(tmp_path, steps=16, resume=True)
    assert resumed.history == longer.history and resumed.step == 16
    for key, value in state_of(longer).items():
        assert torch.equal(state_of(resumed)[key], value), key


def test_a_stray_temporary_folder_is_ignored_and_cleaned(tmp_path, straight):
    run(tmp_path, steps=8)
    stray = tmp_path / "checkpoints" / ".step-000000012.tmp-abc"
    stray.mkdir()
    (stray / "network.npz").write_bytes(b"half")
    resumed = run(tmp_path, steps=12, resume=True)
    assert resumed.history == straight.history
    assert not stray.exists()


def test_every_checkpoint_damaged_is_an_error(tmp_path):
    run(tmp_path, steps=8, keep=2)
    for _, folder in training.list_checkpoints(tmp_path):
        os.unlink(os.path.join(folder, "training.pt"))
    with pytest.warns(CheckpointFallbackWarning):
        with pytest.raises(mrnn_core.MRNNConfigError, match=r"resume: no usable checkpoint in"):
            run(tmp_path, steps=12, resume=True)


def test_callback_sees_each_complete_checkpoint(tmp_path):
    seen = []

    def callback(step, loss, checkpoint_dir):
        # At call time the checkpoint of this step is complete and verifies.
        state = training.read_state(checkpoint_dir) if checkpoint_dir else None
        seen.append((step, loss, state and state["step"]))

    result = run(tmp_path, steps=10, callback=callback, callback_every=2)
    assert [s for s, _, _ in seen] == [2, 4, 6, 8, 10]
    assert [c for _, _, c in seen] == [None, 4, None, 8, 10]  # checkpoints at 4, 8 and the last
    assert [loss for _, loss, _ in seen] == [result.history[s - 1] for s, _, _ in seen]
    assert result.last_checkpoint == str(tmp_path / "checkpoints" / "step-000000010")
    assert [step for step, _ in training.list_checkpoints(tmp_path)] == [10, 8, 4]  # keep=3


def test_the_checkpoint_holds_the_network_and_readout_for_any_backend(tmp_path, straight):
    result = run(tmp_path)
    ckpt = mrnn_core.Checkpoint.load(os.path.join(result.last_checkpoint, "network.npz"))
    assert ckpt.readout is not None and ckpt.readout.out_features == 2
    expected = straight.model.to_checkpoint()
    for name in mrnn_core.PARAM_NAMES:
        np.testing.assert_array_equal(ckpt.params[name], expected.params[name])
    np.testing.assert_array_equal(ckpt.params["readout_W"],
                                  straight.readout.weight.detach().double().numpy())
    assert training.read_history(tmp_path) == result.history


def test_training_lowers_the_loss_and_leaves_torch_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    result = run(steps=60, lr=0.05, noise=True)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.mean(result.history[-10:]) < 0.7 * np.mean(result.history[:10])


def test_the_progress_bar_shows_loss_and_rate_and_is_off_when_asked(capsys):
    run(steps=3, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err and "step/s" in err
    run(steps=3, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": -1}, r"train: steps must be an integer >= 0, got -1"),
    ({"batch_size": 0}, r"train: batch_size must be an integer >= 1, got 0"),
    ({"checkpoint_every": 2.5}, r"train: checkpoint_every must be an integer >= 1, got 2\.5"),
    ({"loss": "l1"}, r"train: loss must be one of 'mse', 'cross_entropy', got 'l1'"),
    ({"loss": "cross_entropy"}, r"loss='cross_entropy' does not fit the task 'flip_flop'.*loss='mse'"),
    ({"resume": True}, r"resume=True needs run_dir"),
    ({"lr": 0.0}, r"train: lr must be a finite number > 0, got 0\.0"),
    ({"optimizer": "adam"}, r"optimizer: expected a torch\.optim\.Optimizer.*got str"),
    ({"readout": torch.nn.Linear(5, 2)}, r"readout: expected an mrnn_torch\.Readout or None, got Linear"),
])
def test_bad_settings_are_refused_before_training(kwargs, match):
    model, readout = build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = dict(steps=4, batch_size=3, readout=readout, progress=False)
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        train(model, TASK, **{**settings, **kwargs})
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_run_folder_is_never_overwritten_or_resumed_with_another_seed(tmp_path):
    run(tmp_path, steps=4)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"already holds checkpoints; pass resume=True"):
        run(tmp_path, steps=4)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"started with seed=5; resuming with seed=6"):
        run(tmp_path, steps=8, seed=6, resume=True)

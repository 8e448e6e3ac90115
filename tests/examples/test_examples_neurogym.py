"""The neurogym adapter: trials in our [B, T, .] layout and the task's dt as the model's alpha.

neurogym is an optional extra for users and a dev requirement here. A small
stand-in with the interface of ``neurogym.Dataset`` (time-major ``(inputs,
targets)`` per call, ``.env.dt``, gym spaces) tests the adapter's logic; the
last test and tests/examples/test_neurogym_real_package.py run the real
package.
"""

import builtins
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_torch
from mrnn_core import neurogym as task_data


class FakeEnv:
    """A neurogym-like env: ``dt`` in ms, a Box observation, a discrete or Box action."""

    def __init__(self, dt=20.0, n_in=3, n_classes=None, n_out=None):
        self.dt = dt
        self.observation_space = SimpleNamespace(shape=(n_in,))
        self.action_space = (SimpleNamespace(n=n_classes, shape=()) if n_classes
                             else SimpleNamespace(shape=(n_out,)))


class FakeDataset:
    """``neurogym.Dataset(env, batch_size, seq_len, batch_first=False)``: each call
    returns ``(inputs [T, B, I], targets [T, B] or [T, B, O])`` (or batch-first)."""

    def __init__(self, env, batch_size, seq_len, batch_first=False, seed=0):
        self.env, self.batch_size, self.seq_len = env, batch_size, seq_len
        self.batch_first = batch_first
        self.rng = np.random.default_rng(seed)
        self.served = []

    def __call__(self):
        T, B = self.seq_len, self.batch_size
        n_in = self.env.observation_space.shape[0]
        inputs = self.rng.normal(size=(T, B, n_in)).astype(np.float32)
        space = self.env.action_space
        if getattr(space, "n", None):
            targets = self.rng.integers(0, space.n, size=(T, B))
        else:
            targets = self.rng.normal(size=(T, B, space.shape[0])).astype(np.float32)
        if self.batch_first:
            inputs, targets = inputs.swapaxes(0, 1), targets.swapaxes(0, 1)
        self.served.append((inputs, targets))
        return inputs, targets


def test_time_major_batches_become_batch_first():
    data = FakeDataset(FakeEnv(n_classes=3), batch_size=4, seq_len=25)
    inputs, labels = task_data.next_batch(data)
    raw_inputs, raw_labels = data.served[-1]
    assert inputs.shape == (4, 25, 3) and inputs.dtype == np.float32  # a model's default dtype
    assert labels.shape == (4, 25) and np.issubdtype(labels.dtype, np.integer)
    for b, t in [(0, 0), (3, 24), (2, 7)]:
        assert inputs[b, t].tolist() == raw_inputs[t, b].tolist()
        assert labels[b, t] == raw_labels[t, b]
    wide, _ = task_data.next_batch(data, dtype="float64")
    assert wide.dtype == np.float64
    np.testing.assert_array_equal(wide, data.served[-1][0].swapaxes(0, 1))


def test_batch_first_datasets_and_continuous_targets_pass_through():
    data = FakeDataset(FakeEnv(n_out=2), batch_size=3, seq_len=10, batch_first=True)
    inputs, targets = task_data.next_batch(data)
    raw_inputs, raw_targets = data.served[-1]
    np.testing.assert_array_equal(inputs, raw_inputs)
    np.testing.assert_array_equal(targets, raw_targets)
    assert targets.shape == (3, 10, 2) and targets.dtype == np.float32


def test_one_hot_labels():
    data = FakeDataset(FakeEnv(n_classes=4), batch_size=2, seq_len=6)
    _, one_hot = task_data.next_batch(data, one_hot=True)
    raw_labels = data.served[-1][1]
    assert one_hot.shape == (2, 6, 4)
    np.testing.assert_array_equal(one_hot.argmax(-1), raw_labels.T)
    np.testing.assert_array_equal(one_hot.sum(-1), np.ones((2, 6)))
    continuous = FakeDataset(FakeEnv(n_out=2), batch_size=2, seq_len=6)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"one_hot: needs integer class labels \(a discrete action space\), got targets of shape \(6, 2, 2\) and dtype float32"):
        task_data.next_batch(continuous, one_hot=True)


def test_malformed_batches_are_rejected_with_their_shapes():
    class Flat(FakeDataset):
        def __call__(self):
            return np.zeros((5, 3)), np.zeros((5, 3))

    with pytest.raises(mrnn_core.MRNNConfigError, match=r"expected inputs \[T, B, I\].*got shapes \(5, 3\) and \(5, 3\)"):
        task_data.next_batch(Flat(FakeEnv(), 3, 5))


def test_the_tasks_dt_sets_alpha():
    data = FakeDataset(FakeEnv(dt=20.0, n_classes=3), batch_size=2, seq_len=5)
    assert task_data.task_dt(data) == 20.0
    assert task_data.task_dt(data.env) == 20.0
    dynamics = task_data.task_dynamics(data, tau=100.0, activation="tanh")
    assert (dynamics.kind, dynamics.dt, dynamics.tau, dynamics.activation) == ("leaky", 20.0, 100.0, "tanh")
    assert dynamics.alpha == pytest.approx(0.2, rel=1e-15)
    assert task_data.task_sizes(data) == (3, 3)
    assert task_data.task_sizes(FakeDataset(FakeEnv(n_in=5, n_out=2), 1, 1)) == (5, 2)


def test_tau_shorter_than_the_tasks_step_and_overridden_timing_are_rejected():
    data = FakeDataset(FakeEnv(dt=100.0), batch_size=1, seq_len=1)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"tau: expected at least the task's dt = 100 ms .*got 50"):
        task_data.task_dynamics(data, tau=50)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"dt: set by the task .*got dt=10"):
        task_data.task_dynamics(data, tau=200, dt=10)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"expected a neurogym Dataset or env with a dt \(ms\), got a dict"):
        task_data.task_dt({})


def test_a_model_built_for_the_task_runs_on_its_batches():
    data = FakeDataset(FakeEnv(dt=20.0, n_in=3, n_classes=3), batch_size=4, seq_len=30)
    n_in, n_out = task_data.task_sizes(data)
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("ctx", 8)
            .with_input_region("task", n_in)
            .with_recurrent_connection("ctx", "ctx")
            .with_input_connection("task", "ctx"))
    dynamics = task_data.task_dynamics(data, tau=100.0, noise_level_act=0.0, noise_level_inp=0.0)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=0)
    model = mrnn_torch.mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    assert model.alpha == pytest.approx(0.2)
    inputs, labels = task_data.next_batch(data, dtype="float64")
    x0 = np.zeros((4, 8))
    _, hs = model(torch.from_numpy(inputs), torch.from_numpy(x0))
    _, expected = mrnn_core.reference.simulate(ckpt.params, dynamics, inputs, x0=x0)
    np.testing.assert_allclose(hs.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    assert labels.shape == hs.shape[:2] and labels.max() < n_out


def test_make_dataset_names_the_missing_package(monkeypatch):
    monkeypatch.delitem(sys.modules, "neurogym", raising=False)
    real_import = builtins.__import__

    def no_neurogym(name, *args, **kwargs):
        if name == "neurogym" or name.startswith("neurogym."):
            raise ModuleNotFoundError("No module named 'neurogym'", name="neurogym")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_neurogym)
    with pytest.raises(ModuleNotFoundError, match=r"needs the optional package 'neurogym'.*pip install neurogym") as err:
        task_data.make_dataset("PerceptualDecisionMaking-v0", batch_size=2, seq_len=10)
    assert err.value.name == "neurogym"


def test_dt_is_an_env_keyword_only_for_task_ids(monkeypatch):
    made = []
    fake_module = SimpleNamespace(Dataset=lambda *a, **k: made.append((a, k)) or "dataset")
    monkeypatch.setitem(sys.modules, "neurogym", fake_module)
    assert task_data.make_dataset("Task-v0", batch_size=2, seq_len=10, dt=20) == "dataset"
    assert made == [(("Task-v0",), dict(env_kwargs={"dt": 20}, batch_size=2, seq_len=10))]
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"dt, env_kwargs: apply only when task is a task id \(a str\), got a FakeEnv; set dt on the env itself"):
        task_data.make_dataset(FakeEnv(), batch_size=2, seq_len=10, dt=20)


def test_real_neurogym_task():
    data = task_data.make_dataset("PerceptualDecisionMaking-v0", batch_size=4, seq_len=50, dt=20,
                                  seed=0)
    n_in, n_out = task_data.task_sizes(data)
    inputs, labels = task_data.next_batch(data)
    assert inputs.shape == (4, 50, n_in) and labels.shape == (4, 50)
    assert 0 <= labels.min() and labels.max() < n_out
    dynamics = task_data.task_dynamics(data, tau=100)
    assert dynamics.dt == 20 and dynamics.alpha == pytest.approx(0.2)
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 8).with_input_region("task", n_in)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("task", "ctx"))
    model = mrnn_torch.mRNN.from_checkpoint(mrnn_core.Checkpoint.initialise(spec, dynamics, seed=0),
                                            device="cpu")
    _, hs = model(torch.tensor(inputs, dtype=torch.float32), torch.zeros(4, 8))
    assert hs.shape == (4, 50, 8) and torch.isfinite(hs).all()

"""The neurogym adapter and neurogym tasks by name, against the real package (a dev requirement).

neurogym 2.3 with gymnasium 0.29: trials of PerceptualDecisionMaking-v0
(3 inputs: fixation and two evidence channels; 3 classes: fixate, left, right).
"""

import neurogym as ngym
import numpy as np
import pytest

import mrnn_core
from mrnn_core import neurogym as task_data
from mrnn_core.tasks import NeurogymTask, make_task

PDM = "PerceptualDecisionMaking-v0"


def test_the_adapter_lays_out_a_real_dataset_batch_first():
    data = task_data.make_dataset(PDM, batch_size=3, seq_len=40, dt=20, seed=5)
    twin = task_data.make_dataset(PDM, batch_size=3, seq_len=40, dt=20, seed=5)
    assert isinstance(data, ngym.Dataset)
    inputs, labels = task_data.next_batch(data)
    raw_inputs, raw_labels = twin()
    assert inputs.shape == (3, 40, 3) and inputs.dtype == np.float32
    assert labels.shape == (3, 40) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(inputs, raw_inputs.swapaxes(0, 1).astype(np.float32))
    np.testing.assert_array_equal(labels, raw_labels.T)
    assert task_data.task_sizes(data) == (3, 3) and task_data.task_dt(data) == 20.0
    wide, one_hot = task_data.next_batch(data, one_hot=True, dtype="float64")
    assert wide.dtype == one_hot.dtype == np.float64 and one_hot.shape == (3, 40, 3)


def test_a_neurogym_task_by_name_plays_whole_trials_seeded_from_the_generator():
    task = make_task("neurogym:" + PDM, seq_len=60, dt=20, env_kwargs={"timing": {"stimulus": 400}})
    assert isinstance(task, NeurogymTask) and task.name == "neurogym:" + PDM
    assert (task.n_inputs, task.n_outputs, task.loss) == (3, 3, "cross_entropy")
    batch = task.sample(4, np.random.default_rng(11))
    assert batch.inputs.shape == (4, 60, 3) and batch.inputs.dtype == np.float32
    assert batch.targets.shape == (4, 60) and batch.targets.dtype == np.int64
    # Row b is the trials of the env seeded with the b-th integer the generator draws.
    seeds = np.random.default_rng(11).integers(0, 2**31, size=4)
    with task_data.quiet_gymnasium():
        env = ngym.make(PDM, dt=20, timing={"stimulus": 400}).unwrapped
    env.seed(int(seeds[2]))
    env.new_trial()
    first = len(env.ob)
    assert first < 60  # 100 + 400 + 100 ms in 20 ms steps: 30 steps
    np.testing.assert_array_equal(batch.inputs[2, :first], env.ob.astype(np.float32))
    np.testing.assert_array_equal(batch.targets[2, :first], env.gt)
    env.new_trial()
    np.testing.assert_array_equal(batch.targets[2, first:60], env.gt[:60 - first])
    # Every trial ends with its decision: the labels hold both choices somewhere.
    assert set(np.unique(batch.targets)) <= {0, 1, 2} and {1, 2} & set(np.unique(batch.targets))
    again = task.sample(4, np.random.default_rng(11))
    np.testing.assert_array_equal(again.inputs, batch.inputs)
    wide = make_task("neurogym:" + PDM, seq_len=60, dt=20, dtype="float64")
    assert wide.sample(2, np.random.default_rng(0)).inputs.dtype == np.float64
    assert make_task(task.name, **task.params()).params() == task.params()


def test_a_bad_neurogym_task_is_refused_with_its_name():
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"neurogym:NoSuchTask-v0: neurogym could not make the env 'NoSuchTask-v0'"):
        make_task("neurogym:NoSuchTask-v0")
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"make_task\('neurogym:PerceptualDecisionMaking-v0'\): unknown parameter 'seq_length' \(did you mean 'seq_len'\?\)"):
        make_task("neurogym:" + PDM, seq_length=10)

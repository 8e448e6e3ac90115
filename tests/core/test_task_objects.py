"""Tasks as objects a training run or a sweep names: make_task, sample, dtype."""

import numpy as np
import pytest

import mrnn_core
from mrnn_core.tasks import Batch, FlipFlopTask, make_task


def test_flip_flop_by_name_samples_the_flip_flop_trials():
    task = make_task("flip_flop", steps=40, n_bits=2, p_pulse=0.1)
    assert isinstance(task, FlipFlopTask) and task.name == "flip_flop" and task.loss == "mse"
    assert (task.n_inputs, task.n_outputs) == (2, 2)
    batch = task.sample(5, np.random.default_rng(3))
    assert isinstance(batch, Batch) and batch.mask is None
    expected = mrnn_core.flip_flop(5, 40, n_bits=2, p_pulse=0.1, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(batch.inputs, expected[0])
    np.testing.assert_array_equal(batch.targets, expected[1])
    assert make_task("flip_flop", **task.params()) == task


def test_a_batch_depends_on_the_generator_alone():
    task = make_task("flip_flop", steps=30)
    a, b = task.sample(4, np.random.default_rng(7)), task.sample(4, np.random.default_rng(7))
    c = task.sample(4, np.random.default_rng(8))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert not np.array_equal(a.inputs, c.inputs)


def test_float32_by_default_float64_on_request_same_values():
    u32, y32 = mrnn_core.flip_flop(3, 50, seed=1)
    u64, y64 = mrnn_core.flip_flop(3, 50, seed=1, dtype="float64")
    assert u32.dtype == y32.dtype == np.float32 and u64.dtype == y64.dtype == np.float64
    np.testing.assert_array_equal(u32, u64)
    np.testing.assert_array_equal(y32, y64)
    batch = make_task("flip_flop", dtype=np.float64).sample(2, np.random.default_rng(0))
    assert batch.inputs.dtype == batch.targets.dtype == np.float64


@pytest.mark.parametrize("call, match", [
    (lambda: make_task("flipflop"), r"unknown task 'flipflop' \(did you mean 'flip_flop'\?\); known tasks: 'flip_flop', 'neurogym:<env id>'"),
    (lambda: make_task("flip_flop", n_bit=3), r"make_task\('flip_flop'\): unknown parameter 'n_bit' \(did you mean 'n_bits'\?\)"),
    (lambda: make_task("flip_flop", p_pulse=2.0), r"p_pulse must be in \[0, 1\], got 2\.0"),
    (lambda: make_task("flip_flop", dtype="int32"), r"flip_flop: dtype: expected a real floating dtype .*got 'int32'"),
    (lambda: make_task("neurogym:"), r"'neurogym:' names no neurogym env"),
    (lambda: make_task(3), r"make_task: name: expected a str, got int"),
    (lambda: make_task("flip_flop").sample(0, np.random.default_rng()), r"sample: batch_size must be an integer >= 1, got 0"),
    (lambda: make_task("flip_flop").sample(2, 5), r"sample: rng: expected a numpy\.random\.Generator .*got int"),
    (lambda: mrnn_core.flip_flop(2, 5, dtype="complex128"), r"flip_flop: dtype: expected a real floating dtype .*got 'complex128'"),
])
def test_bad_tasks_are_refused(call, match):
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        call()

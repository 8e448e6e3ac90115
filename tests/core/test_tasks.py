"""The flip-flop task generator: the target holds the sign of the last pulse."""

import numpy as np
import pytest

import mrnn_core


def test_targets_hold_the_last_pulse_per_channel():
    inputs, targets = mrnn_core.flip_flop(4, 300, n_bits=3, p_pulse=0.05, seed=1)
    assert inputs.shape == targets.shape == (4, 300, 3)
    assert set(np.unique(inputs)) <= {-1.0, 0.0, 1.0}
    for b in range(4):
        for k in range(3):
            last = 0.0
            for t in range(300):
                if inputs[b, t, k] != 0:
                    last = inputs[b, t, k]
                assert targets[b, t, k] == last
    assert np.any(inputs == 1) and np.any(inputs == -1)


def test_seed_and_layout():
    a = mrnn_core.flip_flop(2, 50, seed=3)
    b = mrnn_core.flip_flop(2, 50, seed=3)
    c = mrnn_core.flip_flop(2, 50, seed=4)
    tm = mrnn_core.flip_flop(2, 50, seed=3, batch_first=False)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(tm[1], a[1].transpose(1, 0, 2))


@pytest.mark.parametrize("kwargs, match", [
    ({"batch": 0, "steps": 5}, r"batch must be an integer >= 1, got 0"),
    ({"batch": 2, "steps": 2.5}, r"steps must be an integer >= 1, got 2\.5"),
    ({"batch": 2, "steps": 5, "p_pulse": 1.5}, r"p_pulse must be in \[0, 1\], got 1\.5"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        mrnn_core.flip_flop(**kwargs)

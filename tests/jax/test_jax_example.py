"""The optax flip-flop example runs, and its task is the flip-flop task."""

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jax_flipflop.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("jax_flipflop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_targets_hold_the_last_pulse_of_each_channel(example):
    inputs, targets = map(np.asarray, example.flipflop_trials(jax.random.key(0), 4, 60, rate=0.1))
    assert set(np.unique(inputs)) == {-1.0, 0.0, 1.0}
    for b, channel in np.ndindex(4, 3):
        last = 0.0
        for t in range(60):
            last = inputs[b, t, channel] or last
            assert targets[b, t, channel] == last


def test_example_trains_with_masks_untouched(example, capsys):
    example.main(["--steps", "20", "--batch", "4", "--trial-length", "20"])
    out = capsys.readouterr().out
    assert "loss fell from" in out
    assert "masks and sign matrices unchanged" in out

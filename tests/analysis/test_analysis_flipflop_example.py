"""Issue 7's acceptance on a trained network: the flip-flop example, with its
default settings, finds 8 stable fixed points, one per memory.

The example trains for 2000 steps (about 10-20 s here, deterministic for a
seed on a given machine). The stable points are checked through the
network's own readout: their 8 output sign patterns must all differ.
"""

import importlib.util
from pathlib import Path

import numpy as np

from .analysis_helpers import match

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "analyse_flipflop.py"


def load_example():
    spec = importlib.util.spec_from_file_location("analyse_flipflop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_flipflop_example_finds_the_eight_memories(tmp_path):
    example = load_example()
    saved = tmp_path / "flipflop.npz"
    ckpt, fps = example.main(["--out", str(tmp_path), "--save", str(saved)])
    stable = fps.subset(fps.stable_discrete)
    assert len(stable) == 8
    readout = np.tanh(stable.points) @ ckpt.params["readout_W"].T + ckpt.params["readout_b"]
    assert len({tuple(np.sign(r)) for r in readout}) == 8
    assert np.all(np.abs(readout) > 0.5)
    assert (tmp_path / "flipflop_flow.png").stat().st_size > 0
    # The saved checkpoint, analysed by the torch backend, gives the same points.
    _, again = example.main([str(saved), "--backend", "torch", "--out", str(tmp_path)])
    match(again.points, fps.points)

"""examples/neurogym_decision.py runs as a user runs it: a few training steps, its accuracy printed,
its run folder checkpointed and resumable."""

import re

from test_examples_smoke import number_after, run


def test_neurogym_decision_trains_checkpoints_and_reports_accuracy(tmp_path):
    run_dir = tmp_path / "run"
    out = run(tmp_path, "neurogym_decision.py", "--steps", 12, "--batch", 4, "--seq-len", 50,
              "--run-dir", run_dir, "--no-progress")
    assert "neurogym:PerceptualDecisionMaking-v0: 3 inputs, 3 classes, dt = 20 ms, alpha = 0.2" in out
    assert re.search(r"trained 12 steps: cross-entropy [0-9.]+ \(first step\)", out), out
    assert 0.0 <= number_after(r"decision accuracy", out) <= 1.0
    assert f"last checkpoint: {run_dir / 'checkpoints' / 'step-000000012'}" in out
    assert (run_dir / "history.json").exists()

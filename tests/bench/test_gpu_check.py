"""scripts/gpu_check.sh runs cleanly on a machine without a GPU and says what it skipped."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this test checks the CPU-only path of gpu_check.sh")
def test_gpu_check_on_cpu_reports_what_it_skipped(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp_path))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (tmp_path / "gpu_report.md").read_text()
    for step in ("torch_cuda_tests", "jax_gpu_tests", "benchmarks"):
        assert f"## {step}: SKIPPED" in report
    assert "torch 2." in report and "cuda available: False" in report

"""benchmarks/ensemble_torch.py runs end to end: one subprocess run with two W3 members
and a few steps must exit 0 and print its row with numeric times, ratios and memory.
Nothing here asserts on speed."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ensemble_torch.py"


def test_the_ensemble_benchmark_prints_its_row():
    done = subprocess.run([sys.executable, str(SCRIPT), "--cases", "W3", "--members", "2",
                           "--quick", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"peak sgemm [0-9.]+ GFLOP/s", done.stdout), done.stdout
    row = [line for line in done.stdout.splitlines() if line.startswith("| W3 leaky x 2 |")]
    assert len(row) == 1, done.stdout
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[1] == "64, 8, 20"
    for cell in cells[2:]:
        assert re.fullmatch(r"[0-9.]+x?", cell), (cell, row[0])

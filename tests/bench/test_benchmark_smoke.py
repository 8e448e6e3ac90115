"""The benchmark command runs end to end and prints every row it promises.

One subprocess run of ``benchmarks/run.py --quick --workloads W3`` (a few
steps, two timed calls): it must exit 0, and its table must hold a timed row
for every contender of both W3 cases in both backends, with numeric medians
and ratios. Nothing here asserts on speed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "benchmarks" / "run.py"

TORCH = ["ours (mRNN)", "floor (TorchScript)", "floor [H,B] (info)", "mRNNTorch-style loop"]
JAX = ["ours (mRNN, jit)", "floor (lax.scan)", "floor [H,B] (info)"]
FORWARD_ONLY = "floor, xs + hs [B,T,H] (info)"
EXPECTED = {
    ("W3 leaky", "torch"): TORCH,
    ("W3 leaky", "jax"): JAX,
    ("W3 elman", "torch"): ["ours (ElmanmRNN)"] + TORCH[1:] + ["torch.nn.RNN (tanh)"],
    ("W3 elman", "jax"): ["ours (ElmanmRNN, jit)"] + JAX[1:],
}


def _rows(text: str) -> dict[tuple[str, str, str], list[str]]:
    """The medians table: (case, backend, implementation) -> its cells."""
    section = text.split("### Medians and ratios", 1)[1].split("###", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 6 and cells[0].startswith("W"):
            rows[tuple(cells[:3])] = cells
    return rows


def _number(cell: str) -> float:
    return float(cell)  # "n/a" (a contender that did not run) fails here


def _run(*args, timeout=240):
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def test_quick_run_prints_every_contender_with_medians_and_ratios(tmp_path):
    notes = tmp_path / "results.md"
    proc = _run("--quick", "--workloads", "W3", "--markdown", str(notes))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = _rows(proc.stdout)
    for (case, backend), labels in EXPECTED.items():
        for label in labels:
            cells = rows.get((case, backend, label))
            assert cells is not None, f"no row for {case} / {backend} / {label}:\n{proc.stdout}"
            fwd, fwdbwd, fwd_ratio, fwdbwd_ratio = map(_number, cells[3:7])
            assert fwd > 0 and fwdbwd > 0 and fwd_ratio > 0 and fwdbwd_ratio > 0
    # The leaky case's forward-only information row: a forward median, no backward.
    two = rows.get(("W3 leaky", "jax", FORWARD_ONLY))
    assert two is not None, f"no row for W3 leaky / jax / {FORWARD_ONLY}:\n{proc.stdout}"
    assert _number(two[3]) > 0 and _number(two[5]) > 0 and two[4] == "n/a"
    assert set(rows) == {(c, b, label) for (c, b), labels in EXPECTED.items() for label in labels} \
        | {("W3 leaky", "jax", FORWARD_ONLY)}
    for section in ("### Issue 6 targets", "### The floor: dense FLOPs and rates",
                    "### JAX leaky forward: the cost of the second output",
                    "### Agreement (float32)", "### Processes"):
        assert section in proc.stdout
    appended = notes.read_text()
    assert "## Benchmark run" in appended and "ours (mRNN, jit)" in appended


def test_unknown_workload_is_rejected_by_name():
    proc = _run("--workloads", "W3,W9", timeout=60)
    assert proc.returncode != 0
    assert "unknown workload 'W9'" in proc.stderr and "W1" in proc.stderr


def test_tau_cost_prints_every_variant_with_ratios_to_the_shared_tau():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "tau_cost.py"),
                           "--workloads", "W3", "--min-time", "0"],
                          capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "W3 leaky":
            rows[(cells[1], cells[2])] = cells
    assert set(rows) == {(b, v) for b in ("torch", "jax")
                         for v in ("shared", "per_region", "learned")}
    for (backend, variant), cells in rows.items():
        fwd, fwdbwd, r_fwd, r_fwdbwd = map(_number, cells[3:7])
        assert fwd > 0 and fwdbwd > 0 and r_fwd > 0 and r_fwdbwd > 0
        if variant == "shared":
            assert (r_fwd, r_fwdbwd) == (1.0, 1.0)

"""The benchmark's verdicts and ratios follow from the medians it measured.

Synthetic worker results (no timing) go through ``benchmarks/report.py``; the
expected ratios are worked out by hand from the made-up medians.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "report.py"
_SPEC = importlib.util.spec_from_file_location("bench_report", _PATH)
report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(report)


def _result(label, backend, medians, steps=500, compile_s=None):
    """A worker result whose contender ``name`` has medians ``(fwd, fwdbwd)`` in seconds."""
    kind = label.split()[1]
    impls = {}
    for name, (fwd, fwdbwd) in medians.items():
        impls[name] = {"label": name, "setup_error": None,
                       "fwd": {"median": fwd, "times": [fwd] * 5},
                       "fwdbwd": {"median": fwdbwd, "times": [fwdbwd] * 5},
                       "compile_s": compile_s if name == "ours" else None}
    return {"backend": backend, "case": f"{label.split()[0]}:{kind}:{steps}",
            "label": label, "impls": impls, "dense_flops": 10**9}


def _target_rows(text):
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells
    return rows


def test_targets_say_met_at_or_under_the_limit_and_missed_over_it():
    results = [
        _result("W2 elman", "torch", {"ours": (0.13, 0.26), "floor": (0.1, 0.2),
                                      "nn_rnn": (0.12, 0.3), "mrnntorch": (1.0, 5.2)}),
        _result("W3 leaky", "jax", {"ours": (0.012, 0.03), "floor": (0.01, 0.03)},
                compile_s={"fwd": 0.4, "fwdbwd": 1.5}),
    ]
    rows = _target_rows(report.targets_table(results))
    fwd_floor = rows[("W2 elman", "torch forward within 1.5x of the torch floor")]
    assert fwd_floor[4].startswith("1.300") and fwd_floor[5] == "met"
    assert rows[("W2 elman", "torch forward + backward within 1.3x of the torch floor")][5] == "met"
    assert rows[("W2 elman", "torch Elman forward no slower than torch.nn.RNN")][5] == "MISSED"
    rnn_fb = rows[("W2 elman", "torch Elman forward + backward no slower than torch.nn.RNN")]
    assert rnn_fb[5] == "met" and "(1.2x faster)" in rnn_fb[4]
    loop = rows[("W2 elman", "torch forward + backward at least 20x faster than the mRNNTorch-style loop")]
    assert loop[4].startswith("0.050") and loop[5] == "met"
    assert rows[("W3 leaky", "JAX forward within 1.2x of the JAX floor")][5] == "met"
    assert rows[("W3 leaky", "JAX compile under 1 s per shape")][4:] == ["1.50", "MISSED"]
    # Cases this run did not measure get no verdict at all.
    assert not any(case == "W1 leaky" for case, _ in rows)


def test_timing_table_divides_by_the_same_backends_floor_and_ours():
    results = [_result("W2 leaky", "torch", {"ours": (0.3, 0.9), "floor": (0.2, 0.6),
                                             "mrnntorch": (0.6, 9.0)})]
    lines = report.timing_table(results).splitlines()
    cells = {c[2]: c for c in ([x.strip() for x in line.strip("|").split("|")] for line in lines[2:])}
    assert cells["ours"][3:7] == ["300", "900", "1.50", "1.50"]
    assert cells["mrnntorch"][5:9] == ["3.00", "15.00", "0.50", "0.10"]
    assert cells["floor"][5:7] == ["1.00", "1.00"]


def test_scaling_table_shows_growth_per_doubling_of_T():
    results = []
    for T, ours, loop in ((250, 1.0, 2.0), (500, 2.0, 8.0), (1000, 4.0, 32.0)):
        results.append(_result("W2 leaky", "torch", {"ours": (None, ours), "mrnntorch": (None, loop)},
                               steps=T))
    lines = report.scaling_table(results, [250, 500, 1000]).splitlines()[2:]
    last = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert last[:6] == ["1000", "4000", "2.00", "32000", "4.00", "0.12"]


def test_a_small_ratio_is_never_shown_as_zero():
    results = [_result("W3 leaky", "torch", {"ours": (0.001, 0.0008), "floor": (0.2, 0.5)})]
    lines = report.timing_table(results).splitlines()
    ours = [c.strip() for c in lines[2].strip("|").split("|")]
    assert ours[5:7] == ["0.005", "0.0016"]


def test_two_outputs_table_divides_by_both_floors():
    results = [
        _result("W2 leaky", "jax", {"ours": (0.138, 0.3), "floor": (0.1, 0.3),
                                    "floor_xh": (0.12, None)}),
        _result("W2 elman", "jax", {"ours": (0.11, 0.3), "floor": (0.1, 0.3)}),
        _result("W2 leaky", "torch", {"ours": (0.2, 0.3), "floor": (0.1, 0.3)}),
    ]
    lines = report.two_outputs_table(results).splitlines()
    assert len(lines) == 3  # header, rule, and the one JAX leaky row
    assert [c.strip() for c in lines[2].strip("|").split("|")] == ["W2 leaky", "1.20", "1.38", "1.15"]
    assert report.two_outputs_table(results[1:]) == ""

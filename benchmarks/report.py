"""Turning worker results into Markdown tables: medians, ratios, targets, memory.

Every function takes the JSON dicts the workers wrote (one per backend and
case) and returns text; nothing here times or imports a framework.
A ratio ``a / b`` below 1 means ``a`` is faster.
"""

from __future__ import annotations

MODES = ("fwd", "fwdbwd")
MODE_NAMES = {"fwd": "forward", "fwdbwd": "forward + backward"}


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table, columns padded so it also reads well in a terminal."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])


def median(results, case: str, backend: str, impl: str, mode: str) -> float | None:
    """The median seconds of one contender, or None where it did not run."""
    for r in results:
        if r.get("case") == case and r.get("backend") == backend:
            entry = r.get("impls", {}).get(impl, {})
            return (entry.get(mode) or {}).get("median")
    return None


def _ms(seconds) -> str:
    if seconds is None:
        return "n/a"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    r = a / b
    # Two decimals, but never a small ratio rounded to a misleading 0.00.
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def _pair(entry, key, fmt) -> str:
    values = [(entry.get(m) or {}).get(key) for m in MODES]
    return " / ".join("-" if v is None else fmt(v) for v in values)


def timing_table(results) -> str:
    """One row per (case, backend, contender): medians and ratios."""
    header = ["case", "backend", "implementation", "fwd ms", "fwd+bwd ms",
              "fwd / floor", "f+b / floor", "ours / this (fwd)", "ours / this (f+b)",
              "timed calls", "compile s (fwd / f+b)", "call peak MB (fwd / f+b)"]
    rows = []
    for r in results:
        case, backend = r["case"], r["backend"]
        for name, entry in r.get("impls", {}).items():
            if entry.get("skipped"):
                continue
            m = {mode: (entry.get(mode) or {}).get("median") for mode in MODES}
            floor = {mode: median(results, case, backend, "floor", mode) for mode in MODES}
            ours = {mode: median(results, case, backend, "ours", mode) for mode in MODES}
            versus = name not in ("ours", "floor", "floor_hb", "floor_xh")  # ours_dense: ours / dense path
            compile_s = entry.get("compile_s")
            rows.append([
                r["label"], backend, entry["label"], _ms(m["fwd"]), _ms(m["fwdbwd"]),
                _ratio(m["fwd"], floor["fwd"]), _ratio(m["fwdbwd"], floor["fwdbwd"]),
                _ratio(ours["fwd"], m["fwd"]) if versus else "",
                _ratio(ours["fwdbwd"], m["fwdbwd"]) if versus else "",
                _pair(entry, "times", lambda t: str(len(t))),
                " / ".join(f"{compile_s[k]:.2f}" if k in compile_s else "-" for k in MODES)
                if compile_s else "",
                _pair(entry, "call_peak_mb", lambda v: f"{max(v, 0.0):.0f}"),
            ])
    return table(header, rows)


def floor_table(results) -> str:
    """The floor's dense FLOP count and the FLOP rate it implies (backward = 2 more matmuls)."""
    header = ["case", "backend", "dense GFLOP per forward (2 B H^2 T)",
              "floor fwd GFLOP/s", "floor f+b GFLOP/s (3x FLOPs)"]
    rows = []
    for r in results:
        flops = r.get("dense_flops")
        fwd = median([r], r["case"], r["backend"], "floor", "fwd")
        fb = median([r], r["case"], r["backend"], "floor", "fwdbwd")
        rate = lambda n, s: "n/a" if s is None else f"{n / s / 1e9:.1f}"  # noqa: E731
        if flops is not None and (fwd is not None or fb is not None):
            rows.append([r["label"], r["backend"], f"{flops / 1e9:.3g}",
                         rate(flops, fwd), rate(3 * flops, fb)])
    return table(header, rows)


def process_table(results) -> str:
    header = ["case", "backend", "peak RSS MB", "wall s", "load avg before / after"]
    rows = []
    for r in results:
        p = r.get("process") or {}
        load = " / ".join("?" if p.get(k) is None else f"{p[k]:.1f}"
                          for k in ("load_before", "load_after"))
        rows.append([r["label"], r["backend"],
                     f"{p['peak_rss_mb']:.0f}" if "peak_rss_mb" in p else "n/a",
                     f"{p['wall_s']:.1f}" if "wall_s" in p else "n/a", load])
    return table(header, rows)


def agreement_table(results, cross: dict[str, float]) -> str:
    """Largest ``|hs|`` differences: same network, same float32 inputs, other code."""
    rows = [[r["label"], r["backend"], what, f"{v:.2e}" if isinstance(v, float) else str(v)]
            for r in results for what, v in (r.get("agreement") or {}).items()]
    rows += [[label, "torch vs jax", "ours vs ours", f"{v:.2e}"] for label, v in cross.items()]
    return table(["case", "backend", "compared", "max |hs difference|"], rows)


def problems(results) -> list[str]:
    """Every contender that could not be built or failed, and every crashed worker."""
    out = []
    for r in results:
        where = f"{r.get('label', r.get('case'))} / {r.get('backend')}"
        if r.get("crash"):
            out.append(f"{where}: worker failed: {r['crash']}")
        for entry in r.get("impls", {}).values():
            if entry.get("setup_error"):
                out.append(f"{where} / {entry['label']}: {entry['setup_error'].strip()}")
            for mode in MODES:
                err = (entry.get(mode) or {}).get("error")
                if err:
                    out.append(f"{where} / {entry['label']} / {mode}: {err}")
    return out


# Issue 6's targets: (backend, case, numerator, denominator, mode, limit, wording).
TARGETS = (
    [("torch", c, "ours", "floor", m, lim, f"torch {MODE_NAMES[m]} within {lim}x of the torch floor")
     for c in ("W1 leaky", "W2 leaky", "W2 elman") for m, lim in (("fwd", 1.5), ("fwdbwd", 1.3))]
    + [("torch", "W2 elman", "ours", "nn_rnn", m, 1.0, f"torch Elman {MODE_NAMES[m]} no slower than torch.nn.RNN")
       for m in MODES]
    + [("torch", c, "ours", "mrnntorch", "fwdbwd", 1 / 20,
        "torch forward + backward at least 20x faster than the mRNNTorch-style loop")
       for c in ("W2 leaky", "W2 elman")]
    + [("torch", c, "ours", "mrnntorch", m, 1 / 4,
        f"torch {MODE_NAMES[m]} at least 4x faster than the mRNNTorch-style loop")
       for c in ("W3 leaky", "W3 elman") for m in MODES]
    + [("jax", c, "ours", "floor", m, 1.2, f"JAX {MODE_NAMES[m]} within 1.2x of the JAX floor")
       for c in ("W1 leaky", "W2 leaky", "W2 elman", "W3 leaky", "W3 elman") for m in MODES]
    + [(b, "W4 leaky", "ours", "floor", m, 0.5,
        f"{b} {MODE_NAMES[m]} at least 2x faster than its dense floor (block sparsity)")
       for b in ("torch", "jax") for m in MODES]
)


def targets_table(results) -> str:
    """Each of issue 6's ratio targets that this run measured: the ratio and whether it is met."""
    by_label = {}
    for r in results:
        by_label[(r.get("label"), r.get("backend"))] = r
    rows = []
    for backend, label, num, den, mode, limit, wording in TARGETS:
        r = by_label.get((label, backend))
        if r is None:
            continue
        a = median([r], r["case"], backend, num, mode)
        b = median([r], r["case"], backend, den, mode)
        ratio = None if a is None or b is None else a / b
        shown = "n/a" if ratio is None else f"{ratio:.3f}" + (f" ({1 / ratio:.1f}x faster)" if ratio < 1 else "")
        verdict = "n/a" if ratio is None else ("met" if ratio <= limit else "MISSED")
        rows.append([label, wording, f"{num} / {den}", f"<= {limit:.3g}", shown, verdict])
    for r in results:
        if r.get("backend") != "jax":
            continue
        compile_s = (r.get("impls", {}).get("ours") or {}).get("compile_s")
        if compile_s:
            worst = max(compile_s.values())
            rows.append([r["label"], "JAX compile under 1 s per shape", "max(fwd, f+b) s",
                         "< 1", f"{worst:.2f}", "met" if worst < 1 else "MISSED"])
    return table(["case", "target (issue 6)", "ratio", "limit", "measured", "verdict"], rows)


def two_outputs_table(results) -> str:
    """JAX leaky forward: what the second output costs (the floor writing xs and hs)."""
    header = ["case", "floor, xs + hs / floor (fwd)", "ours / floor (fwd)",
              "ours / floor, xs + hs (fwd)"]
    rows = []
    for r in results:
        if r.get("backend") != "jax":
            continue
        m = {n: median([r], r["case"], "jax", n, "fwd") for n in ("ours", "floor", "floor_xh")}
        if m["floor_xh"] is None:
            continue
        rows.append([r["label"], _ratio(m["floor_xh"], m["floor"]), _ratio(m["ours"], m["floor"]),
                     _ratio(m["ours"], m["floor_xh"])])
    return table(header, rows) if rows else ""


def scaling_table(results, steps: list[int]) -> str:
    """W2 leaky forward + backward against T: linear growth doubles per doubling of T."""
    header = ["T", "torch ours ms", "x prev", "mRNNTorch-style ms", "x prev",
              "ours / mRNNTorch-style", "JAX ours ms", "x prev"]
    rows, prev = [], {}
    for T in steps:
        case = f"W2:leaky:{T}"
        cells = {}
        for key, backend, impl in (("torch", "torch", "ours"), ("loop", "torch", "mrnntorch"),
                                   ("jax", "jax", "ours")):
            cells[key] = median(results, case, backend, impl, "fwdbwd")
        grow = lambda k: _ratio(cells[k], prev.get(k)) if prev else ""  # noqa: E731
        rows.append([str(T), _ms(cells["torch"]), grow("torch"), _ms(cells["loop"]), grow("loop"),
                     _ratio(cells["torch"], cells["loop"]), _ms(cells["jax"]), grow("jax")])
        prev = cells
    return table(header, rows)

"""What the torch and the JAX worker processes share: arguments, timing loop, result file.

``run.py`` starts one worker process per (backend, case), so each process's
peak memory belongs to one network, and torch and JAX never share a process.
A worker writes one JSON file; ``run.py`` reads it back.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from timing import Timing, load_average, measure, process_peak_mb
from workloads import Case

MODES = ("fwd", "fwdbwd")


@dataclass
class Impl:
    """One contender: a label, a forward call, a forward + backward call, its ``hs``.

    ``fwd`` and ``fwdbwd`` each do one complete, synchronised call;
    ``hs`` returns the ``[B, T, H]`` rates of one forward as numpy (for the
    agreement checks), or None where the contender computes something else.
    """

    label: str
    fwd: Callable[[], object]
    fwdbwd: Callable[[], object] | None
    hs: Callable[[], np.ndarray] | None = None
    compile_s: dict[str, float] | None = None


class Skip(Exception):
    """A contender this backend does not offer (yet): reported, never a failure."""


def build_each(names: list[str], make: Callable[[str], Impl]):
    """``make(name)`` for every name: ``(impls, errors, skipped)``, never raising."""
    impls, errors, skipped = {}, {}, {}
    for name in names:
        try:
            impls[name] = make(name)
        except Skip as why:
            skipped[name] = str(why)
        except Exception as err:  # noqa: BLE001 - shown in the table
            errors[name] = f"{type(err).__name__}: {err}"
    return impls, errors, skipped


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="one benchmark worker (started by run.py)")
    p.add_argument("--case", required=True, help="W2:leaky:500")
    p.add_argument("--impls", required=True, help="comma-separated implementation names")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--budget", type=float, default=30.0)
    p.add_argument("--min-time", type=float, default=0.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="JSON result file")
    p.add_argument("--save-hs", default=None, help="write ours' hs [B, T, H] here (.npy)")
    return p.parse_args(argv)


def run_worker(backend: str, build: Callable[[Case, list[str], str], tuple],
               argv=None) -> None:
    """Build the contenders with ``build(case, names, device)``, time them, write the result.

    ``build`` returns ``(impls, setup_errors, skipped, info)``: name ->
    :class:`Impl`, name -> message for contenders that failed to build, name
    -> reason for contenders the backend does not offer, and facts about the
    framework (versions, threads, device).
    """
    args = parse_args(argv)
    started, load_before = time.perf_counter(), load_average()
    case = Case.from_key(args.case)
    names = args.impls.split(",")
    result = {"backend": backend, "case": args.case, "label": case.label,
              "dense_flops": case.dense_flops, "impls": {}, "agreement": {}}
    try:
        impls, setup_errors, skipped, info = build(case, names, args.device)
    except Exception:  # noqa: BLE001 - the parent prints it
        impls, skipped, info = {}, {}, {}
        setup_errors = {n: traceback.format_exc(limit=3) for n in names}
    result["info"] = {**info, "python": platform.python_version()}
    timings: dict[str, dict[str, Timing]] = {n: {} for n in impls}
    for mode in args.modes.split(","):
        # A contender without this mode (None) is information for the other one only.
        calls = {n: getattr(impl, mode) for n, impl in impls.items()
                 if getattr(impl, mode) is not None}
        for n, t in measure(calls, repeats=args.repeats, warmup=args.warmup,
                            budget_s=args.budget, min_time_s=args.min_time).items():
            timings[n][mode] = t
    for n in names:
        entry = {"label": impls[n].label if n in impls else n,
                 "setup_error": setup_errors.get(n), "skipped": skipped.get(n)}
        if n in impls:
            entry.update({m: t.to_dict() for m, t in timings[n].items()})
            entry["compile_s"] = impls[n].compile_s
        result["impls"][n] = entry
    try:
        result["agreement"] = agreement(impls, args.save_hs)
    except Exception as err:  # noqa: BLE001 - a failed check is reported, not fatal
        result["agreement"] = {"error": f"{type(err).__name__}: {err}"}
    result["process"] = {"peak_rss_mb": process_peak_mb(),
                         "wall_s": time.perf_counter() - started,
                         "load_before": load_before, "load_after": load_average(),
                         "pid": os.getpid()}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


def agreement(impls: dict[str, Impl], save_hs: str | None) -> dict[str, float]:
    """Largest ``|hs_ours - hs_other|`` for every contender that computes the same network."""
    if "ours" not in impls or impls["ours"].hs is None:
        return {}
    ours = impls["ours"].hs()
    if save_hs:
        np.save(save_hs, ours)
    out = {}
    for name, impl in impls.items():
        if name != "ours" and impl.hs is not None:
            out[f"ours vs {impl.label}"] = float(np.max(np.abs(ours - impl.hs())))
    return out

"""The speed benchmark of issue 6: ours (torch and JAX) against floors and baselines.

    bash scripts/dev.sh bench                      # W1..W4, 5 timed calls each
    bash scripts/dev.sh bench --workloads W1,W3    # a subset
    bash scripts/dev.sh bench --quick              # tiny T and repeats (CI smoke test)
    bash scripts/dev.sh bench --scaling            # W2 leaky fwd+bwd at T = 250, 500, 1000
    bash scripts/dev.sh bench --markdown benchmarks/RESULTS.md   # also append the tables

Each (backend, case) runs in its own worker process (``torch_worker.py``,
``jax_worker.py``) so torch and JAX never share a process and each process's
peak memory belongs to one network. Within a worker the contenders are timed
in interleaved rounds; the table shows medians and ratios of medians.
Exit status 1 when anything (ours included) failed to build or run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import report
from timing import MAX_REPEATS
from workloads import Case, cases, workloads

HERE = Path(__file__).resolve().parent
SCALING_STEPS = (250, 500, 1000)


# The mRNNTorch-style loop on W4 serves no target of issue 6 and costs about as
# much as the dense floor, so the default run leaves it out (--all-baselines).
SKIPPED_BY_DEFAULT = {("W4", "mrnntorch")}


# Where skipping absent blocks should pay, ours also runs forced onto its dense
# path: the gain, and (in the agreement table) that both give the same numbers.
DENSE_PATH_TOO = {"W4"}


def contenders(case: Case, backend: str, all_baselines: bool = False) -> list[str]:
    names = ["ours"] + (["ours_dense"] if case.workload.name in DENSE_PATH_TOO else [])
    names += ["floor", "floor_hb"]
    if backend == "jax":
        # What the leaky call's second output costs by itself (JAX, where it matters).
        return names + (["floor_xh"] if case.kind == "leaky" else [])
    if all_baselines or (case.workload.name, "mrnntorch") not in SKIPPED_BY_DEFAULT:
        names.append("mrnntorch")
    if case.kind == "elman" and case.workload.activation == "tanh":
        names.append("nn_rnn")
    return names


def spawn(backend: str, case: Case, impls: list[str], modes: str, args, tmp: Path) -> dict:
    """Run one worker process and return its result (or a record of its crash)."""
    stem = f"{backend}-{case.key.replace(':', '-')}"
    out, hs = tmp / f"{stem}.json", tmp / f"{stem}.npy"
    cmd = [sys.executable, str(HERE / f"{backend}_worker.py"), "--case", case.key,
           "--impls", ",".join(impls), "--modes", modes, "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--budget", str(args.budget),
           "--min-time", str(args.min_time),
           "--device", args.device, "--out", str(out), "--save-hs", str(hs)]
    env, pin = dict(os.environ), None
    if args.threads:
        # Pinning the worker to N CPUs makes torch (OpenMP) and XLA size their
        # thread pools to N; OMP_NUM_THREADS says the same to torch explicitly.
        cpus = sorted(os.sched_getaffinity(0))[:args.threads]
        env["OMP_NUM_THREADS"] = str(len(cpus))
        pin = lambda: os.sched_setaffinity(0, cpus)  # noqa: E731
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              env=env, preexec_fn=pin)
        crash = None if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        crash = f"timed out after {args.timeout} s"
    if crash or not out.exists():
        return {"backend": backend, "case": case.key, "label": case.label, "impls": {},
                "crash": crash or "no result file written"}
    with open(out) as f:
        result = json.load(f)
    result["hs_file"] = str(hs) if hs.exists() else None
    return result


def run_all(jobs, args, tmp: Path) -> list[dict]:
    results = []
    for i, (backend, case, impls, modes) in enumerate(jobs, 1):
        print(f"[{i:>2}/{len(jobs)}] {case.label:<9} T={case.steps:<5} {backend:<5} ...",
              end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results.append(spawn(backend, case, impls, modes, args, tmp))
        status = " FAILED" if results[-1].get("crash") else ""
        print(f" {time.perf_counter() - t0:6.1f} s{status}", file=sys.stderr, flush=True)
    return results


def cross_backend(results) -> dict[str, float]:
    """Largest ``|hs_torch - hs_jax|`` of ours per case (same checkpoint, same inputs)."""
    files = {}
    for r in results:
        if r.get("hs_file"):
            files.setdefault(r["label"], {})[r["backend"]] = r["hs_file"]
    return {label: float(np.max(np.abs(np.load(f["torch"]) - np.load(f["jax"]))))
            for label, f in files.items() if {"torch", "jax"} <= set(f)}


def machine(results) -> list[str]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {}
    for r in results:
        info.update(r.get("info") or {})
    threads = info.get("threads", "?")
    lines = [f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
             f"machine: {platform.node()}, {os.cpu_count()} CPUs (nproc), {cpu}, {platform.system()} {platform.release()}",
             f"python {platform.python_version()}, torch {info.get('torch', '?')} "
             f"({threads} intra-op threads, device {info.get('device', '?')}), "
             f"jax {info.get('jax', '?')} (backend {info.get('jax_backend', '?')}), float32"]
    return lines


def render(results, args, scaling: bool) -> str:
    parts = [*machine(results), f"command: benchmarks/run.py {' '.join(map(shlex.quote, args.argv))}",
             f"worker threads: {args.threads or 'framework default (all CPUs)'}",
             f"timed calls per contender: {args.repeats} (after {args.warmup} warm-up), "
             f"fewer (at least 1) where they would take more than {args.budget:g} s, more (up to "
             f"{MAX_REPEATS}) where they would take less than {args.min_time:g} s (see 'timed calls')",
             ""]
    loads = [r["process"][k] for r in results for k in ("load_before", "load_after")
             if (r.get("process") or {}).get(k) is not None]
    if loads and max(loads) > (os.cpu_count() or 1):
        parts += [f"WARNING: load average reached {max(loads):.1f} on {os.cpu_count()} CPUs: other "
                  "processes competed for the CPU; medians are noisier than usual (multi-threaded "
                  "torch suffers most: try --threads 1).", ""]
    if scaling:
        steps = sorted({int(r["case"].split(":")[2]) for r in results})
        parts += ["### Scaling: W2 leaky, forward + backward, against T", "",
                  report.scaling_table(results, steps), ""]
    else:
        parts += ["### Medians and ratios", "", report.timing_table(results), "",
                  "### Issue 6 targets", "", report.targets_table(results), "",
                  "### The floor: dense FLOPs and rates", "", report.floor_table(results), ""]
        two = report.two_outputs_table(results)
        if two:
            parts += ["### JAX leaky forward: the cost of the second output", "",
                      "A leaky call returns xs and hs; the floor returns one array. 'floor, xs + hs' "
                      "is the floor writing both, batch-first (no input, bias or leak).", "", two, ""]
    parts += ["### Agreement (float32)", "", report.agreement_table(results, cross_backend(results)), "",
              "### Processes", "", report.process_table(results), ""]
    skipped = sorted({f"{r['label']}: mRNNTorch-style loop" for r in results
                      if r.get("backend") == "torch" and (r["label"].split()[0], "mrnntorch")
                      in SKIPPED_BY_DEFAULT and "mrnntorch" not in r.get("impls", {})})
    if skipped:
        parts += ["Skipped by default (no issue 6 target needs them; --all-baselines runs them): "
                  + "; ".join(skipped), ""]
    absent = [f"{r['label']} / {r['backend']}: {e['skipped']}" for r in results
              for e in r.get("impls", {}).values() if e.get("skipped")]
    if absent:
        parts += ["Not offered by the backend (yet): " + "; ".join(absent), ""]
    issues = report.problems(results)
    if issues:
        parts += ["### Problems", ""] + [f"- {p}" for p in issues] + [""]
    return "\n".join(parts)


def report_load() -> str | None:
    """A warning when the machine is already busy before the run starts."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cpus = os.cpu_count() or 1
    if load > 0.5 * cpus:
        return (f"note: load average {load:.1f} on {cpus} CPUs before the run; timings will be "
                f"noisy (--threads 1 suffers least)")
    return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default=",".join(workloads()), help="comma-separated, e.g. W1,W3")
    p.add_argument("--backends", default="torch,jax")
    p.add_argument("--quick", action="store_true", help="tiny T and repeats: a smoke test")
    p.add_argument("--scaling", action="store_true",
                   help="only the scaling study: W2 leaky fwd+bwd at T = 250, 500, 1000")
    p.add_argument("--all-baselines", action="store_true",
                   help="also run the baselines skipped by default (W4's mRNNTorch-style loop)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 5, quick 2)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed calls first (default 3, quick 2): TorchScript optimises on its 2nd call")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds one contender may spend per mode before it gets fewer calls (default 30)")
    p.add_argument("--min-time", type=float, default=None,
                   help="a contender whose timed calls would take less than this many seconds "
                        "gets more of them, up to 100 (default 1, quick 0): fast calls are noisy")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per worker process")
    p.add_argument("--threads", type=int, default=None,
                   help="pin each worker to this many CPUs (default: all); 1 is steadier on a shared machine")
    p.add_argument("--device", default="cpu", help="torch device (cpu or cuda); JAX uses its default")
    p.add_argument("--markdown", default=None, help="append the tables, date and machine to this file")
    p.add_argument("--json", default=None, help="write every raw result (all timings) to this file")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.warmup = args.warmup or (2 if args.quick else 3)
    args.budget = args.budget or (10.0 if args.quick else 30.0)
    if args.min_time is None:
        args.min_time = 0.0 if args.quick else 1.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    if args.scaling:
        w2 = workloads()["W2"]
        steps = [max(1, T // 25) for T in SCALING_STEPS] if args.quick else list(SCALING_STEPS)
        jobs = [(b, Case(w2, "leaky", T), ["ours", "mrnntorch"] if b == "torch" else ["ours"], "fwdbwd")
                for T in steps for b in backends]
    else:
        jobs = [(b, c, contenders(c, b, args.all_baselines), "fwd,fwdbwd")
                for c in cases(args.workloads.split(","), quick=args.quick) for b in backends]
    load = report_load()
    if load:
        print(load, file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mrnn-bench-") as tmp:
        results = run_all(jobs, args, Path(tmp))
        if args.scaling:
            for r in results:  # the same case at several T: tell the rows apart
                r["label"] = f"{r['label']} T={r['case'].split(':')[2]}"
        text = render(results, args, args.scaling)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "hs_file"} for r in results], f, indent=1)
    if args.markdown:
        title = "Scaling run" if args.scaling else "Benchmark run"
        with open(args.markdown, "a") as f:
            f.write(f"\n## {title}, {datetime.date.today().isoformat()}\n\n{text}\n")
    return 1 if report.problems(results) else 0


if __name__ == "__main__":
    sys.exit(main())

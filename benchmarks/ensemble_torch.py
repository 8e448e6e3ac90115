"""Issue 16's ensemble targets, torch: ``mrnn_torch.Ensemble`` against its members run one by one.

    OMP_NUM_THREADS=1 python benchmarks/ensemble_torch.py            # W3 x 16 and W2 x 8
    OMP_NUM_THREADS=1 python benchmarks/ensemble_torch.py --quick    # a few steps: checks it runs
    python benchmarks/ensemble_torch.py --cases W3 --members 16 --threads 2

One training step = forward, ``loss = hs.mean()`` (summed over members),
backward and an Adam step. "sequential" runs the same ``E`` member models
one after the other through their own (single-network, fused) forward, each
with its own Adam; "ensemble" runs them as one ``Ensemble`` call. Both are
timed in interleaved rounds (``timing.measure``), medians reported. The FLOP
floor of a step is ``3 x 2 E B H^2 T`` (forward, and the two products of the
backward) divided by the peak sgemm rate measured at the start of the same
run. Memory: the RSS a step needs above its start at peak (``timing.peak_during``,
median of 3 steps after 2 warm-up steps, in a fresh process each), the
ensemble's against ``E`` times one member's. Targets (issue 16): W3 x 16 throughput >= 3x sequential and time
<= 2x the floor; W2 x 8 time <= 1.05x sequential, memory <= 1.1x the members'
sum. float32, CPU (``--device cuda`` where there is one).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import measure, peak_during  # noqa: E402
from workloads import SEED, Case, workloads  # noqa: E402

from mrnn_torch import Ensemble  # noqa: E402

DEFAULT_MEMBERS = {"W3": 16, "W2": 8}


def peak_sgemm_gflops(device: str, seconds: float = 1.0) -> float:
    """The best sgemm rate of a few square sizes (median of repeats each), GFLOP/s."""
    best = 0.0
    for n in (256, 512, 1024):
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        c = torch.empty(n, n, device=device)
        torch.mm(a, b, out=c)
        _sync(device)
        times = []
        stop = time.perf_counter() + seconds / 3
        while time.perf_counter() < stop or len(times) < 3:
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            _sync(device)
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n**3 / statistics.median(times) / 1e9)
    return best


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rates(out, leaky: bool):
    return out[1] if leaky else out


def build(case: Case, members: int, device: str, only: str | None = None):
    """``(ensemble step, sequential step, one member's step)`` of the case, float32.
    ``only="member"`` builds member 0 alone (the others are not made)."""
    seeds = [SEED + e for e in range(1 if only == "member" else members)]
    ens = Ensemble.from_seeds(case.workload.spec, seeds, dynamics=case.dynamics(), device=device,
                              dtype=torch.float32)
    members = len(seeds)
    inp_np, state_np = case.arrays()
    inp = torch.tensor(inp_np, device=device)
    state = torch.tensor(state_np, device=device)
    leaky = case.kind == "leaky"
    models = ens.members()
    ens_opt = torch.optim.Adam(ens.parameters(), lr=1e-5)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-5) for m in models]
    state_e = state.expand(members, *state.shape)

    def ensemble_step():
        # the mean of each member's rates, summed: each member's gradient is its own
        # (xs is dropped at once, as in member_step: its memory is not held)
        loss = _rates(ens(inp, state_e) if leaky else ens(inp, h0=state_e),
                      leaky).mean(dim=(1, 2, 3)).sum()
        loss.backward()
        ens_opt.step()
        ens_opt.zero_grad()
        _sync(device)

    def member_step(m, opt):
        loss = _rates(m(inp, state), leaky).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()

    def sequential_step():
        for m, opt in zip(models, opts):
            member_step(m, opt)
        _sync(device)

    def one_member():
        member_step(models[0], opts[0])
        _sync(device)

    return ensemble_step, sequential_step, one_member


def memory_probe(key: str) -> None:
    """``W2:8:500:ensemble`` (or ``...:member``): print the MB of RSS one step needs at its
    peak, measured in this fresh process after two warm-up steps (median of 3)."""
    name, members, steps, what = key.split(":")
    case = Case(workloads()[name], "leaky", int(steps))
    ensemble_step, _, one_member = build(case, int(members), "cpu", only=what)
    step = ensemble_step if what == "ensemble" else one_member
    step()
    step()
    peaks = [peak_during(step)[2] for _ in range(3)]
    print(statistics.median(peaks) if None not in peaks else "n/a")


def probe(name: str, members: int, steps: int, what: str) -> float | None:
    """:func:`memory_probe` in a fresh interpreter (so no other step's memory is reused)."""
    done = subprocess.run([sys.executable, __file__, "--threads", str(torch.get_num_threads()),
                           "--memory-probe", f"{name}:{members}:{steps}:{what}"],
                          capture_output=True, text=True, check=True)
    value = done.stdout.strip().splitlines()[-1]
    return None if value == "n/a" else float(value)


def run_case(name: str, members: int, steps: int | None, repeats: int, device: str,
             gflops: float, min_time_s: float = 1.0) -> dict:
    workload = workloads()[name]
    case = Case(workload, "leaky", steps or workload.steps)
    ensemble_step, sequential_step, one_member = build(case, members, device)
    t = measure({"ensemble": ensemble_step, "sequential": sequential_step},
                repeats=repeats, warmup=2, budget_s=60, min_time_s=min_time_s)
    for label, timing in t.items():
        if timing.error:
            raise SystemExit(f"{name} {label}: {timing.error}")
    ens_s, seq_s = t["ensemble"].median, t["sequential"].median
    flops = 3 * members * case.dense_flops
    floor_s = flops / (gflops * 1e9)
    ens_mb = probe(name, members, case.steps, "ensemble")
    one_mb = probe(name, members, case.steps, "member")
    return {"case": f"{name} leaky x {members}", "H": case.hidden_size, "B": workload.batch,
            "T": case.steps, "ensemble_s": ens_s, "sequential_s": seq_s,
            "speedup": seq_s / ens_s, "floor_s": floor_s, "over_floor": ens_s / floor_s,
            "ens_mb": ens_mb, "sum_mb": None if one_mb is None else members * one_mb,
            "calls": len(t["ensemble"].times)}


def table(rows: list[dict]) -> str:
    head = ["case", "H, B, T", "ensemble step s", "sequential s", "throughput vs sequential",
            "FLOP floor s", "ensemble / floor", "ensemble peak MB", "sum of members' MB",
            "memory ratio", "timed calls"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        mem = ("n/a" if r["ens_mb"] is None or not r["sum_mb"]
               else f"{r['ens_mb'] / r['sum_mb']:.2f}")
        fmt = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
        lines.append("| " + " | ".join([
            r["case"], f"{r['H']}, {r['B']}, {r['T']}", f"{r['ensemble_s']:.4f}",
            f"{r['sequential_s']:.4f}", f"{r['speedup']:.2f}x", f"{r['floor_s']:.4f}",
            f"{r['over_floor']:.2f}", fmt(r["ens_mb"]), fmt(r["sum_mb"]), mem,
            str(r["calls"])]) + " |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="W3,W2", help="workloads, comma-separated (W3, W2)")
    parser.add_argument("--members", type=int, default=None,
                        help="E for every case (default: W3 16, W2 8)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls each")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="20 steps, 2 timed calls")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return []
    names = [n for n in args.cases.split(",") if n]
    gflops = peak_sgemm_gflops(args.device, 0.3 if args.quick else 1.5)
    print(f"# torch {torch.__version__}, {platform.machine()}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, load "
          f"{os.getloadavg()[0]:.2f}, peak sgemm {gflops:.1f} GFLOP/s")
    rows = []
    for name in names:
        members = args.members or DEFAULT_MEMBERS.get(name, 8)
        rows.append(run_case(name, members, 20 if args.quick else None,
                             2 if args.quick else args.repeats, args.device, gflops,
                             0.0 if args.quick else 1.0))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()

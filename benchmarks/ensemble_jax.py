"""JAX ensembles (issue 16): one training step of E networks, against E single-network steps.

    python benchmarks/ensemble_jax.py              # both parts, about 2 minutes on this VM
    python benchmarks/ensemble_jax.py --quick      # fewer steps, a smoke run

Part ``train`` (pinned to one CPU, as ``run.py --threads 1``): for 16 W3-size
and 8 W2-size leaky networks (``workloads.py``; members from seeds 0..E-1),
one training step = ``grad`` of ``mean(hs)`` per member (summed over
members) with respect to the trainable arrays, plus an Adam update (each
member its own state: ``mrnn_jax.ensemble.member_optimiser``). Contenders,
timed interleaved (``timing.measure``), medians:

- ``sequential``: the E jitted single-network steps, one after another;
- ``ensemble``: one jitted step of ``mrnn_jax.Ensemble``;
- ``vmap`` (W3 only, information): ``eqx.filter_vmap`` of the single step,
  what the old ``examples/jax_ensemble.py`` did;
- ``one member``: one single-network step; its peak memory times E is "the
  sum of the members'".

The FLOP floor of a step is ``3 x 2 E B H^2 T`` (forward, backward through
the states, weight gradient) divided by the peak sgemm rate measured in the
same process (a 1024^3 float32 matmul, median).

Part ``sharding`` (2 CPUs, ``XLA_FLAGS=--xla_force_host_platform_device_count=2``):
the ensemble step of 16 W3 networks on one device against the same step with
the ensemble split over a 2-device ``"members"`` mesh (``Ensemble.shard``).
It also checks that the two give the same updated weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _setup():
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import mrnn_core
    import mrnn_jax
    from mrnn_jax.ensemble import member_optimiser
    return eqx, jax, jnp, np, optax, mrnn_core, mrnn_jax, member_optimiser


def _f32(tree):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    return jax.tree.map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, tree)


def peak_sgemm_gflops(n: int = 1024) -> float:
    """Median float32 GFLOP/s of an ``n^3`` jitted matmul on JAX's default device."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from timing import measure

    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    t = measure({"sgemm": lambda: jax.block_until_ready(mm(a))}, repeats=20, warmup=3,
                budget_s=5)["sgemm"]
    return 2 * n**3 / t.median / 1e9


def build_steps(case, E: int):
    """``(single_steps, ensemble_step, vmap_step)``: zero-argument callables doing one
    training step (and waiting for it), plus the states they update."""
    eqx, jax, jnp, np, optax, mrnn_core, mrnn_jax, member_optimiser = _setup()
    dyn = case.dynamics()
    models = [_f32(mrnn_jax.mRNN.from_checkpoint(
        mrnn_core.Checkpoint.initialise(case.workload.spec, dyn, seed=s))) for s in range(E)]
    inp_np, state_np = case.arrays()
    inp, x0 = jnp.asarray(inp_np), jnp.asarray(state_np)
    adam = optax.adam(1e-3)

    def loss1(trainable, frozen, inp, x0):
        return jnp.mean(eqx.combine(trainable, frozen)(inp, x0)[1])

    @eqx.filter_jit
    def step1(trainable, frozen, opt_state, inp, x0):
        grads = eqx.filter_grad(loss1)(trainable, frozen, inp, x0)
        updates, opt_state = adam.update(grads, opt_state)
        return eqx.apply_updates(trainable, updates), opt_state

    singles = []
    for m in models:
        t, f = eqx.partition(m, mrnn_jax.trainable_filter(m))
        singles.append((t, f, adam.init(t)))

    def sequential():
        return jax.block_until_ready([step1(t, f, s, inp, x0) for t, f, s in singles])

    def one_member():
        t, f, s = singles[0]
        return jax.block_until_ready(step1(t, f, s, inp, x0))

    ens = mrnn_jax.Ensemble.from_models(models)
    per_member = member_optimiser(adam)
    t_e, f_e = eqx.partition(ens, mrnn_jax.trainable_filter(ens))
    s_e = per_member.init(t_e)

    def loss_e(trainable, frozen, inp, x0):
        hs = eqx.combine(trainable, frozen)(inp, x0)[1]
        return jnp.sum(jnp.mean(hs, axis=(1, 2, 3)))

    @eqx.filter_jit
    def step_e(trainable, frozen, opt_state, inp, x0):
        grads = eqx.filter_grad(loss_e)(trainable, frozen, inp, x0)
        updates, opt_state = per_member.update(grads, opt_state)
        return eqx.apply_updates(trainable, updates), opt_state

    state = {"ens": (t_e, f_e, s_e)}

    def ensemble():
        return jax.block_until_ready(step_e(*state["ens"], inp, x0))

    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[s[:1] + s[2:] for s in singles])
    frozen0 = singles[0][1]
    vstep = eqx.filter_jit(eqx.filter_vmap(
        lambda t, s: step1(t, frozen0, s, inp, x0)))

    def vmapped():
        return jax.block_until_ready(vstep(*stacked))

    return dict(sequential=sequential, ensemble=ensemble, vmap=vmapped,
                one_member=one_member), (step_e, state, inp, x0)


def part_train(args) -> dict:
    from timing import measure
    from workloads import Case, workloads

    import jax
    out = {"peak_gflops": peak_sgemm_gflops(), "cases": [], "jax": jax.__version__}
    for name, E in (("W3", 16), ("W2", 8)):
        w = workloads()[name]
        steps = min(w.steps, 50) if args.quick else w.steps
        case = Case(w, "leaky", steps)
        calls, _ = build_steps(case, E)
        if name != "W3":
            calls.pop("vmap")
        t = measure(calls, repeats=args.repeats, warmup=2, budget_s=args.budget,
                    min_time_s=1.0)
        flops = 3 * 2 * E * w.batch * case.hidden_size**2 * steps
        out["cases"].append({
            "case": f"{E} x {name} leaky", "E": E, "B": w.batch, "T": steps,
            "H": case.hidden_size, "flops": flops,
            "ms": {k: v.median * 1e3 if v.median else None for k, v in t.items()},
            "calls": {k: len(v.times) for k, v in t.items()},
            "peak_mb": {k: v.call_peak_mb for k, v in t.items()},
            "errors": {k: v.error for k, v in t.items() if v.error}})
    return out


def part_sharding(args) -> dict:
    from timing import measure
    from workloads import Case, workloads

    eqx, jax, jnp, np, optax, mrnn_core, mrnn_jax, member_optimiser = _setup()
    from mrnn_jax.ensemble import mesh

    w = workloads()["W3"]
    E = 16
    steps = min(w.steps, 50) if args.quick else w.steps
    case = Case(w, "leaky", steps)
    _, (step_e, state, inp, x0) = build_steps(case, E)
    t_e, f_e, s_e = state["ens"]
    m = mesh(members=2)
    per_member = member_optimiser(optax.adam(1e-3))
    ens2 = eqx.combine(t_e, f_e).shard(m)
    t2, f2 = eqx.partition(ens2, mrnn_jax.trainable_filter(ens2))
    s2 = per_member.init(t2)
    rep = jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec())
    inp2, x02 = jax.device_put(inp, rep), jax.device_put(x0, rep)

    def one():
        return jax.block_until_ready(step_e(t_e, f_e, s_e, inp, x0))

    def two():
        return jax.block_until_ready(step_e(t2, f2, s2, inp2, x02))

    a, b = one()[0], two()[0]
    diff = max(float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    t = measure({"1 device": one, "2 devices": two}, repeats=args.repeats, warmup=2,
                budget_s=args.budget, min_time_s=1.0)
    return {"case": f"{E} x W3 leaky", "devices": [str(d) for d in jax.devices()],
            "sharding": str(jax.tree.leaves(t2)[0].sharding),
            "ms": {k: v.median * 1e3 for k, v in t.items()},
            "calls": {k: len(v.times) for k, v in t.items()}, "max_abs_diff": diff}


def _child(part: str, args, cpus: int) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(cpus)
    if part == "sharding":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            " --xla_force_host_platform_device_count=2").strip()
    chosen = sorted(os.sched_getaffinity(0))[:cpus]
    cmd = [sys.executable, __file__, "--part", part, "--repeats", str(args.repeats),
           "--budget", str(args.budget)] + (["--quick"] if args.quick else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.sched_setaffinity(0, chosen))
    if proc.returncode:
        raise SystemExit(f"part {part} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}g}"


def report(train: dict, sharding: dict) -> str:
    lines = [f"jax {train['jax']}; peak sgemm (1024^3 float32, one CPU): "
             f"{train['peak_gflops']:.1f} GFLOP/s", "",
             "| case | contender | ms per step | timed calls | call peak MB |",
             "|---|---|---|---|---|"]
    for c in train["cases"]:
        for k, ms in c["ms"].items():
            lines.append(f"| {c['case']} | {k} | {_fmt(ms)} | {c['calls'][k]} | "
                         f"{_fmt(c['peak_mb'][k])} |")
    lines += ["", "| case | measure | value | target | verdict |", "|---|---|---|---|---|"]
    for c in train["cases"]:
        ms = c["ms"]
        floor_ms = c["flops"] / (train["peak_gflops"] * 1e9) * 1e3
        speed = ms["sequential"] / ms["ensemble"]
        to_floor = ms["ensemble"] / floor_ms
        mem_sum = (c["peak_mb"]["one_member"] or 0) * c["E"]
        mem = c["peak_mb"]["ensemble"]
        if c["E"] == 16:
            lines.append(f"| {c['case']} | throughput, ensemble vs sequential | "
                         f"{speed:.2f}x | >= 3x | {'met' if speed >= 3 else 'MISSED'} |")
            lines.append(f"| {c['case']} | ensemble / FLOP floor ({floor_ms:.1f} ms) | "
                         f"{to_floor:.2f} | <= 2 | {'met' if to_floor <= 2 else 'MISSED'} |")
            if ms.get("vmap"):
                lines.append(f"| {c['case']} | vmap of the single step / sequential (info) | "
                             f"{ms['vmap'] / ms['sequential']:.2f} | | |")
        else:
            ratio = ms["ensemble"] / ms["sequential"]
            lines.append(f"| {c['case']} | ensemble / sequential time | {ratio:.2f} | <= 1.05 | "
                         f"{'met' if ratio <= 1.05 else 'MISSED'} |")
            mr = None if not mem_sum or mem is None else mem / mem_sum
            lines.append(f"| {c['case']} | ensemble peak / E x one member's "
                         f"({_fmt(mem)} / {_fmt(mem_sum)} MB) | {_fmt(mr)} | <= 1.1 | "
                         f"{'met' if mr is not None and mr <= 1.1 else 'MISSED'} |")
            lines.append(f"| {c['case']} | ensemble / FLOP floor ({floor_ms:.1f} ms) (info) | "
                         f"{to_floor:.2f} | | |")
    s = sharding
    sp = s["ms"]["1 device"] / s["ms"]["2 devices"]
    lines += ["", f"Sharding ({s['case']}, devices {', '.join(s['devices'])}; "
              f"{s['sharding']}): 1 device {s['ms']['1 device']:.1f} ms, 2 devices "
              f"{s['ms']['2 devices']:.1f} ms per step ({s['calls']['2 devices']} timed calls): "
              f"{sp:.2f}x (target >= 1.5x: {'met' if sp >= 1.5 else 'MISSED'}); largest "
              f"difference of the updated weights, sharded vs not: {s['max_abs_diff']:.3g}"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("train", "sharding"), default=None)
    p.add_argument("--quick", action="store_true", help="50 steps per trial")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--budget", type=float, default=20.0, help="seconds per contender")
    args = p.parse_args()
    if args.part == "train":
        print(json.dumps(part_train(args)))
        return
    if args.part == "sharding":
        print(json.dumps(part_sharding(args)))
        return
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    train = _child("train", args, 1)
    sharding = _child("sharding", args, 2)
    print(report(train, sharding))
    print(f"\nwall {time.perf_counter() - t0:.0f} s; load average before / after: "
          f"{load:.1f} / {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

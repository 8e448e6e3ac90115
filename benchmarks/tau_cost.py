"""What per-region time constants cost: the same network with one shared tau,
with a tau per region, and with learned per-region taus, in one run.

    bash scripts/dev.sh setup && .venv/bin/python benchmarks/tau_cost.py
    .venv/bin/python benchmarks/tau_cost.py --workloads W3 --backends jax

For each workload (W2, W3 of ``run.py``, leaky) and backend, every variant is
timed in interleaved rounds (``timing.measure``) in one process per backend:
forward alone and forward + backward (``mean(hs)``, gradients of every
trainable parameter: the weights, and ``log_tau`` where tau learns). The table
gives medians and each variant's ratio to the shared-tau network. The taus
are 100 ms (shared) and 100 / 200 ms per region (dt 10 ms); the weights are
the same seeded draw in every variant.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("shared", "per_region", "learned")


def _spec(workload, variant: str):
    import mrnn_core

    spec = mrnn_core.NetworkSpec()
    for k, r in enumerate(workload.spec.recurrent_regions):
        tau = 100.0 if variant == "shared" else 100.0 * (1 + k)
        spec = spec.with_recurrent_region(r.name, r.num_units, sign=r.sign, tau=tau,
                                          learnable_tau=variant == "learned")
    for r in workload.spec.input_regions:
        spec = spec.with_input_region(r.name, r.num_units)
    for c in workload.spec.recurrent_connections:
        spec = spec.with_recurrent_connection(c.src_region, c.dst_region)
    for c in workload.spec.input_connections:
        spec = spec.with_input_connection(c.src_region, c.dst_region)
    return spec


def _checkpoint(workload, variant):
    import mrnn_core

    d = mrnn_core.Dynamics(kind="leaky", activation=workload.activation, dt=10.0, tau=100.0,
                           spectral_radius=workload.spectral_radius)
    return mrnn_core.Checkpoint.initialise(_spec(workload, variant), d, seed=0)


def _torch_calls(ckpt, inp, x0):
    import torch

    import mrnn_torch

    model = mrnn_torch.mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float32)
    inp, x0 = torch.as_tensor(inp), torch.as_tensor(x0)
    params = [p for p in model.parameters() if p.requires_grad]

    def fwd():
        with torch.no_grad():
            return model(inp, x0)

    def fwdbwd():
        return torch.autograd.grad(model(inp, x0)[1].mean(), params)

    return fwd, fwdbwd


def _jax_calls(ckpt, inp, x0):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import mrnn_jax

    model = mrnn_jax.mRNN.from_checkpoint(ckpt)
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, model)
    trainable, rest = eqx.partition(model, mrnn_jax.trainable_filter(model))
    inp, x0 = jnp.asarray(inp), jnp.asarray(x0)

    def forward(trainable, rest, inp, x0):
        return eqx.combine(trainable, rest)(inp, x0)

    def loss(trainable, rest, inp, x0):
        return jnp.mean(forward(trainable, rest, inp, x0)[1])

    args = (trainable, rest, inp, x0)
    f = eqx.filter_jit(forward)
    g = eqx.filter_jit(jax.grad(loss))
    return (lambda: jax.block_until_ready(f(*args)),
            lambda: jax.block_until_ready(g(*args)))


def worker(backend: str, names: list[str], min_time: float) -> dict:
    """Time every variant of every workload in this process: ``{case: {variant: medians}}``."""
    from timing import measure
    from workloads import SEED, workloads

    import numpy as np

    out = {}
    for name in names:
        w = workloads()[name]
        rng = np.random.default_rng(SEED)
        inp = rng.standard_normal((w.batch, w.steps, w.spec.input_size)).astype(np.float32)
        x0 = rng.uniform(-0.5, 0.5, (w.batch, w.spec.hidden_size)).astype(np.float32)
        make = _torch_calls if backend == "torch" else _jax_calls
        calls = {v: make(_checkpoint(w, v), inp, x0) for v in VARIANTS}
        out[name] = {v: {} for v in VARIANTS}
        for mode, index in (("fwd", 0), ("fwdbwd", 1)):
            timings = measure({v: c[index] for v, c in calls.items()}, repeats=5, warmup=2,
                              budget_s=20.0, min_time_s=min_time)
            for v, t in timings.items():
                out[name][v][mode] = t.median
                if t.error:
                    raise RuntimeError(f"{name} {backend} {v} {mode}: {t.error}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="W2,W3")
    p.add_argument("--backends", default="torch,jax")
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    names = [n for n in args.workloads.split(",") if n]
    if args.worker:
        print(json.dumps(worker(args.worker, names, args.min_time)))
        return 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Pin each worker to one CPU where the OS allows it (Linux), as run.py --threads 1.
    pin = None
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        pin = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    rows = []
    for backend in [b for b in args.backends.split(",") if b]:
        proc = subprocess.run([sys.executable, __file__, "--worker", backend, "--workloads",
                               ",".join(names), "--min-time", str(args.min_time)],
                              capture_output=True, text=True, env=env, cwd=HERE, preexec_fn=pin)
        if proc.returncode:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        for name, variants in result.items():
            base = variants["shared"]
            for v, m in variants.items():
                rows.append([f"{name} leaky", backend, v, f"{m['fwd'] * 1e3:.3g}",
                             f"{m['fwdbwd'] * 1e3:.3g}", f"{m['fwd'] / base['fwd']:.2f}",
                             f"{m['fwdbwd'] / base['fwdbwd']:.2f}"])
    header = ["case", "backend", "tau", "fwd ms", "fwd+bwd ms", "fwd / shared", "f+b / shared"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train an ensemble of mRNNs at once on the 3-bit flip-flop task, on one or many devices and hosts.

    python examples/jax_ensemble.py                     # 8 networks, 2000 steps, one device
    python examples/jax_ensemble.py --members 4 --steps 200
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python examples/jax_ensemble.py
                                                        # members split over 2 CPU devices
    python examples/jax_ensemble.py                     # on a machine with several GPUs: all of them
    srun --nodes=2 --ntasks-per-node=1 python examples/jax_ensemble.py   # SLURM, several hosts
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 \\
        python examples/jax_ensemble.py                 # hosts by hand (JAX_PROCESS_ID=1 on host1)

Every member is the network of ``examples/jax_flipflop.py`` (a Dale's-law
cortex of excitatory and inhibitory units and a ``mrnn_jax.Readout`` of the
excitatory rates) drawn from its own key, so the members differ in their
sparse masks and initial weights. The networks form one
:class:`mrnn_jax.Ensemble` (each array stacked along a leading member axis
``[E, ...]``; one batched recurrence runs all of them) and are trained by
``mrnn_jax.train.train`` with the list of their readouts: one jitted step
computes every member's loss, gradient and optimiser update, and
``mrnn_jax.ensemble.member_optimiser`` (inside ``train``) gives each member
its own Adam state and its own gradient clipping, so each member trains
exactly as it would alone (``tests/examples/test_examples_ensemble.py``
checks it). All members see the same trials (the ``flip_flop`` task) and
the same noise draws, those of step ``(seed, i)``.

Devices: with several devices the members are split over every device JAX
sees (``train(..., mesh=mrnn_jax.ensemble.mesh(...))``: the ensemble,
readouts and optimiser states are placed with ``shard_members``, each batch
with ``shard_batch``, and the jitted step runs each device's members there);
with several processes (SLURM, or the ``JAX_*`` variables above)
``jax.distributed.initialize()`` joins them into one program first. Nothing
else changes between one CPU and many hosts.

Measured on the 2-core benchmark VM shared with other jobs (load average
about 2), ``--members 8 --steps 100`` (32 trials x 100 steps), compile
included, two runs each: one CPU device 9.0 / 9.2 s (about 90 ms per step;
the hand-written loop this example had before it used ``train``: 9.0 /
8.9 s); two host CPU devices (``XLA_FLAGS`` above) 7.9 / 7.9 s (the old
loop: 11.0 / 11.4 s). In float32 the one- and two-device runs end at
slightly different losses (mean of the last 10 steps 0.4504 and 0.4486;
the old loop's differed as much): rounding, compounded over 100 steps. In
float64 they agree to 1e-12 (``tests/jax/test_jax_train_mesh.py``). Two
processes over gloo (``JAX_*`` variables, one host, ``--members 4 --steps 10
--batch 4 --trial-length 20``) printed the same table as one process. The default 2000 steps take
about 3 minutes on one device at that load (about 10 at load 8 to 10).

The per-member losses are printed and plotted to ``<out>/jax_ensemble_loss.png``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import numpy as np
import optax

import mrnn_jax
from jax_flipflop import SPEC, FlipFlopNet
from mrnn_core.plotting import plot_loss
from mrnn_core.tasks import make_task
from mrnn_jax.ensemble import mesh
from mrnn_jax.train import train

HERE = Path(__file__).resolve().parent


def build(keys) -> tuple[mrnn_jax.Ensemble, list]:
    """One ``jax_flipflop.FlipFlopNet`` per key, as ``(Ensemble, [Readout per member])``
    (arrays kept exactly)."""
    members = [FlipFlopNet(k) for k in keys]
    return (mrnn_jax.Ensemble.from_models([m.rnn for m in members]),
            [m.readout for m in members])


def _join_processes() -> None:
    """``jax.distributed.initialize()`` when launched as several processes (SLURM or
    the ``JAX_*`` variables); nothing on one process."""
    # CPU devices of several processes talk through gloo (GPUs use NCCL regardless).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if "JAX_COORDINATOR_ADDRESS" in os.environ:
        jax.distributed.initialize(num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                                   process_id=int(os.environ["JAX_PROCESS_ID"]))
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()


def _gather(a) -> np.ndarray:
    """A (possibly multi-host) global array as a numpy array on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return np.asarray(a)


def main(argv=None) -> np.ndarray:
    """Train; return the losses ``[steps, E]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="networks trained together")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    parser.add_argument("--batch", type=int, default=32, help="trials per step")
    parser.add_argument("--trial-length", type=int, default=100, help="time steps per trial")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "output"), help="folder of the loss plot")
    args = parser.parse_args(argv)
    _join_processes()
    main_process = jax.process_index() == 0

    ens, readouts = build(jax.random.split(jax.random.key(args.seed), args.members + 1)[1:])
    devices = jax.devices()
    grid = None
    if len(devices) > 1:
        if args.members % len(devices):
            raise SystemExit(f"--members {args.members}: use a multiple of the "
                             f"{len(devices)} devices, so that each holds as many members")
        grid = mesh(members=len(devices))
    task = make_task("flip_flop", steps=args.trial_length, n_bits=3, p_pulse=0.05,
                     dtype=ens.model.W_rec.dtype)
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))

    if main_process:
        print(f"{args.members} networks of H = {SPEC.hidden_size} units trained together on "
              f"{len(devices)} {devices[0].platform} device(s), {jax.process_count()} "
              f"process(es): {args.batch} trials x {args.trial_length} steps per optimiser step")
    start = time.perf_counter()
    result = train(ens, task, readout=readouts, optimizer=optimiser, steps=args.steps,
                   batch_size=args.batch, seed=args.seed, mesh=grid, progress=main_process)
    elapsed = time.perf_counter() - start
    losses = result.member_history  # [steps, E], the same on every process
    # (every process takes part in the gathers; `ens` is this process's full copy)
    trained = result.model.model
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix"):
        assert np.array_equal(_gather(getattr(trained, name)),
                              np.asarray(getattr(ens.model, name))), name
    if not main_process:
        return losses

    window = max(1, min(100, args.steps // 10))
    print(f"{'member':>6} {'first loss':>11} {f'last {window} (mean)':>16}")
    for k in range(args.members):
        print(f"{k:>6} {losses[0, k]:>11.4f} {losses[-window:, k].mean():>16.4f}")
    print(f"ensemble: best member {losses[-window:].mean(0).argmin()}, "
          f"mean of the last {window} steps over members {losses[-window:].mean():.4f}; "
          f"{elapsed:.1f} s ({1e3 * elapsed / args.steps:.1f} ms per step, compile included)")

    print("masks and sign matrices of every member unchanged")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "jax_ensemble_loss.png")
    plot_loss(losses, smooth=window, path=path, title=f"{args.members} networks trained at once")
    print(f"figure written to {path}")
    return losses


if __name__ == "__main__":
    main()

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
cortex of excitatory and inhibitory units and a readout of the excitatory
rates) drawn from its own key, so the members differ in their sparse masks
and initial weights. The networks form one :class:`mrnn_jax.Ensemble`
(each array stacked along a leading member axis ``[E, ...]``; one batched
recurrence runs all of them), the readouts one stacked ``eqx.nn.Linear``.
One jitted step computes every member's loss, gradient and optimiser
update; ``mrnn_jax.ensemble.member_optimiser`` gives each member its own
Adam state and its own gradient clipping, so each member trains exactly as
it would alone (``tests/examples/test_examples_ensemble.py`` checks it). All
members see the same trials (``mrnn_core.flip_flop``) and draw their own
noise.

Devices: the members are split over every device JAX sees
(``mrnn_jax.ensemble.mesh`` and ``shard_members``; the jitted step then runs
each device's members there); with several processes (SLURM, or the
``JAX_*`` variables above) ``jax.distributed.initialize()`` joins them into
one program first. Nothing else changes between one CPU and many hosts.

Measured on the 2-core benchmark VM shared with other jobs (load average 8
to 10, so slow and noisy), ``--members 8 --steps 100`` (32 trials x 100
steps), compile included: one CPU device 32.0 s (320 ms per step); two
host CPU devices (``XLA_FLAGS`` above) 74.5 s, the second device finding no
free core. Two processes over gloo (``JAX_*`` variables, one host) trained
to the same losses as one process. The default 2000 steps take about
10 minutes on one device there.

The per-member losses are printed and plotted to ``<out>/jax_ensemble_loss.png``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import mrnn_core
import mrnn_jax
from jax_flipflop import SPEC, FlipFlopNet
from mrnn_core.analysis import Progress
from mrnn_core.plotting import plot_loss
from mrnn_jax.ensemble import member_optimiser, mesh, shard_batch, shard_members

HERE = Path(__file__).resolve().parent


class EnsembleNet(eqx.Module):
    """``E`` flip-flop networks: an :class:`mrnn_jax.Ensemble` and stacked readouts."""

    rnn: mrnn_jax.Ensemble
    readout: eqx.nn.Linear  # weight [E, 3, n_exc], bias [E, 3]

    def __call__(self, inputs, keys=None):
        """``inputs`` ``[B, T, 3]`` (shared) -> outputs ``[E, B, T, 3]``; noise from
        ``keys`` ``[E]`` (member ``e`` draws what it would draw alone with ``keys[e]``)."""
        x0, h0 = self.rnn.batched_initial_condition(inputs.shape[0])
        _, hs = self.rnn(inputs, x0, h0, key=keys)
        rates = self.rnn.model.get_region_activity(hs, "exc")
        return (jnp.einsum("ebtn,eon->ebto", rates, self.readout.weight)
                + self.readout.bias[:, None, None, :])


def stack(members) -> EnsembleNet:
    """The :class:`EnsembleNet` of ``jax_flipflop.FlipFlopNet`` members (arrays kept exactly)."""
    return EnsembleNet(mrnn_jax.Ensemble.from_models([m.rnn for m in members]),
                       jax.tree.map(lambda *a: jnp.stack(a), *[m.readout for m in members]))


def ensemble_step(optimiser):
    """One jitted optax step of every member: ``step(trainable, frozen, opt_state,
    inputs, targets, keys) -> (trainable, opt_state, losses [E])``. ``opt_state``
    comes from ``member_optimiser(optimiser).init(trainable)`` (the same as
    ``eqx.filter_vmap(optimiser.init)(trainable)``)."""
    per_member = member_optimiser(optimiser)

    def losses_fn(trainable, frozen, inputs, targets, keys):
        outputs = eqx.combine(trainable, frozen)(inputs, keys)
        losses = jnp.mean((outputs - targets) ** 2, axis=(1, 2, 3))
        # Members share no parameter: the gradient of the sum is each member's own.
        return jnp.sum(losses), losses

    @eqx.filter_jit
    def step(trainable, frozen, opt_state, inputs, targets, keys):
        grads, losses = eqx.filter_grad(losses_fn, has_aux=True)(trainable, frozen, inputs,
                                                                 targets, keys)
        updates, opt_state = per_member.update(grads, opt_state, trainable)
        return eqx.apply_updates(trainable, updates), opt_state, losses

    return step


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

    keys = jax.random.split(jax.random.key(args.seed), args.members + 1)
    net = stack([FlipFlopNet(k) for k in keys[1:]])
    devices = jax.devices()
    grid = None
    if len(devices) > 1:
        if args.members % len(devices):
            raise SystemExit(f"--members {args.members}: use a multiple of the "
                             f"{len(devices)} devices, so that each holds as many members")
        grid = mesh(members=len(devices))
        net = shard_members(net, grid)
    trainable, frozen = eqx.partition(net, mrnn_jax.trainable_filter(net))
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    opt_state = member_optimiser(optimiser).init(trainable)
    train_step = ensemble_step(optimiser)

    if main_process:
        print(f"{args.members} networks of H = {SPEC.hidden_size} units trained together on "
              f"{len(devices)} {devices[0].platform} device(s), {jax.process_count()} "
              f"process(es): {args.batch} trials x {args.trial_length} steps per optimiser step")
    bar = Progress("ensemble", args.steps) if main_process else None
    losses, start = [], time.perf_counter()
    noise_keys = jax.random.split(keys[0], (args.steps, args.members))
    for i in range(args.steps):
        inputs, targets = mrnn_core.flip_flop(args.batch, args.trial_length, n_bits=3,
                                              p_pulse=0.05, seed=(args.seed, i))
        inputs, targets, step_keys = jnp.asarray(inputs), jnp.asarray(targets), noise_keys[i]
        if grid is not None:
            inputs, targets = (shard_batch(a, grid, per_member=False) for a in (inputs, targets))
            step_keys = shard_members(step_keys, grid)
        trainable, opt_state, loss = train_step(trainable, frozen, opt_state, inputs, targets,
                                                step_keys)
        losses.append(_gather(loss))
        if bar is not None:
            bar.update(i + 1, f"mean loss {losses[-1].mean():.4f}")
    elapsed = time.perf_counter() - start
    losses = np.stack(losses)
    # (every process takes part in the gathers)
    trained = eqx.combine(trainable, frozen).rnn.model
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix"):
        assert np.array_equal(_gather(getattr(trained, name)),
                              _gather(getattr(net.rnn.model, name))), name
    if not main_process:
        return losses
    bar.close(args.steps, f"mean loss {losses[-1].mean():.4f}")

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

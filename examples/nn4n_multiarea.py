"""A multi-area E/I network in the style of nn4n, trained on the flip-flop task in torch AND JAX.

    python examples/nn4n_multiarea.py                  # 500 Adam steps in each backend
    python examples/nn4n_multiarea.py --quick          # 30 short steps: the smoke test's run
    python examples/nn4n_multiarea.py --out figs       # figures there (default examples/output)

The network is nn4n's multi-area E/I picture, declared with mrnn's spec
builders: three areas, ``sensory -> assoc -> motor``, each 80 % excitatory
(``with_ei_area(name, n, exc_pct=0.8)`` makes the children ``<area>_exc``
and ``<area>_inh`` under the parent ``<area>``), wired

- locally: all four routes E->E, E->I, I->E, I->I inside every area, each
  entry present with probability ``--local-density`` (nn4n's density rule);
- feedforward: E->E only, from each area to the next (``routes=["E->E"]``),
  density ``--ff-density``; nothing runs backwards;
- input: the three pulse channels into the sensory area only;
- Dale's law on every recurrent weight; each area has its own time constant
  (``--tau``: sensory fast, association and motor slower); inhibitory weights
  are scaled so each unit's E and I input cancel (``balance_ei``) before the
  spectral radius is set.

The outputs are a Dale readout of the motor area
(``ReadoutSpec("motor", 3, dale=True)``: it reads only ``motor_exc``, with
weights ``|W| >= 0``). The loss is the task MSE plus a small firing-rate
penalty, ``mse(y, y*) + rate_weight * rate_l2(hs)`` (each backend's
``losses`` module).

Both backends start from ONE ``mrnn_core.Checkpoint`` (network and readout
drawn once from ``--seed``; ``mRNN.from_checkpoint`` and
``Readout.from_checkpoint`` in each) and train in float64 with each
backend's ``train`` (``mrnn_torch.train``, ``mrnn_jax.train``: the rate
penalty as their ``regularizer``) on the same trials (each step's drawn
from ``(seed, step)``) with the same optimiser: gradients clipped to global
norm ``--clip``, then Adam (a ``torch.optim.Adam`` subclass that clips;
``optax.clip_by_global_norm`` + ``optax.adam``).
Noise is off, so nothing random differs between them: the initial losses
agree to rounding (~1e-16) and the loss curves, printed side by side, differ
only by rounding, which training slowly amplifies. Each trained network
is then scored by the numpy reference on 256 held-out trials.

Figures: ``<out>/nn4n_multiarea_connectivity.png`` (effective ``W_rec`` at
initialisation and after torch training, areas and block signs marked, and
``W_inp``) and ``<out>/nn4n_multiarea_loss.png`` (both loss curves, and
their difference per step).

Measured (seed 0, the defaults, float64, CPU): the training loss falls from
0.86 to 0.23 (mean of the last 50 steps) in both backends, and the held-out
task loss from 0.83 to 0.22 in both (always answering 0 scores 0.81). The
two loss curves agree to ~1e-14 for the first 200 steps; then training
amplifies the rounding differences, to ~1e-4 in the loss and ~2e-2 in
single weights by step 500. About 25 s of CPU time in all (2 cores).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import mrnn_core
from mrnn_core import reference
from mrnn_core.tasks import make_task
from mrnn_core.readout import (
    ReadoutSpec,
    apply_readout,
    checkpoint_readout,
    checkpoint_with_readout,
    init_readout,
)

HERE = Path(__file__).resolve().parent
AREAS = ("sensory", "assoc", "motor")
TAU = (20.0, 50.0, 50.0)  # ms: sensory fast, association and motor slower


def build_spec(units: int, local_density: float, ff_density: float,
               tau=TAU) -> mrnn_core.NetworkSpec:
    """Three E/I areas of ``units`` each (80 % excitatory, time constants ``tau``),
    local E/I and feedforward E->E."""
    spec = mrnn_core.NetworkSpec().with_input_region("pulses", 3)
    for area, area_tau in zip(AREAS, tau):
        spec = spec.with_ei_area(area, units, exc_pct=0.8, tau=area_tau)
    for area in AREAS:  # a parent on both sides: its four child pairs, every route
        spec = spec.with_recurrent_connection(area, area, density=local_density)
    for src, dst in zip(AREAS, AREAS[1:]):
        spec = spec.with_recurrent_connection(src, dst, routes=["E->E"], density=ff_density)
    return spec.with_input_connection("pulses", "sensory")


def initial_checkpoint(spec, seed: int) -> mrnn_core.Checkpoint:
    """The network and its Dale readout of the motor area, drawn once from ``seed``."""
    # Noise off: torch and JAX draw noise from different generators, and the
    # point here is that the two backends compute the same numbers. No tau:
    # every area sets its own.
    dynamics = mrnn_core.Dynamics(activation="tanh", dt=10.0, noise_level_act=0.0,
                                  noise_level_inp=0.0, spectral_radius=1.0, balance_ei=True)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    readout = ReadoutSpec("motor", 3, dale=True)
    return checkpoint_with_readout(ckpt, readout, **init_readout(spec, readout, seed))


def make_clipped_adam(clip: float):
    """``torch.optim.Adam`` after clipping the gradients to global norm ``clip`` by
    optax.clip_by_global_norm's rule (torch's ``clip_grad_norm_`` adds 1e-6 to the
    norm, which would set the two runs apart by ~1e-6 per step)."""
    import torch

    class ClippedAdam(torch.optim.Adam):
        @torch.no_grad()
        def step(self, closure=None):
            grads = [p.grad for group in self.param_groups for p in group["params"]
                     if p.grad is not None]
            norm = torch.sqrt(sum(g.square().sum() for g in grads))
            if norm >= clip:
                for g in grads:
                    g.div_(norm).mul_(clip)
            return super().step(closure)

    return ClippedAdam


def train_torch(ckpt, task, args):
    """``mrnn_torch.train`` on the torch model and readout loaded from ``ckpt``:
    (losses, trained checkpoint)."""
    import torch

    import mrnn_torch
    from mrnn_torch import losses
    from mrnn_torch.readout import Readout
    from mrnn_torch.train import train

    threads = torch.get_num_threads()
    # One thread: with matrices this small, handing work to a second thread
    # costs more than it saves (4x less CPU time per step, measured).
    torch.set_num_threads(1)
    try:
        model = mrnn_torch.mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
        readout = Readout.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
        optimiser = make_clipped_adam(args.clip)([*model.parameters(), *readout.parameters()],
                                                 lr=args.lr)
        result = train(model, task, readout=readout, optimizer=optimiser, steps=args.steps,
                       batch_size=args.batch, seed=args.seed, noise=False, progress=False,
                       regularizer=lambda hs: args.rate_weight * losses.rate_l2(hs))
    finally:
        torch.set_num_threads(threads)
    return result.history, readout.add_to_checkpoint(model.to_checkpoint())


def train_jax(ckpt, task, args):
    """The same with ``mrnn_jax.train`` and optax (``clip_by_global_norm`` then
    ``adam``) on the JAX model and readout loaded from ``ckpt``: (losses, trained checkpoint)."""
    import optax

    import mrnn_jax
    from mrnn_jax import losses
    from mrnn_jax.readout import Readout
    from mrnn_jax.train import train

    optimiser = optax.chain(optax.clip_by_global_norm(args.clip), optax.adam(args.lr))
    result = train(mrnn_jax.mRNN.from_checkpoint(ckpt), task,
                   readout=Readout.from_checkpoint(ckpt), optimizer=optimiser,
                   steps=args.steps, batch_size=args.batch, seed=args.seed, noise=False,
                   progress=False, regularizer=lambda hs: args.rate_weight * losses.rate_l2(hs))
    return result.history, result.readout.add_to_checkpoint(result.model.to_checkpoint())


def task_loss(ckpt, inputs, targets) -> float:
    """The task MSE of ``ckpt``'s network and readout on trials ``[B, T, 3]``, computed
    by the numpy reference (``mrnn_core.reference``): a judge neither backend wrote."""
    p = ckpt.params
    x0 = np.broadcast_to(p["init"], (inputs.shape[0], ckpt.spec.hidden_size))
    _, hs = reference.simulate(p, ckpt.dynamics, inputs, x0)
    readout, weights = checkpoint_readout(ckpt)
    return float(np.mean((apply_readout(weights, readout, hs, ckpt.spec) - targets) ** 2))


def main(argv=None) -> dict:
    """Train in both backends, print and plot; return the training losses of each
    (``"torch"``, ``"jax"``) and the held-out task losses (``"held_out"``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="Adam steps in each backend")
    parser.add_argument("--batch", type=int, default=32, help="trials per step")
    parser.add_argument("--length", type=int, default=100, help="time steps per trial")
    parser.add_argument("--units", type=int, default=40, help="units per area")
    parser.add_argument("--local-density", type=float, default=0.5)
    parser.add_argument("--ff-density", type=float, default=0.3)
    parser.add_argument("--tau", type=float, nargs=3, default=TAU,
                        metavar=("SENSORY", "ASSOC", "MOTOR"), help="each area's tau (ms)")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient global-norm bound")
    parser.add_argument("--rate-weight", type=float, default=1e-3, help="weight of rate_l2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a short run (30 steps of 8 short trials) to check it works")
    parser.add_argument("--out", default=str(HERE / "output"), help="folder of the figures")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch, args.length = 30, 8, 40

    import jax

    jax.config.update("jax_enable_x64", True)  # float64 in both, so they agree to rounding

    spec = build_spec(args.units, args.local_density, args.ff_density, args.tau)
    ckpt = initial_checkpoint(spec, args.seed)
    print(f"H = {spec.hidden_size} units in {len(AREAS)} E/I areas "
          f"({', '.join(spec.recurrent_names)}); readout of {ckpt.readout.regions[0]!r} "
          f"excitatory units, dale=True")
    print(f"{args.steps} Adam steps of {args.batch} flip-flop trials x {args.length} steps, "
          f"float64, noise off")
    # Both runs draw step i's trials from the generator seeded (seed, i): the same trials.
    task = make_task("flip_flop", steps=args.length, n_bits=3, p_pulse=0.05, dtype="float64")

    start = time.perf_counter()
    torch_losses, torch_trained = train_torch(ckpt, task, args)
    torch_s = time.perf_counter() - start
    start = time.perf_counter()
    jax_losses, jax_trained = train_jax(ckpt, task, args)
    jax_s = time.perf_counter() - start

    print(f"initial loss: torch {torch_losses[0]:.15f}, JAX {jax_losses[0]:.15f}, "
          f"|difference| {abs(torch_losses[0] - jax_losses[0]):.1e}")
    print(f"{'step':>6} {'torch':>10} {'JAX':>10}")
    every = max(1, args.steps // 10)
    for k in range(0, args.steps, every):
        print(f"{k + 1:>6} {torch_losses[k]:>10.6f} {jax_losses[k]:>10.6f}")
    tail = max(1, args.steps // 10)
    print(f"training loss fell from {torch_losses[0]:.4f} to {np.mean(torch_losses[-tail:]):.4f} "
          f"in torch ({torch_s:.1f} s) and to {np.mean(jax_losses[-tail:]):.4f} in JAX "
          f"({jax_s:.1f} s) (mean of the last {tail} steps)")
    drift = max(np.max(np.abs(torch_trained.params[k] - jax_trained.params[k]))
                for k in ("W_rec", "W_inp", "readout_W", "readout_b"))
    print(f"trained weights: max |torch - JAX| = {drift:.1e}")

    inputs, targets = mrnn_core.flip_flop(256, args.length, n_bits=3, p_pulse=0.05,
                                          seed=(args.seed, 2**31), dtype="float64")
    before, after_torch, after_jax = (task_loss(c, inputs, targets)
                                      for c in (ckpt, torch_trained, jax_trained))
    print(f"held-out task loss (256 trials, numpy reference): initial {before:.4f}, "
          f"torch-trained {after_torch:.4f}, JAX-trained {after_jax:.4f} "
          f"(answering 0 scores {np.mean(targets ** 2):.4f})")

    # Figures drawn on matplotlib Figure objects: no pyplot, no backend to choose.
    from matplotlib.figure import Figure

    from mrnn_core.plotting import plot_connectivity, plot_loss

    os.makedirs(args.out, exist_ok=True)
    fig = Figure(figsize=(15, 5.5), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=(4, 4, 1))
    plot_connectivity(ckpt, ax=axes[0], title="W_rec at initialisation (effective)")
    plot_connectivity(torch_trained, ax=axes[1], title=f"W_rec after {args.steps} torch steps")
    plot_connectivity(ckpt, matrix="input", ax=axes[2], title="W_inp")
    connectivity_path = os.path.join(args.out, "nn4n_multiarea_connectivity.png")
    fig.savefig(connectivity_path, dpi=110)

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    curves, gap = fig.subplots(1, 2)
    plot_loss(np.column_stack([torch_losses, jax_losses]), ax=curves, labels=["torch", "JAX"],
              smooth=max(1, min(20, args.steps // 10)), title="flip-flop training loss")
    for line in curves.lines[2:]:  # JAX's, drawn over torch's: dashed so both show
        line.set_linestyle("--")
    curves.legend()
    steps = np.arange(1, args.steps + 1)
    gap.semilogy(steps, np.abs(np.subtract(torch_losses, jax_losses)) + 1e-18, color="k", lw=1)
    gap.set(xlabel="optimiser step", ylabel="|torch loss - JAX loss|",
            title="rounding differences, amplified by training (float64)")
    loss_path = os.path.join(args.out, "nn4n_multiarea_loss.png")
    fig.savefig(loss_path, dpi=110)
    print(f"figures written to {connectivity_path} and {loss_path}")
    return {"torch": torch_losses, "jax": jax_losses,
            "held_out": {"initial": before, "torch": after_torch, "jax": after_jax}}


if __name__ == "__main__":
    main()

"""Train an ensemble of mRNNs at once on the 3-bit flip-flop task: one jitted, vmapped optax step.

    python examples/jax_ensemble.py                     # 8 networks, 2000 steps: about a minute on 2 CPU cores
    python examples/jax_ensemble.py --members 4 --steps 200

Every member is the network of ``examples/jax_flipflop.py`` (a Dale's-law
cortex of excitatory and inhibitory units and a readout of the excitatory
rates) drawn from its own seed, so the members differ in their sparse masks
and initial weights. The members are stacked into one pytree (each array
gains a leading ``[N]`` axis); ``eqx.filter_vmap`` runs the loss, its
gradient and the optimiser update of every member side by side, so each
member keeps its own Adam state and its own gradient clipping, exactly as if
trained alone. All members see the same trials (``mrnn_core.flip_flop``) and
draw their own noise. The step is ``jax_flipflop.train_step`` itself, vmapped.
The per-member losses are printed and plotted to
``<out>/jax_ensemble_loss.png``.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import mrnn_core
import mrnn_jax
from jax_flipflop import SPEC, FlipFlopNet, train_step
from mrnn_core.analysis import Progress
from mrnn_core.plotting import plot_loss

HERE = Path(__file__).resolve().parent


def stack(members):
    """One pytree whose arrays carry a leading member axis ``[N, ...]``."""
    return jax.tree.map(lambda *arrays: jnp.stack(arrays), *members)


def ensemble_step(optimiser):
    """``jax_flipflop.train_step`` for every member at once, jitted: the model, its
    optimiser state and the noise keys carry the member axis 0; the trials are shared."""
    each = eqx.if_array(0)
    return eqx.filter_jit(eqx.filter_vmap(functools.partial(train_step, optimiser),
                                          in_axes=(each, each, each, None, None, each)))


def main(argv=None) -> np.ndarray:
    """Train; return the losses ``[steps, N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="networks trained together")
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps")
    parser.add_argument("--batch", type=int, default=32, help="trials per step")
    parser.add_argument("--trial-length", type=int, default=100, help="time steps per trial")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "output"), help="folder of the loss plot")
    args = parser.parse_args(argv)

    keys = jax.random.split(jax.random.key(args.seed), args.members + 1)
    ensemble = stack([FlipFlopNet(k) for k in keys[1:]])
    trainable, frozen = eqx.partition(ensemble, mrnn_jax.trainable_filter(ensemble))
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    opt_state = eqx.filter_vmap(optimiser.init)(trainable)

    train_step = ensemble_step(optimiser)

    print(f"{args.members} networks of H = {SPEC.hidden_size} units trained "
          f"together: {args.batch} trials x {args.trial_length} steps per optimiser step")
    bar, losses = Progress("ensemble", args.steps), []
    noise_keys = jax.random.split(keys[0], (args.steps, args.members))
    for i in range(args.steps):
        inputs, targets = mrnn_core.flip_flop(args.batch, args.trial_length, n_bits=3,
                                              p_pulse=0.05, seed=(args.seed, i))
        trainable, opt_state, loss = train_step(trainable, frozen, opt_state,
                                                jnp.asarray(inputs), jnp.asarray(targets),
                                                noise_keys[i])
        losses.append(np.asarray(loss))
        bar.update(i + 1, f"mean loss {losses[-1].mean():.4f}")
    bar.close(args.steps, f"mean loss {losses[-1].mean():.4f}")
    losses = np.stack(losses)

    window = max(1, min(100, args.steps // 10))
    print(f"{'member':>6} {'first loss':>11} {f'last {window} (mean)':>16}")
    for k in range(args.members):
        print(f"{k:>6} {losses[0, k]:>11.4f} {losses[-window:, k].mean():>16.4f}")
    print(f"ensemble: best member {losses[-window:].mean(0).argmin()}, "
          f"mean of the last {window} steps over members {losses[-window:].mean():.4f}")

    trained = eqx.combine(trainable, frozen)
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix"):
        assert jnp.array_equal(getattr(trained.rnn, name), getattr(ensemble.rnn, name)), name
    print("masks and sign matrices of every member unchanged")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "jax_ensemble_loss.png")
    plt.close(plot_loss(losses, smooth=window, path=path,
                        title=f"{args.members} networks trained at once (vmap)").figure)
    print(f"figure written to {path}")
    return losses


if __name__ == "__main__":
    main()

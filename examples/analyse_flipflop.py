"""Fixed points and flow field of a network trained on the 3-bit flip-flop task.

    python examples/analyse_flipflop.py                  # train briefly (JAX), then analyse
    python examples/analyse_flipflop.py model.npz        # analyse a saved mrnn checkpoint instead
    python examples/analyse_flipflop.py --backend torch  # the same analysis with mrnn_torch
    python examples/analyse_flipflop.py --benchmark      # issue 7's benchmark line (minutes)

A network that solves the flip-flop task holds each of the 2^3 = 8 output
patterns between pulses, so its autonomous dynamics (input 0) should have 8
stable fixed points, one per memory, with saddles between them. This script:

1. trains a 64-unit tanh network for 2000 Adam steps with
   ``mrnn_jax.train.train`` (about 10-20 s on 2 CPU cores; the loss falls
   from about 0.4 to 0.03 with seed 0), or loads a checkpoint (any leaky or Elman network with 3 inputs,
   e.g. one written by ``examples/torch_flipflop.py --save model.npz``);
2. runs it on flip-flop trials and searches for fixed points from 256 of
   the states it visited, with ``find_fixed_points``' default settings;
3. prints the stable points (and, for a network trained here, the pattern
   its readout gives at each);
4. draws the flow field on the plane of the top two principal components of
   the visited states, with the fixed points marked, to
   ``<out>/flipflop_flow.png``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import mrnn_core
from mrnn_core.analysis import grid_limits, pca_plane, project

HERE = Path(__file__).resolve().parent
HIDDEN = 64


def flipflop_spec(hidden: int = HIDDEN) -> mrnn_core.NetworkSpec:
    """One recurrent region ``memory`` driven by three pulse channels."""
    return (mrnn_core.NetworkSpec()
            .with_recurrent_region("memory", hidden)
            .with_input_region("pulses", 3)
            .with_recurrent_connection("memory", "memory")
            .with_input_connection("pulses", "memory"))


def train(steps: int, seed: int, hidden: int = HIDDEN, progress: bool = True) -> mrnn_core.Checkpoint:
    """Train a leaky tanh network (tau = 50 ms, no Dale's law) and a linear readout
    with ``mrnn_jax.train.train`` (clipped Adam, learning rate decaying 10x).

    **Returns:** its checkpoint; the readout is kept as the extra arrays
    ``readout_weight`` ``[3, H]`` and ``readout_bias`` ``[3]``.
    """
    import optax

    import mrnn_jax
    from mrnn_core.tasks import make_task
    from mrnn_jax.train import train as train_run

    model = mrnn_jax.mRNN(flipflop_spec(hidden), activation="tanh", dt=10, tau=50,
                          rec_constrained=False, inp_constrained=False, noise_level_act=0.0,
                          noise_level_inp=0.0, seed=seed)
    readout = mrnn_jax.Readout(model, "memory", 3, seed=seed + 1)
    optimiser = optax.chain(optax.clip_by_global_norm(1.0),
                            optax.adam(optax.exponential_decay(1e-2, steps, 0.1)))
    task = make_task("flip_flop", steps=60, p_pulse=0.05, dtype=model.W_rec.dtype)
    result = train_run(model, task, readout=readout, optimizer=optimiser, steps=steps,
                       batch_size=32, seed=seed, noise=False, progress=progress)
    losses = result.history
    print(f"trained {steps} steps: loss {np.mean(losses[:50]):.3f} (first 50) -> "
          f"{np.mean(losses[-50:]):.3f} (last 50)")
    ckpt = result.model.to_checkpoint()
    W_b = result.readout.params()
    return mrnn_core.Checkpoint(ckpt.spec, ckpt.dynamics,
                                {**ckpt.params, "readout_weight": W_b["W"], "readout_bias": W_b["b"]})


def visited_states(ckpt: mrnn_core.Checkpoint, seed: int):
    """Rates and pre-activations ``[64, 200, H]`` on fresh flip-flop trials from rest."""
    import jax.numpy as jnp

    import mrnn_jax

    inputs, _ = mrnn_core.tasks.flip_flop(64, 200, p_pulse=0.05, seed=seed + 1, dtype="float64")
    params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    rest = jnp.broadcast_to(jnp.asarray(ckpt.params["init"]), (64, ckpt.spec.hidden_size))
    if ckpt.dynamics.kind == "leaky":
        xs, hs = mrnn_jax.simulate(params, ckpt.dynamics, jnp.asarray(inputs), rest)
        return np.asarray(xs), np.asarray(hs)
    f = mrnn_jax.get_activation(ckpt.dynamics.activation)
    hs = mrnn_jax.simulate(params, ckpt.dynamics, jnp.asarray(inputs), h0=f(rest))
    return None, np.asarray(hs)


def describe(fps, ckpt: mrnn_core.Checkpoint) -> None:
    stable = fps.subset(fps.stable_discrete)
    print(f"{len(fps)} fixed points: {len(stable)} stable, {len(fps) - len(stable)} unstable, "
          f"{int(np.sum(fps.is_outlier))} outliers")
    readout = "readout_weight" in ckpt.params
    rates = stable.points if fps.space == "h" else \
        mrnn_core.reference.activation_function(ckpt.dynamics.activation)(stable.points)
    header = "  readout pattern" if readout else ""
    print(f"{'stable point':>12} {'max |lambda|':>13} {'searches':>9}{header}")
    for k in range(len(stable)):
        line = f"{k:>12} {np.abs(stable.eigenvalues[k, 0]):>13.4f} {stable.counts[k]:>9}"
        if readout:
            out = ckpt.params["readout_weight"] @ rates[k] + ckpt.params["readout_bias"]
            line += "  " + " ".join(f"{v:+.2f}" for v in out)
        print(line)
    if readout and len(stable):
        out = rates @ ckpt.params["readout_weight"].T + ckpt.params["readout_bias"]
        patterns = {tuple(np.sign(o).astype(int)) for o in out}
        print(f"{len(patterns)} distinct sign patterns among the stable points' readouts")


def benchmark(n_starts: int = 1024, seed: int = 0) -> None:
    """Time ``find_fixed_points`` from ``n_starts`` starts on issue 6's W2 network,
    torch vs JAX: 2 dense regions (E = 320 pos, I = 80 neg), 20 inputs, leaky tanh,
    default initialisation; starts drawn from its trajectories plus noise."""
    import mrnn_jax.analysis
    import mrnn_torch.analysis

    spec = (mrnn_core.NetworkSpec().with_recurrent_region("E", 320, sign="pos")
            .with_recurrent_region("I", 80, sign="neg").with_input_region("u", 20))
    for src in ("E", "I"):
        for dst in ("E", "I"):
            spec = spec.with_recurrent_connection(src, dst)
        spec = spec.with_input_connection("u", src)
    ckpt = mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(activation="tanh"), seed=seed)
    rng = np.random.default_rng(seed)
    xs, _ = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, rng.normal(0, 1, (8, 100, 20)),
                                         rng.normal(0, 1, (8, 400)))
    settings = dict(trajectories=xs, n_initial=n_starts, noise_scale=0.5, seed=seed, progress=False)
    # One iteration first: JAX compiles there (reported apart), torch warms up.
    for name, module in (("torch", mrnn_torch.analysis), ("jax", mrnn_jax.analysis)):
        t0 = time.perf_counter()
        module.find_fixed_points(ckpt, max_iters=1, **settings)
        t1 = time.perf_counter()
        fps = module.find_fixed_points(ckpt, **settings)
        t2 = time.perf_counter()
        print(f"W2 (H = 400), {n_starts} starts, {name:>5}: {t2 - t1:6.1f} s "
              f"(first call, one iteration: {t1 - t0:5.1f} s) -> {fps}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="an mrnn checkpoint (.npz); default: train one")
    parser.add_argument("--backend", choices=("jax", "torch"), default="jax",
                        help="which backend runs the analysis")
    parser.add_argument("--steps", type=int, default=2000, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained checkpoint here")
    parser.add_argument("--out", default=str(HERE / "output"), help="folder of the figure")
    parser.add_argument("--benchmark", type=int, nargs="?", const=1024, metavar="STARTS",
                        help="only time the W2 search (default 1024 starts), torch vs JAX")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    if args.benchmark:
        return benchmark(args.benchmark, args.seed)
    start = time.perf_counter()
    if args.checkpoint:
        ckpt = mrnn_core.Checkpoint.load(args.checkpoint)
        if ckpt.spec.input_size != 3:
            raise mrnn_core.MRNNConfigError(
                f"{args.checkpoint}: expected a flip-flop network with 3 inputs, got "
                f"{ckpt.spec.input_size}")
        print(f"loaded {args.checkpoint}: {ckpt.dynamics.kind}, H = {ckpt.spec.hidden_size}")
    else:
        ckpt = train(args.steps, args.seed)
        if args.save:
            ckpt.save(args.save)
            print(f"checkpoint written to {args.save}")
    trained = time.perf_counter()

    if args.backend == "jax":
        from mrnn_jax.analysis import find_fixed_points, flow_field
    else:
        from mrnn_torch.analysis import find_fixed_points, flow_field
    xs, hs = visited_states(ckpt, args.seed)
    space, states = ("x", xs) if xs is not None else ("h", hs)
    fps = find_fixed_points(ckpt, trajectories=states, space=space, seed=args.seed)
    found = time.perf_counter()
    describe(fps, ckpt)
    # The plane of the visited states' top two principal components, framed
    # around the fixed points rather than the (much wider) pulse excursions.
    origin, basis = pca_plane(states)
    framed = fps.points if len(fps) else states
    limits = grid_limits(project(framed - origin, basis), margin=0.5)
    flow = flow_field(ckpt, basis=basis, origin=origin, limits=limits, space=space)

    # A matplotlib Figure object: no pyplot, no backend to choose.
    from matplotlib.figure import Figure

    from mrnn_core.plotting import plot_flow_field

    os.makedirs(args.out, exist_ok=True)
    fig = Figure(figsize=(7, 6), layout="tight")
    plot_flow_field(flow, fixed_points=fps, ax=fig.subplots(),
                    title=f"3-bit flip-flop, input 0: {int(np.sum(fps.stable_discrete))} stable points")
    path = os.path.join(args.out, "flipflop_flow.png")
    fig.savefig(path, dpi=120)
    done = time.perf_counter()
    print(f"figure written to {path}")
    print(f"time: {'loading' if args.checkpoint else 'training'} {trained - start:.1f} s, "
          f"fixed points ({args.backend}) {found - trained:.1f} s, flow field and figure "
          f"{done - found:.1f} s")
    return ckpt, fps


if __name__ == "__main__":
    main()

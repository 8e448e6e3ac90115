"""Quickstart: one network from JSON, run in PyTorch and in JAX, same numbers.

    bash scripts/dev.sh example            # from the repository root
    python examples/quickstart.py --steps 100 --out examples/output

1. Load the cortico-basal ganglia-thalamic config and print its regions and
   connectivity (mrnn_core, numpy only).
2. Build the torch model and the JAX model from the same seed, run both on
   the same cue-triggered input in float64 and print their largest difference.
3. Save figures of each region's mean rate over time, per trial, and of the
   effective recurrent weights with region boundaries and block signs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

import mrnn_core

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "configs" / "cbgt_loop.json"


def describe(connectivity: mrnn_core.Connectivity) -> None:
    spec = connectivity.spec
    print(f"{'region':<10} {'units':>5} {'sign':>4} {'slice':>11} {'parent':>9} {'base':>5}")
    for region in spec.recurrent_regions:
        s = connectivity.region_slice(region.name)
        print(f"{region.name:<10} {region.num_units:>5} {region.sign:>4} "
              f"{f'[{s.start}, {s.stop})':>11} {region.parent_region or '-':>9} "
              f"{np.mean(region.base_firing):>5.2f}")
    for region in spec.input_regions:
        print(f"{region.name:<10} {region.num_units:>5} {region.sign:>4}  (input)")
    mask = connectivity.W_rec_mask
    print(f"\nH = {spec.hidden_size} units, I = {spec.input_size} inputs; "
          f"{len(spec.recurrent_connections)} recurrent and "
          f"{len(spec.input_connections)} input connections declared; "
          f"W_rec density {mask.mean():.3f}")
    print("\nrecurrent blocks (rows receive, columns send; entry = fraction of weights present)")
    names = spec.recurrent_names
    print(" " * 10 + "".join(f"{n[:8]:>9}" for n in names))
    for dst in names:
        row = "".join(
            f"{mask[connectivity.region_slice(dst), connectivity.region_slice(src)].mean():>9.2f}"
            for src in names)
        print(f"{dst:<10}{row}")


def cue_input(spec: mrnn_core.NetworkSpec, batch: int, steps: int) -> np.ndarray:
    """``[B, T, I]``: a 10-step pulse on cue channel b % I, starting at step 20."""
    inp = np.zeros((batch, steps, spec.input_size))
    for b in range(batch):
        inp[b, 20:30, b % spec.input_size] = 1.0
    return inp


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "output"))
    args = parser.parse_args(argv)

    spec = mrnn_core.load_config(CONFIG)
    connectivity = mrnn_core.build_connectivity(spec, seed=args.seed)
    describe(connectivity)

    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    import mrnn_jax
    import mrnn_torch

    settings = dict(activation="relu", spectral_radius=0.9, seed=args.seed)
    torch_model = mrnn_torch.mRNN(str(CONFIG), device="cpu", dtype=torch.float64, **settings)
    jax_model = mrnn_jax.mRNN(str(CONFIG), **settings)

    inp = cue_input(spec, args.batch, args.steps)
    x0_t, _ = torch_model.batched_initial_condition(args.batch)
    with torch.no_grad():
        xs_t, hs_t = torch_model(torch.from_numpy(inp), x0_t)
    x0_j, _ = jax_model.batched_initial_condition(args.batch)
    xs_j, hs_j = jax_model(jax.numpy.asarray(inp), x0_j)
    hs_t, hs_j = hs_t.numpy(), np.asarray(hs_j)
    diff = max(np.max(np.abs(xs_t.numpy() - np.asarray(xs_j))), np.max(np.abs(hs_t - hs_j)))
    print(f"\ntorch vs JAX, {args.batch} trials x {args.steps} steps, float64: "
          f"max |difference| = {diff:.2e}")

    from mrnn_core.plotting import plot_connectivity, plot_region_activity

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "quickstart_rates.png")
    plot_region_activity(spec, hs_t, trials=args.batch, dt=torch_model.dt, path=path,
                         title="mean rate per region (cue on channel b % 3 at 200-300 ms)")
    print(f"figure written to {path}")
    path = os.path.join(args.out, "quickstart_connectivity.png")
    plot_connectivity(torch_model.to_checkpoint(), path=path)
    print(f"figure written to {path}")

if __name__ == "__main__":
    main()

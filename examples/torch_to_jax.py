"""Move a torch-trained mRNN into JAX through a checkpoint; both give the same outputs.

    python examples/torch_to_jax.py                          # train briefly in torch first
    python examples/torch_flipflop.py --save model.npz       # or train properly,
    python examples/torch_to_jax.py --checkpoint model.npz   # then move that model

A model travels between backends as a :class:`mrnn_core.Checkpoint`: the
spec, the dynamics and float64 numpy copies of every array (here with the
flip-flop readout as two extra arrays). This script

1. trains the flip-flop network of ``examples/torch_flipflop.py`` for
   ``--steps`` steps, its figures going to ``--out`` (or loads ``--checkpoint``);
2. builds ``mrnn_jax.mRNN.from_checkpoint`` and checks that every array
   arrived bit for bit;
3. runs both backends in float64 on the same held-out flip-flop trials and
   prints the largest difference of their rates and of the readout, and
   the task loss in each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mrnn_core

HERE = Path(__file__).resolve().parent


def torch_outputs(ckpt: mrnn_core.Checkpoint, inputs: np.ndarray):
    """Rates ``[B, T, H]`` and readout ``[B, T, 3]`` of the torch model, in float64."""
    import torch

    import mrnn_torch

    model = mrnn_torch.mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    x0, h0 = model.batched_initial_condition(inputs.shape[0])
    with torch.no_grad():
        _, hs = model(torch.from_numpy(inputs), x0, h0)
    hs = hs.numpy()
    return hs, hs @ ckpt.params["readout_weight"].T + ckpt.params["readout_bias"]


def jax_outputs(ckpt: mrnn_core.Checkpoint, inputs: np.ndarray):
    """The same from ``mrnn_jax.mRNN.from_checkpoint(ckpt)``, and that model."""
    import jax.numpy as jnp

    import mrnn_jax

    model = mrnn_jax.mRNN.from_checkpoint(ckpt)
    x0, h0 = model.batched_initial_condition(inputs.shape[0])
    _, hs = model(jnp.asarray(inputs), x0, h0)
    readout = hs @ jnp.asarray(ckpt.params["readout_weight"]).T + ckpt.params["readout_bias"]
    return np.asarray(hs), np.asarray(readout), model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a checkpoint from torch_flipflop.py --save; "
                                             "default: train one here")
    parser.add_argument("--steps", type=int, default=200, help="torch training steps")
    parser.add_argument("--batch", type=int, default=32, help="trials per training step")
    parser.add_argument("--length", type=int, default=100, help="steps per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "output"),
                        help="folder of the torch training's figures")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)  # float64, so the comparison is exact arithmetic

    if args.checkpoint:
        ckpt = mrnn_core.Checkpoint.load(args.checkpoint)
        print(f"loaded {args.checkpoint}")
    else:
        from torch_flipflop import main as train_in_torch

        ckpt = train_in_torch(["--steps", str(args.steps), "--batch", str(args.batch),
                               "--length", str(args.length), "--seed", str(args.seed),
                               "--device", "cpu", "--out", args.out])
    missing = {"readout_weight", "readout_bias"} - set(ckpt.params)
    if missing or ckpt.dynamics.kind != "leaky":
        raise mrnn_core.MRNNConfigError(
            f"checkpoint: expected a leaky network with a readout, as torch_flipflop.py --save "
            f"writes; got a {ckpt.dynamics.kind!r} network missing {sorted(missing)}")

    inputs, targets = mrnn_core.flip_flop(64, args.length, n_bits=3, p_pulse=0.1,
                                          seed=(args.seed, 2**31), dtype="float64")
    hs_torch, out_torch = torch_outputs(ckpt, inputs)
    hs_jax, out_jax, jax_model = jax_outputs(ckpt, inputs)

    arrived = jax_model.to_checkpoint().params
    same = all(np.array_equal(arrived[k], ckpt.params[k]) for k in mrnn_core.PARAM_NAMES)
    print(f"JAX model holds the checkpoint's arrays bit for bit: {same}")
    print(jax_model)
    print(f"64 held-out trials x {args.length} steps, float64: "
          f"max |torch - JAX| rates {np.max(np.abs(hs_torch - hs_jax)):.2e}, "
          f"readout {np.max(np.abs(out_torch - out_jax)):.2e}")
    print(f"task loss: torch {np.mean((out_torch - targets) ** 2):.6f}, "
          f"JAX {np.mean((out_jax - targets) ** 2):.6f} "
          f"(answering 0 scores {np.mean(targets ** 2):.4f})")
    if not same:
        raise SystemExit("the JAX model's arrays differ from the checkpoint's")


if __name__ == "__main__":
    main()

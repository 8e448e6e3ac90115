"""Train a PyTorch mRNN on the 3-bit flip-flop task, the way mRNNTorch users do.

    python examples/torch_flipflop.py                    # 1000 steps: about 15 s on one CPU core
    python examples/torch_flipflop.py --steps 200        # a quick look
    python examples/torch_flipflop.py --save model.npz   # keep the trained model

Three input channels each carry occasional +1 / -1 pulses; the network must
output, on three readout channels, the sign of the last pulse each channel
received (0 before the first), holding it between pulses.

The network is built by hand with mRNNTorch's calls: a cortex of 48
excitatory and 16 inhibitory tanh units (Dale's law) under the parent
``ctx``, with learnable baselines, driven by the three pulse channels, plus a
linear readout (an ``nn.Module`` wrapping ``mRNN``, as mRNNTorch's examples
do). Adam trains the weights and the biases; masks and sign matrices are
buffers and never change. Always answering 0 scores about 0.9; a trained
network gets to about 0.01. A progress bar shows the loss as it trains; the
loss curve and the trained connectivity (``W_rec`` and ``W_inp``, regions
and signs marked) are written to ``<out>/torch_flipflop_loss.png`` and
``<out>/torch_flipflop_connectivity.png``. With ``--save`` the model, its
readout included (``readout_W``, ``readout_b``), is saved as an
mrnn checkpoint, which ``examples/torch_to_jax.py`` moves to JAX and
``examples/analyse_flipflop.py`` analyses.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from torch import nn

import mrnn_core
from mrnn_core.analysis import Progress
from mrnn_core.plotting import plot_connectivity, plot_loss
from mrnn_core.readout import checkpoint_with_readout
from mrnn_torch import mRNN

HERE = Path(__file__).resolve().parent


class FlipFlopNet(nn.Module):
    """An mRNN and a linear readout of all its rates."""

    def __init__(self, seed: int, device=None):
        super().__init__()
        self.mrnn = mRNN(activation="tanh", dt=5.0, tau=10.0, noise_level_act=0.01,
                         noise_level_inp=0.0, inp_constrained=False, spectral_radius=1.0,
                         device=device, seed=seed)
        self.mrnn.add_recurrent_region("exc", 48, "pos", parent_region="ctx", learnable_bias=True)
        self.mrnn.add_recurrent_region("inh", 16, "neg", parent_region="ctx", learnable_bias=True)
        self.mrnn.add_input_region("pulses", 3)
        for src in ("exc", "inh"):
            for dst in ("exc", "inh"):
                self.mrnn.add_recurrent_connection(src, dst, sparsity=0.5 if src == dst else None)
            self.mrnn.add_input_connection("pulses", src)
        self.mrnn.finalize_connectivity()
        self.readout = nn.Linear(self.mrnn.total_num_units, 3, device=self.mrnn.device)

    def forward(self, inputs, noise: bool = False):
        """``inputs`` ``[B, T, 3]`` -> outputs ``[B, T, 3]``."""
        x0, h0 = self.mrnn.batched_initial_condition(inputs.shape[0])
        _, hs = self.mrnn(inputs, x0, h0, noise=noise)
        return self.readout(hs)

    def to_checkpoint(self) -> mrnn_core.Checkpoint:
        """The mRNN's checkpoint with the readout's arrays added (float64 numpy)."""
        ckpt = self.mrnn.to_checkpoint()
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        readout = mrnn_core.ReadoutSpec(ckpt.spec.recurrent_names, out_features=3)
        return checkpoint_with_readout(ckpt, readout, as_numpy(self.readout.weight),
                                       as_numpy(self.readout.bias))


def trials(batch: int, steps: int, seed: int, device):
    inputs, targets = mrnn_core.flip_flop(batch, steps, n_bits=3, p_pulse=0.1, seed=seed)
    return (torch.tensor(inputs, dtype=torch.float32, device=device),
            torch.tensor(targets, dtype=torch.float32, device=device))


def main(argv=None) -> mrnn_core.Checkpoint:
    """Train, report, write the figures (and the checkpoint if asked); return the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=100, help="steps per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    parser.add_argument("--save", default=None, help="write the trained model's checkpoint here")
    parser.add_argument("--out", default=str(HERE / "output"), help="folder of the figures")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    net = FlipFlopNet(args.seed, args.device)
    device = net.mrnn.device
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    print(net.mrnn)
    bar, losses = Progress("training", args.steps), []
    for step in range(args.steps):
        inputs, targets = trials(args.batch, args.length, seed=args.seed * 10**6 + step,
                                 device=device)
        loss = (net(inputs, noise=True) - targets).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        bar.update(step + 1, f"loss {losses[-1]:.4f}")
    bar.close(args.steps, f"loss {losses[-1]:.4f}")
    print(f"trained {args.steps} steps: loss {losses[0]:.4f} (first step) -> "
          f"{sum(losses[-10:]) / len(losses[-10:]):.4f} (mean of the last {len(losses[-10:])})")

    inputs, targets = trials(256, args.length, seed=-1 % 2**32, device=device)
    with torch.no_grad():
        held_out = (net(inputs) - targets).square().mean().item()
    print(f"held-out loss {held_out:.4f} (answering 0 scores "
          f"{targets.square().mean().item():.4f}) on {device}")
    ckpt = net.to_checkpoint()
    if args.save:
        ckpt.save(args.save)
        print(f"checkpoint written to {args.save}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.out, exist_ok=True)
    loss_path = os.path.join(args.out, "torch_flipflop_loss.png")
    plt.close(plot_loss(losses, smooth=max(1, min(50, args.steps // 10)), path=loss_path,
                        title="torch: 3-bit flip-flop training loss").figure)
    fig, (rec, inp) = plt.subplots(1, 2, figsize=(10, 5), width_ratios=(4, 1),
                                   layout="constrained")
    plot_connectivity(ckpt, ax=rec, title="trained W_rec (effective)")
    plot_connectivity(ckpt, matrix="input", ax=inp, title="W_inp")
    connectivity_path = os.path.join(args.out, "torch_flipflop_connectivity.png")
    fig.savefig(connectivity_path, dpi=120)
    plt.close(fig)
    print(f"figures written to {loss_path} and {connectivity_path}")
    return ckpt


if __name__ == "__main__":
    main()

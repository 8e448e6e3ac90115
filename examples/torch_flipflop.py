"""Train a PyTorch mRNN on the 3-bit flip-flop task, the way mRNNTorch users do.

    python examples/torch_flipflop.py               # 1000 steps: about 15 s on one CPU core
    python examples/torch_flipflop.py --steps 200   # a quick look

Three input channels each carry occasional +1 / -1 pulses; the network must
output, on three readout channels, the sign of the last pulse each channel
received (0 before the first), holding it between pulses.

The network is built by hand with mRNNTorch's calls: a cortex of 48
excitatory and 16 inhibitory tanh units (Dale's law) under the parent
``ctx``, with learnable baselines, driven by the three pulse channels, plus a
linear readout (an ``nn.Module`` wrapping ``mRNN``, as mRNNTorch's examples
do). Adam trains the weights and the biases; masks and sign matrices are
buffers and never change. Always answering 0 scores about 0.9; a trained
network gets to about 0.01. The trained model is saved as an mrnn checkpoint,
which ``mrnn_jax.mRNN.from_checkpoint`` loads unchanged.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import mrnn_core
from mrnn_torch import mRNN


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


def trials(batch: int, steps: int, seed: int, device):
    inputs, targets = mrnn_core.flip_flop(batch, steps, n_bits=3, p_pulse=0.1, seed=seed)
    return (torch.tensor(inputs, dtype=torch.float32, device=device),
            torch.tensor(targets, dtype=torch.float32, device=device))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=100, help="steps per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    parser.add_argument("--save", default=None, help="write the trained model's checkpoint here")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    net = FlipFlopNet(args.seed, args.device)
    device = net.mrnn.device
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    start = time.perf_counter()
    for step in range(args.steps):
        inputs, targets = trials(args.batch, args.length, seed=args.seed * 10**6 + step,
                                 device=device)
        loss = (net(inputs, noise=True) - targets).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  ({time.perf_counter() - start:.0f} s)")

    inputs, targets = trials(256, args.length, seed=-1 % 2**32, device=device)
    with torch.no_grad():
        held_out = (net(inputs) - targets).square().mean().item()
    print(f"held-out loss {held_out:.4f} (answering 0 scores "
          f"{targets.square().mean().item():.4f}) on {device}")
    if args.save:
        net.mrnn.to_checkpoint().save(args.save)
        print(f"checkpoint written to {args.save}")


if __name__ == "__main__":
    main()

"""Train on one CPU, several GPUs or several hosts with torch.distributed: only the launch changes.

    python examples/torch_distributed.py                          # one process (CPU, or one GPU)
    torchrun --nproc_per_node=4 examples/torch_distributed.py     # 4 processes: 4 GPUs, or 4 CPU processes
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 examples/torch_distributed.py  # the same line on each of 2 hosts
    ... examples/torch_distributed.py --members 8                 # 8 networks, spread over the processes

Two kinds of work, the flip-flop task of ``examples/torch_flipflop.py`` (its
network: 48 excitatory and 16 inhibitory tanh units and a linear readout):

- **One network, data parallel** (default): every process holds the same
  network (the same seed, checked by ``mrnn_torch.distributed.data_parallel``),
  draws its own ``batch / world_size`` trials each step, and
  ``DistributedDataParallel`` averages the gradients: the step equals one
  process training on all ``batch`` trials.
- **An ensemble** (``--members N``): networks from seeds ``0 .. N-1``; each
  process trains its share as one ``mrnn_torch.Ensemble`` (one batched call
  for all its members) on the same trials, with no gradient exchange.

The process group comes from ``torchrun`` (NCCL on GPUs, gloo on CPUs); run
with plain ``python`` the script makes a one-process group itself.

Measured on 2026-12-05 on the project's shared 2-core CPU VM while other jobs
kept its load average near 15 (so these are upper bounds; float32, default
sizes, 50 steps, seconds per step): one network, ``python`` 0.12,
``torchrun --nproc_per_node=2`` 0.14 (two processes on two busy cores gain
nothing here); ``--members 8``, ``python`` 0.27 (8 networks in one
``Ensemble`` call, against 8 x 0.12 one by one), ``torchrun
--nproc_per_node=2`` 0.20 (4 members per process).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

import mrnn_core
from mrnn_torch.distributed import data_parallel, local_ensemble

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_flipflop import build  # noqa: E402


class FlipFlopNet(nn.Module):
    """``torch_flipflop``'s network and readout as one module, the unit DDP wraps."""

    def __init__(self, seed: int, device=None):
        super().__init__()
        self.mrnn, self.readout = build(seed, device)

    def forward(self, inputs, noise: bool = False):
        """``inputs`` ``[B, T, 3]`` -> outputs ``[B, T, 3]``."""
        x0, h0 = self.mrnn.batched_initial_condition(inputs.shape[0])
        _, hs = self.mrnn(inputs, x0, h0, noise=noise)
        return self.readout(hs)


def trials(batch: int, steps: int, seed: int, device):
    """Flip-flop trials ``(inputs, targets)``, each ``[B, T, 3]`` float32, on ``device``."""
    inputs, targets = mrnn_core.flip_flop(batch, steps, n_bits=3, p_pulse=0.1, seed=seed)
    return torch.as_tensor(inputs, device=device), torch.as_tensor(targets, device=device)


def start_process_group() -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``: torchrun's group, or a one-process one under plain python."""
    if "RANK" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0",
                          WORLD_SIZE="1", LOCAL_RANK="0")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


class EnsembleReadout(nn.Module):
    """One linear readout per member: ``[E, B, T, H] -> [E, B, T, n_out]``."""

    def __init__(self, members: int, hidden: int, n_out: int, device):
        super().__init__()
        bound = hidden ** -0.5
        self.weight = nn.Parameter(torch.empty(members, hidden, n_out, device=device)
                                   .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(members, 1, 1, n_out, device=device))

    def forward(self, hs):
        E, B, T, H = hs.shape
        return torch.bmm(hs.reshape(E, B * T, H), self.weight).view(E, B, T, -1) + self.bias


def train_one_network(args, rank, world, device):
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must be a multiple of the {world} processes")
    torch.manual_seed(args.seed)
    net = FlipFlopNet(args.seed, device)
    model = data_parallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for step in range(args.steps):
        # each process its own trials: world_size shares of one batch
        inputs, targets = trials(args.batch // world, args.length,
                                 seed=(args.seed * 10**6 + step) * 1000 + rank, device=device)
        loss = (model(inputs, noise=True) - targets).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.detach())
    mean = torch.stack(losses[-10:]).mean()
    dist.all_reduce(mean)
    return f"loss {losses[0].item():.4f} (rank {rank}, first step) -> {mean.item() / world:.4f}"


def train_ensemble(args, rank, world, device):
    spec = FlipFlopNet(0, "cpu").mrnn.to_checkpoint().spec
    dynamics = mrnn_core.Dynamics(activation="tanh", dt=5.0, tau=10.0, noise_level_inp=0.0,
                                  inp_constrained=False, spectral_radius=1.0)
    mine, ens = local_ensemble(spec, list(range(args.members)), dynamics=dynamics,
                               device=device, dtype=torch.float32)
    readout = EnsembleReadout(len(mine), spec.hidden_size, 3, device)
    optimiser = torch.optim.Adam([*ens.parameters(), *readout.parameters()], lr=0.01)
    x0, h0 = ens.batched_initial_condition(args.batch)
    for step in range(args.steps):
        inputs, targets = trials(args.batch, args.length, seed=args.seed * 10**6 + step,
                                 device=device)
        _, hs = ens(inputs, x0, h0, noise=True)
        # each member's own mean, summed: members never share a gradient
        per_member = (readout(hs) - targets).square().mean(dim=(1, 2, 3))
        optimiser.zero_grad()
        per_member.sum().backward()
        optimiser.step()
    finals = [None] * world
    dist.all_gather_object(finals, dict(zip(mine, per_member.tolist())))
    losses = {e: v for part in finals for e, v in part.items()}
    return "last-step loss per member " + ", ".join(f"{e}: {losses[e]:.4f}" for e in sorted(losses))


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32, help="trials per step, over all processes")
    parser.add_argument("--length", type=int, default=100, help="steps per trial")
    parser.add_argument("--members", type=int, default=0, help="train an ensemble of this many")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rank, world, device = start_process_group()
    try:
        what = f"an ensemble of {args.members}" if args.members else "one network, data parallel"
        if rank == 0:
            print(f"{world} process(es), {dist.get_backend()} on {device.type}: {what}")
        t0 = time.perf_counter()
        summary = (train_ensemble if args.members else train_one_network)(args, rank, world, device)
        seconds = time.perf_counter() - t0
        if rank == 0:
            print(f"trained {args.steps} steps in {seconds:.1f} s "
                  f"({seconds / args.steps:.3f} s a step): {summary}")
        dist.barrier()  # no rank tears the group down while another still talks to it
        return summary
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

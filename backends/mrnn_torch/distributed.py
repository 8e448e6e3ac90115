"""Training over several processes, devices and hosts with ``torch.distributed``.

Two patterns, both on torch's own engines (a process group set up by
``torchrun``; nothing here communicates by itself):

- **One network, data parallel:** :func:`data_parallel` wraps a model (or any
  module holding one) in ``torch.nn.parallel.DistributedDataParallel`` after
  checking that every rank built the same structure (masks and sign
  matrices). Each rank runs its share of the batch; DDP averages the
  gradients, so a step equals single-process training on the concatenated
  batch (for a loss that is a mean over equal shares).
- **An ensemble, members spread over ranks:** :func:`member_indices` gives a
  rank its members and :func:`local_ensemble` builds just those
  (``Ensemble.from_seeds`` on the rank's seeds). Members never exchange
  gradients, so there is nothing to wrap: each rank trains its own
  sub-ensemble with its own optimiser.

Launch with ``torchrun --nproc_per_node=N script.py`` (one host) or
``torchrun --nnodes=M --nproc_per_node=N --rdzv_backend=c10d
--rdzv_endpoint=HOST:PORT script.py`` (several); ``examples/torch_distributed.py``
is a complete script.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

from mrnn_core import MRNNConfigError

from ._base import mRNNBase
from .ensemble import Ensemble

_STRUCTURE = ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")


def require_process_group(what: str = "mrnn_torch.distributed") -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; a clear error when there is none.

    Raises :class:`mrnn_core.MRNNConfigError` when ``torch.distributed`` is
    unavailable or ``init_process_group`` has not been called, before any work.
    """
    if not dist.is_available():
        raise MRNNConfigError(
            f"{what}: expected torch.distributed, but this torch build has no distributed "
            f"support (torch.distributed.is_available() is False)")
    if not dist.is_initialized():
        raise MRNNConfigError(
            f"{what}: expected an initialised process group, got none; launch with torchrun "
            f"and call torch.distributed.init_process_group('nccl' on GPUs, 'gloo' on CPUs) "
            f"before this call")
    return dist.get_rank(), dist.get_world_size()


def member_indices(num_members: int, rank: int | None = None,
                   world_size: int | None = None) -> list[int]:
    """The members rank ``rank`` of ``world_size`` trains: a contiguous share, the
    first ``num_members % world_size`` ranks one more than the rest.

    ``rank`` and ``world_size`` default to the process group's (which must then
    exist). **Returns:** the member indices, in order.
    """
    if rank is None or world_size is None:
        group_rank, group_size = require_process_group("member_indices")
        rank = group_rank if rank is None else rank
        world_size = group_size if world_size is None else world_size
    for name, value, low in (("num_members", num_members, 1), ("world_size", world_size, 1),
                             ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MRNNConfigError(f"member_indices: {name}: expected an integer >= {low}, got {value!r}")
    if rank >= world_size:
        raise MRNNConfigError(
            f"member_indices: rank: expected 0 <= rank < world_size = {world_size}, got {rank}")
    if num_members < world_size:
        raise MRNNConfigError(
            f"member_indices: expected at least one member per rank, got {num_members} "
            f"members for {world_size} ranks; use fewer processes or more members")
    share, extra = divmod(num_members, world_size)
    start = rank * share + min(rank, extra)
    return list(range(start, start + share + (rank < extra)))


def local_ensemble(config_or_spec, seeds: Sequence[int], *,
                   member_values: Mapping[str, Sequence] | None = None,
                   **from_seeds_kwargs) -> tuple[list[int], Ensemble]:
    """This rank's share of the ensemble ``Ensemble.from_seeds(config_or_spec, seeds, ...)``.

    Checks the process group first. Member ``e`` of the whole ensemble is
    built from ``seeds[e]`` (and the ``e``-th of each ``member_values``), so
    the members are the same whatever the number of ranks.
    **Returns:** ``(indices, sub_ensemble)``; ``sub_ensemble.members()[k]`` is
    member ``indices[k]``.
    """
    rank, world_size = require_process_group("local_ensemble")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise MRNNConfigError(f"local_ensemble: seeds: expected a sequence of integers, got {seeds!r}")
    mine = member_indices(len(seeds), rank, world_size)
    if member_values is not None:
        if not isinstance(member_values, Mapping):
            raise MRNNConfigError(
                f"local_ensemble: member_values: expected a dict of per-member sequences, got "
                f"{type(member_values).__name__}")
        for key, values in member_values.items():
            if not isinstance(values, Sequence) or len(values) != len(seeds):
                raise MRNNConfigError(
                    f"local_ensemble: member_values[{key!r}]: expected {len(seeds)} values, one "
                    f"per seed, got {values!r}")
        member_values = {k: [v[e] for e in mine] for k, v in member_values.items()}
    return mine, Ensemble.from_seeds(config_or_spec, [seeds[e] for e in mine],
                                     member_values=member_values, **from_seeds_kwargs)


def check_same_structure(module: nn.Module) -> None:
    """Check that every rank's networks in ``module`` have the same masks and sign matrices.

    Each rank sends one checksum per network and structure buffer (sum and
    weighted sum, float64); a mismatch raises :class:`mrnn_core.MRNNConfigError`
    naming the buffer and the ranks, on every rank. Build every rank's model from
    the same seed or checkpoint to pass.
    """
    require_process_group("check_same_structure")
    networks = [(name, m) for name, m in module.named_modules() if isinstance(m, mRNNBase)]
    if not networks:
        raise MRNNConfigError(
            f"check_same_structure: expected a module holding an mRNN or ElmanmRNN, got "
            f"{type(module).__name__} with none")
    labels, sums = [], []
    for name, m in networks:
        for key in _STRUCTURE:
            buffer = getattr(m, key)
            if buffer is None:
                raise MRNNConfigError(
                    f"check_same_structure: {name or 'the model'} is not finalised; call "
                    f"finalize_connectivity() before training")
            flat = buffer.detach().to(torch.float64).flatten()
            weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
            labels.append(f"{name + '.' if name else ''}{key}")
            sums += [flat.sum(), (flat * weights).sum(), float(flat.numel())]
    mine = torch.tensor([float(s) for s in sums], dtype=torch.float64)
    device = _collective_device()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([mine.numel()], device=device))
    for rank, size in enumerate(sizes):
        if int(size) != mine.numel():
            raise MRNNConfigError(
                f"check_same_structure: rank {rank} holds {int(size) // 12} network(s), rank "
                f"{dist.get_rank()} holds {len(networks)}; expected every rank to build the same "
                f"model")
    gathered = [torch.empty_like(mine, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine.to(device))
    for rank, theirs in enumerate(gathered):
        differ = (theirs.cpu() != mine).view(-1, 3).any(dim=1)
        if differ.any():
            label = labels[int(differ.nonzero()[0])]
            raise MRNNConfigError(
                f"check_same_structure: {label} differs between rank {dist.get_rank()} and "
                f"rank {rank}; expected every rank to build the same network (the same seed, "
                f"or the same checkpoint), got different masks or sign matrices")


def data_parallel(module: nn.Module, **ddp_kwargs) -> nn.parallel.DistributedDataParallel:
    """``DistributedDataParallel(module, **ddp_kwargs)``, after checking the process
    group and that every rank holds the same structure (:func:`check_same_structure`).

    DDP then copies rank 0's parameters and buffers to every rank, and averages
    the gradients of every backward. Frozen blocks (zero gradient) and learned
    time constants need nothing special. **Returns:** the wrapped module.
    """
    require_process_group("data_parallel")
    check_same_structure(module)
    return nn.parallel.DistributedDataParallel(module, **ddp_kwargs)


def _collective_device() -> torch.device:
    """Where the default group's collectives take tensors: CUDA for NCCL, else CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")

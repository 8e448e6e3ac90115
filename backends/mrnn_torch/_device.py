"""Where a model's tensors live: ``device=None`` means CUDA when available, else CPU."""

from __future__ import annotations

import torch

from mrnn_core import MRNNConfigError


def _available() -> str:
    if torch.cuda.is_available():
        return f"'cpu' and 'cuda:0' .. 'cuda:{torch.cuda.device_count() - 1}'"
    return "'cpu' only (torch.cuda.is_available() is False)"


def resolve_device(device) -> torch.device:
    """The ``torch.device`` for a ``device=`` argument.

    ``None`` picks ``cuda`` when available, else ``cpu``. A CUDA device this
    machine does not have is an error naming the device and what is available,
    rather than a failure deep inside the first tensor allocation.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise MRNNConfigError(
            f"device: expected a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index is not None and resolved.index >= count):
            raise MRNNConfigError(
                f"device {device!r} is not available on this machine; available: "
                f"{_available()}. Pass device=None to use CUDA when present, else CPU"
            )
    return resolved


def resolve_dtype(dtype) -> torch.dtype:
    """``dtype`` if it is a floating-point torch dtype; ``None`` is torch's default."""
    if dtype is None:
        return torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise MRNNConfigError(
            f"dtype: expected a floating-point torch dtype such as torch.float32, got {dtype!r}"
        )
    return dtype

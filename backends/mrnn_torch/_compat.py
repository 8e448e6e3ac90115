"""Every private or deprecated torch API the backend relies on, one function each.

A torch upgrade that removes or changes one of them fails here, and in
``tests/torch/test_torch_compat.py`` (a test per function), not somewhere
deep in a forward pass. Nothing else in :mod:`mrnn_torch` reaches for
``torch._*``, ``torch.ops.aten._*``, ``Tensor._version`` or TorchScript.

Also private, but not a call: :class:`torch.nn.Module` ``_apply(fn, recurse)``,
which the model and :class:`~mrnn_torch.region.Region` override so that
``.to()``, ``.cuda()``, ``.double()`` also move the tensors that regions and
connections hold outside torch's registries (no public hook sees a dtype or
device change); the compat tests check that ``.to()`` still goes through it.
"""

from __future__ import annotations

import warnings
from collections import ChainMap

import torch

__all__ = ["is_functorch_wrapped", "own_state_keys", "script", "tensors_of", "unsafe_view",
           "version_stamp"]

# Looked up once, at import. Where one is gone, a public stand-in keeps the
# results the same (slower, or without a shortcut) and the compat test fails.
# ``reshape`` of a fresh 2-D result returns a view of it, and autograd tracks
# in-place writes to a view through its base; ``_unsafe_view`` returns a
# tensor that autograd treats as new (not a view), which no public op does
# without a copy.
_unsafe_view = getattr(getattr(torch.ops.aten, "_unsafe_view", None), "default", None)
_is_wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)


def unsafe_view(t: torch.Tensor, shape) -> torch.Tensor:
    """``t`` (contiguous) reshaped to ``shape``: the same memory, but a new
    tensor for autograd, not a view (without ``_unsafe_view``: a copy)."""
    if _unsafe_view is None:
        return t.reshape(shape).clone()
    return _unsafe_view(t, shape)


def is_functorch_wrapped(t: torch.Tensor) -> bool:
    """Whether ``t`` is wrapped by a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``...).

    The fused recurrence's hand-written backward is an ``autograd.Function``
    without vmap rules, so traced calls take the plain loop. torch has no
    public test for this. (Without it: False, and a traced call through the
    fused recurrence fails in torch.func with its own error.)
    """
    return _is_wrapped is not None and _is_wrapped(t)


def version_stamp(t: torch.Tensor) -> int | None:
    """``t``'s in-place version counter (it grows on every in-place write), or
    ``None`` for an inference tensor, which keeps none.

    Used as a cache key: a value computed from a tensor stays valid while the
    tensor object is alive and its counter unchanged.
    """
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter
        return None


def script(fn):
    """``fn`` compiled by TorchScript (one interpreter call runs a whole loop), else ``fn``.

    TorchScript is deprecated upstream and warns on use; it is still the
    cheapest way to take the Python interpreter out of a per-step loop, so the
    warnings are silenced here (only here). Where scripting fails (a build
    without it, a future torch that drops it) ``fn`` is returned and runs as
    plain Python: same results, slower.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(fn)
    except Exception:
        return fn


def own_state_keys(module: torch.nn.Module) -> list[str]:
    """The names of ``module``'s own parameters and persistent buffers (not its
    children's, not ``None`` ones), in registration order: the keys its own
    ``_save_to_state_dict`` writes, before any state_dict hook.

    torch exposes no public list of which buffers are persistent.
    """
    skip = module._non_persistent_buffers_set
    params = (k for k, _ in module.named_parameters(recurse=False, remove_duplicate=False))
    buffers = (k for k, _ in module.named_buffers(recurse=False, remove_duplicate=False)
               if k not in skip)
    return [*params, *buffers]


def tensors_of(module: torch.nn.Module) -> ChainMap:
    """``module``'s own parameters and buffers by name, read at each lookup from torch's dicts
    of them (updated in place; copies and pickles carry them): no reference to ``module``."""
    return ChainMap(module._parameters, module._buffers)

"""Losses and regularisers on torch tensors, differentiable.

The definitions, equations and shapes are those of :mod:`mrnn_core.losses`
(same names, signatures and values); this module only evaluates them in
torch. Results are 0-d tensors in the dtype and on the device of the inputs.
Which rows and columns a region owns, and every shape check, come from the
core, so both backends reject bad input with the same message.
"""

from __future__ import annotations

import torch

from mrnn_core import losses as core
from mrnn_core.losses import KINDS as KINDS
from mrnn_core.losses import SIDES as SIDES


def _index(idx, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(idx, dtype=torch.long, device=like.device)


def mse(outputs, targets, mask=None):
    """``sum(m * (y - y*)^2) / max(sum(m), 1)``: see :func:`mrnn_core.losses.mse`."""
    y, t = torch.as_tensor(outputs), torch.as_tensor(targets)
    m = None if mask is None else torch.as_tensor(mask, device=y.device)
    shape = core.check_mse_shapes(y.shape, t.shape, None if m is None else m.shape)
    err = (y - t) ** 2
    if shape is None:
        return err.mean()
    m = m.to(y.dtype).reshape(shape)
    return (m * err).sum() / torch.clamp(m.expand(y.shape).sum(), min=1.0)


def weight_l2(W):
    """``sum W^2`` of ``W`` ``[rows, cols]``: see :func:`mrnn_core.losses.weight_l2`."""
    W = torch.as_tensor(W)
    core.check_matrix(W.shape)
    return (W ** 2).sum()


def weight_l1(W):
    """``sum |W|`` of ``W`` ``[rows, cols]``: see :func:`mrnn_core.losses.weight_l1`."""
    W = torch.as_tensor(W)
    core.check_matrix(W.shape)
    return W.abs().sum()


def projection_penalty(W, spec, src: str, dst: str, kind: str = "l2", side: str = "recurrent"):
    """The penalty of the ``src -> dst`` block: see :func:`mrnn_core.losses.projection_penalty`."""
    W = torch.as_tensor(W)
    kind = core.check_kind(kind)
    rows, cols = core.projection_indices(spec, src, dst, side, W.shape)
    block = W.index_select(0, _index(rows, W)).index_select(1, _index(cols, W))
    return weight_l2(block) if kind == "l2" else weight_l1(block)


def weight_penalty(weights, kind: str = "l2", which=None):
    """Sum of the penalty over named matrices: see :func:`mrnn_core.losses.weight_penalty`."""
    kind = core.check_kind(kind)
    f = weight_l2 if kind == "l2" else weight_l1
    return sum(f(weights[n]) for n in core.check_weights(weights, which))


def rate_l2(hs, spec=None, regions=None, per_region: bool = False):
    """Mean squared rate, optionally per region: see :func:`mrnn_core.losses.rate_l2`."""
    h = torch.as_tensor(hs)
    groups = core.rate_l2_units(h.shape, spec, regions, per_region)
    if groups is None:
        return (h ** 2).mean()
    if isinstance(groups, dict):
        return {n: (h.index_select(-1, _index(i, h)) ** 2).mean() for n, i in groups.items()}
    return (h.index_select(-1, _index(groups, h)) ** 2).mean()


def rate_std(hs, axis: int = -1):
    """Population std across units, averaged over the rest: see :func:`mrnn_core.losses.rate_std`."""
    h = torch.as_tensor(hs)
    core.check_rates(h.shape)
    return _std(h, core.population_axis(h.shape, axis)).mean()


def rate_cv(hs, eps: float = 1e-8, axis: int = -1):
    """``std / (mean + eps)`` across units, averaged: see :func:`mrnn_core.losses.rate_cv`."""
    h = torch.as_tensor(hs)
    core.check_rates(h.shape)
    axis = core.population_axis(h.shape, axis)
    return (_std(h, axis) / (h.mean(dim=axis) + eps)).mean()


def _std(h: torch.Tensor, axis: int) -> torch.Tensor:
    var = ((h - h.mean(dim=axis, keepdim=True)) ** 2).mean(dim=axis)
    # sqrt's gradient is infinite at 0 (all units equal, e.g. a silent
    # network at initialisation); route those entries through sqrt(1) so the
    # value stays 0 and the gradient is 0 instead of NaN.
    spread = var > 0
    return torch.where(spread, torch.sqrt(torch.where(spread, var, torch.ones_like(var))),
                       torch.zeros_like(var))

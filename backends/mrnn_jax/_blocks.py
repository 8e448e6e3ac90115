"""Block-sparse recurrence: compute only the blocks of ``W_rec`` the mask can make nonzero.

A network's regions are wired by a few projections, so most region-by-region
blocks of ``W_rec_mask`` are zero (issue 6's W4: 16 of 64). A :class:`BlockPlan`
lists, for each run of destination rows, the spans of source columns that hold
any nonzero mask entry. Per step the recurrent input of those rows is a
matmul with the columns of its spans (groups of equal shape batched into one);
rows with no source get zeros.

The plan decides array shapes, so it must be static (a Python value at trace
time). It is read from concrete mask values when :func:`simulate` gets them,
or from a structure given as ``recurrence=`` (a :class:`mrnn_core.Connectivity`
or :class:`mrnn_core.NetworkSpec`; the models pass their spec) when the masks
are traced, as under a user's ``jit``. :func:`choose_plan` decides between the
plan and the dense matmul.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import Connectivity, MRNNConfigError, NetworkSpec
from mrnn_core.blockplan import (AUTO_MIN_HIDDEN, BlockPlan, plan_from_mask, plan_of_spec,
                                  region_bounds, worth_blocks)

from ._compat import is_traced
from ._functional import _PRECISION

RECURRENCES = ("auto", "dense", "blocks", "scan")



def plan_of(structure) -> BlockPlan:
    """The plan of a :class:`mrnn_core.Connectivity` or :class:`mrnn_core.NetworkSpec` (region blocks)."""
    return block_plan(None, structure)


def _concrete(a) -> np.ndarray | None:
    return None if is_traced(a) else np.asarray(a)


def block_plan(mask, structure=None) -> BlockPlan | None:
    """The plan for ``mask`` ``[H, H]``, or None when it cannot be known statically.

    Concrete mask values are read directly (cut at the regions of `structure`
    when given, else into equal tiles). A traced mask needs `structure`: a
    :class:`BlockPlan`, a :class:`mrnn_core.Connectivity` (its mask) or a
    :class:`mrnn_core.NetworkSpec` (its declared, non-empty connections); the
    traced mask must then be zero outside that structure's blocks.
    """
    if isinstance(structure, BlockPlan):
        return structure
    concrete = None if mask is None else _concrete(mask)
    if structure is None:
        return None if concrete is None else plan_from_mask(concrete)
    if isinstance(structure, NetworkSpec):
        if concrete is not None:
            return plan_from_mask(concrete, region_bounds(structure))
        return plan_of_spec(structure)
    if isinstance(structure, Connectivity):
        source = structure.W_rec_mask if concrete is None else concrete
        return plan_from_mask(source, region_bounds(structure.spec))
    raise MRNNConfigError(
        "structure: expected a mrnn_core.Connectivity, NetworkSpec or BlockPlan (or None), "
        f"got {type(structure).__name__}")


def choose_plan(recurrence, mask, hidden_size: int, replaced: bool):
    """The plan to run with, or None for the dense matmul.

    `recurrence` is ``"dense"`` (never plans; ``"scan"`` likewise, and the
    dense step then runs as a plain ``lax.scan``), ``"blocks"`` (always plans from
    the concrete mask; raises when the mask is traced or ``W_rec=`` replaces
    the matrix), ``"auto"``, or a structure for traced masks: a
    :class:`mrnn_core.Connectivity` or :class:`mrnn_core.NetworkSpec` (chosen
    as ``"auto"`` chooses) or a :class:`BlockPlan` (used as given).
    ``"auto"`` plans when ``H >= AUTO_MIN_HIDDEN`` and the plan computes at most
    ``mrnn_core.blockplan.AUTO_MAX_FRACTION`` of the entries; ``W_rec=`` is dense.
    """
    if isinstance(recurrence, str):
        if recurrence not in RECURRENCES:
            raise MRNNConfigError(
                f"recurrence: expected one of {', '.join(map(repr, RECURRENCES))} or a "
                f"Connectivity / NetworkSpec, got {recurrence!r}")
        structure = None
    elif isinstance(recurrence, BlockPlan):
        structure, recurrence = recurrence, "blocks"
    elif isinstance(recurrence, (Connectivity, NetworkSpec)):
        structure, recurrence = recurrence, "auto"
    else:
        raise MRNNConfigError(
            f"recurrence: expected one of {', '.join(map(repr, RECURRENCES))} or a "
            f"Connectivity / NetworkSpec, got a {type(recurrence).__name__}")
    if structure is not None and structure_size(structure) != hidden_size:
        raise MRNNConfigError(
            f"recurrence: the structure has {structure_size(structure)} hidden units, "
            f"expected H = {hidden_size} (read from the params)")
    if recurrence in ("dense", "scan"):
        return None
    if replaced:
        if recurrence == "blocks":
            raise MRNNConfigError(
                "recurrence: a block plan cannot be used with W_rec= (a replacement matrix "
                "is dense); got both")
        return None
    if recurrence == "auto" and hidden_size < AUTO_MIN_HIDDEN:
        return None  # before reading the mask: the plan could not be worth it
    plan = block_plan(mask, structure)
    if plan is None:
        if recurrence == "blocks":
            raise MRNNConfigError(
                "recurrence: 'blocks' reads the block structure from concrete masks, got "
                "traced ones; pass the structure instead (recurrence=connectivity or spec)")
        return None
    if recurrence == "auto" and not worth_blocks(plan):
        return None
    return plan


def structure_size(structure) -> int:
    """``H`` of a Connectivity, NetworkSpec or BlockPlan."""
    return structure.hidden_size


def _shape_classes(plan: BlockPlan):
    """Groups with sources, bucketed by ``(n_dst, n_src)``: one batched matmul per bucket."""
    classes = {}
    for index, (d0, d1, spans) in enumerate(plan.groups):
        if spans:
            n_src = sum(s1 - s0 for s0, s1 in spans)
            classes.setdefault((d1 - d0, n_src), []).append(index)
    return list(classes.values())


def _sources(spans, a):
    """The source columns of ``a`` ``[..., H]`` for one group, ``[..., n_src]``."""
    return jnp.concatenate([jax.lax.slice_in_dim(a, s0, s1, axis=-1) for s0, s1 in spans],
                           axis=-1)


def split_weights(plan: BlockPlan, W):
    """Per shape class, the stacked ``W[dst rows, source columns]`` ``[k, n_dst, n_src]``.

    Groups of equal shape (W4: all eight regions) then cost one batched matmul
    per step, which compiles faster than eight separate ones and runs no slower.
    """
    return [jnp.stack([_sources(plan.groups[i][2], jax.lax.slice_in_dim(
        W, plan.groups[i][0], plan.groups[i][1], axis=0)) for i in members])
        for members in _shape_classes(plan)]


def recurrent_input(plan: BlockPlan, blocks, h):
    """``h @ W.T`` for ``h`` ``[B, H]``, computing only the planned blocks."""
    parts = [None] * len(plan.groups)
    for members, W_k in zip(_shape_classes(plan), blocks):
        src = jnp.stack([_sources(plan.groups[i][2], h) for i in members])  # [k, B, n_src]
        out = jnp.einsum("kbs,kds->kbd", src, W_k, precision=_PRECISION)
        for j, i in enumerate(members):
            parts[i] = out[j]
    for i, (d0, d1, spans) in enumerate(plan.groups):
        if not spans:
            parts[i] = jnp.zeros(h.shape[:-1] + (d1 - d0,), h.dtype)
    return jnp.concatenate(parts, axis=-1)

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

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import Connectivity, MRNNConfigError, NetworkSpec

from ._functional import _PRECISION

RECURRENCES = ("auto", "dense", "blocks", "scan")

# Blocks pay on large networks that skip most of W; on small ones they gain
# little and compile slowly (many block shapes). Hence blocks need H >= 512 and
# at most half the entries computed (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from").
AUTO_MAX_FRACTION = 0.5
AUTO_MIN_HIDDEN = 512

# Without region boundaries (concrete mask, no structure) the mask is cut into
# this many equal tiles per side.
_TILES = 16


@dataclass(frozen=True)
class BlockPlan:
    """Static block structure of an ``[H, H]`` recurrent matrix.

    - `hidden_size`: ``H``.
    - `groups`: ``((dst_start, dst_end, ((src_start, src_end), ...)), ...)``;
      the destination runs tile ``[0, H)`` in order, each with its merged,
      sorted source spans (possibly none).
    """

    hidden_size: int
    groups: tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]

    @property
    def fraction(self) -> float:
        """Share of the ``H^2`` entries the plan computes (1.0 for dense)."""
        done = sum((d1 - d0) * (s1 - s0) for d0, d1, spans in self.groups for s0, s1 in spans)
        return done / self.hidden_size**2 if self.hidden_size else 1.0

    def covers(self, mask: np.ndarray) -> bool:
        """True when every nonzero of ``mask`` ``[H, H]`` lies inside a planned block."""
        inside = np.zeros(mask.shape, bool)
        for d0, d1, spans in self.groups:
            for s0, s1 in spans:
                inside[d0:d1, s0:s1] = True
        return not np.any((mask != 0) & ~inside)


def plan_from_mask(mask: np.ndarray, bounds) -> BlockPlan:
    """The plan of a concrete mask ``[H, H]`` cut at ``bounds`` (``0 = b_0 < ... < b_n = H``).

    Present segments of a destination are merged when contiguous, and
    neighbouring destination segments with the same source spans share a group.
    """
    nonzero = np.asarray(mask) != 0
    segments = list(zip(bounds[:-1], bounds[1:]))
    present = np.array([[nonzero[d0:d1, s0:s1].any() for s0, s1 in segments]
                        for d0, d1 in segments], dtype=bool).reshape(len(segments), len(segments))
    return _plan(present, list(bounds))


def _plan(present: np.ndarray, bounds: list[int]) -> BlockPlan:
    """The plan of segment-level presence ``present[dst, src]`` over ``bounds``."""
    segments = list(zip(bounds[:-1], bounds[1:]))
    groups = []
    for i, (d0, d1) in enumerate(segments):
        spans = []
        for j, (s0, s1) in enumerate(segments):
            if present[i, j]:
                if spans and spans[-1][1] == s0:
                    spans[-1] = (spans[-1][0], s1)
                else:
                    spans.append((s0, s1))
        spans = tuple(spans)
        if groups and groups[-1][2] == spans:
            groups[-1] = (groups[-1][0], d1, spans)
        else:
            groups.append((d0, d1, spans))
    return BlockPlan(bounds[-1], tuple(groups))


def _region_bounds(connectivity: Connectivity) -> list[int]:
    return [0] + [s.stop for s in connectivity.recurrent_slices.values()]


def _tile_bounds(H: int) -> list[int]:
    return sorted({round(k * H / _TILES) for k in range(_TILES + 1)})


@lru_cache(maxsize=32)
def _plan_of_spec(spec: NetworkSpec) -> BlockPlan:
    # The declared, non-empty connections, without drawing any mask (a 4000-unit
    # network's masks take most of a second to draw). A sparse block whose every
    # entry happens to be dropped stays in the plan: computing zeros is exact.
    names = [r.name for r in spec.recurrent_regions]
    present = np.zeros((len(names), len(names)), dtype=bool)
    for c in spec.recurrent_connections:
        if not c.is_empty:
            present[names.index(c.dst_region), names.index(c.src_region)] = True
    return _plan(present, _spec_bounds(spec))


def _spec_bounds(spec: NetworkSpec) -> list[int]:
    return [0] + [int(b) for b in np.cumsum([r.num_units for r in spec.recurrent_regions])]


def plan_of(structure) -> BlockPlan:
    """The plan of a :class:`mrnn_core.Connectivity` or :class:`mrnn_core.NetworkSpec` (region blocks)."""
    return block_plan(None, structure)


def _concrete(a) -> np.ndarray | None:
    return None if isinstance(a, jax.core.Tracer) else np.asarray(a)


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
        return None if concrete is None else plan_from_mask(concrete, _tile_bounds(concrete.shape[0]))
    if isinstance(structure, NetworkSpec):
        if concrete is not None:
            return plan_from_mask(concrete, _spec_bounds(structure))
        return _plan_of_spec(structure)
    if isinstance(structure, Connectivity):
        source = structure.W_rec_mask if concrete is None else concrete
        return plan_from_mask(source, _region_bounds(structure))
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
    ``AUTO_MAX_FRACTION`` of the entries; ``W_rec=`` is dense.
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
        return None
    plan = block_plan(mask, structure)
    if plan is None:
        if recurrence == "blocks":
            raise MRNNConfigError(
                "recurrence: 'blocks' reads the block structure from concrete masks, got "
                "traced ones; pass the structure instead (recurrence=connectivity or spec)")
        return None
    if recurrence == "auto" and plan.fraction > AUTO_MAX_FRACTION:
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

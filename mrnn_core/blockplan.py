"""Which blocks of the recurrent matrix a step must multiply: one plan, both backends.

``W_eff = M * ...`` is zero wherever the mask ``M`` is, so a step may skip
every block of ``W_rec`` whose mask is all zero without changing a single
result. A :class:`BlockPlan` says which blocks to keep: the hidden units are
cut into segments (the regions when the structure is known, else equal
tiles), a segment pair is kept when its mask block has any nonzero entry,
kept sources of one destination segment are merged when contiguous, and
neighbouring destination segments with the same sources share a group.

:func:`worth_blocks` decides, from the plan alone, whether a block-sparse
step beats the dense matmul. The torch and JAX backends both take their plan
from here and differ only in how they multiply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .spec import NetworkSpec

# Blocks pay on large networks that skip most of W; on small ones the
# per-matmul overhead eats the saving (and JAX compiles many block shapes
# slowly). Measurements: benchmarks/RESULTS.md, "Where the tuning constants
# come from".
AUTO_MIN_HIDDEN = 512
AUTO_MAX_FRACTION = 0.5

# Without region boundaries (a bare mask) the units are cut into this many
# equal tiles per side.
TILES = 16


@dataclass(frozen=True)
class BlockPlan:
    """Static block structure of an ``[H, H]`` recurrent matrix.

    - `hidden_size`: ``H``.
    - `groups`: ``((dst_start, dst_end, ((src_start, src_end), ...)), ...)``;
      the destination runs tile ``[0, H)`` in order, each with its merged,
      sorted source spans (none for rows that receive no recurrent input).
    """

    hidden_size: int
    groups: tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]

    @property
    def fraction(self) -> float:
        """Share of the ``H^2`` entries the plan computes."""
        done = sum((d1 - d0) * (s1 - s0) for d0, d1, spans in self.groups for s0, s1 in spans)
        return done / self.hidden_size**2 if self.hidden_size else 1.0

    def covers(self, mask) -> bool:
        """True when every nonzero of ``mask`` ``[H, H]`` lies inside a planned block."""
        mask = np.asarray(mask)
        inside = np.zeros(mask.shape, bool)
        for d0, d1, spans in self.groups:
            for s0, s1 in spans:
                inside[d0:d1, s0:s1] = True
        return not np.any((mask != 0) & ~inside)


def worth_blocks(plan: BlockPlan) -> bool:
    """Whether ``recurrence="auto"`` should run this plan rather than the dense matmul."""
    return plan.hidden_size >= AUTO_MIN_HIDDEN and plan.fraction <= AUTO_MAX_FRACTION


def tile_bounds(hidden_size: int) -> list[int]:
    """``0 = b_0 < ... < b_n = H``: :data:`TILES` near-equal tiles."""
    return sorted({round(k * hidden_size / TILES) for k in range(TILES + 1)})


def region_bounds(spec: NetworkSpec) -> list[int]:
    """``0 = b_0 < ... < b_n = H``: where each recurrent region of `spec` ends."""
    return [0] + [int(b) for b in np.cumsum([r.num_units for r in spec.recurrent_regions])]


def plan_from_mask(mask, bounds=None) -> BlockPlan:
    """The plan of a concrete mask ``[H, H]`` (nonzero = present).

    `bounds` cuts the units (e.g. :func:`region_bounds`); ``None`` uses
    :func:`tile_bounds`.
    """
    nonzero = np.asarray(mask) != 0
    bounds = tile_bounds(nonzero.shape[0]) if bounds is None else list(bounds)
    if len(bounds) < 2:
        return BlockPlan(0, ())
    starts = np.asarray(bounds[:-1])
    # Any nonzero per segment pair: OR over each segment's rows, then columns.
    present = np.logical_or.reduceat(np.logical_or.reduceat(nonzero, starts, axis=0), starts, axis=1)
    return plan_from_presence(present, bounds)


def plan_from_presence(present, bounds) -> BlockPlan:
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
    return BlockPlan(int(bounds[-1]), tuple(groups))


@lru_cache(maxsize=32)
def plan_of_spec(spec: NetworkSpec) -> BlockPlan:
    """The plan of the declared, non-empty connections of `spec`, without drawing a mask.

    A sparse block whose every entry happens to be dropped stays in the plan:
    computing zeros is exact.
    """
    names = [r.name for r in spec.recurrent_regions]
    present = np.zeros((len(names), len(names)), dtype=bool)
    for c in spec.recurrent_connections:
        if not c.is_empty:
            present[names.index(c.dst_region), names.index(c.src_region)] = True
    return plan_from_presence(present, region_bounds(spec))

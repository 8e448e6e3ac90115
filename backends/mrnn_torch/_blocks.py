"""Which blocks of the recurrent matrix a step must multiply: dense or block-sparse.

A :class:`BlockPlan` lists row groups and, per group, the column spans whose
mask has any nonzero entry in those rows; every other entry of ``W_eff`` is
zero by construction (``W_eff = mask * ...``), so skipping it changes no
result. The plan is read off the mask alone, on a grid of ``TILE`` x
``TILE`` tiles: a row tile's present column tiles are merged into contiguous
spans, consecutive row tiles with the same spans share a group, and each
span is trimmed to the first and last column its rows actually use. A region
boundary inside a tile only costs some multiplied zeros, never a wrong sum.

:func:`choose_plan` picks dense or block-sparse from the fraction of
entries the plan multiplies (see ``BLOCK_DENSITY_CROSSOVER``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from mrnn_core import MRNNConfigError

TILE = 32

# Block-sparse steps win once they skip enough of W; below a few hundred units
# the per-matmul overhead eats the saving. Hence blocks only below half the
# entries and from MIN_HIDDEN units up (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from").
BLOCK_DENSITY_CROSSOVER = 0.5
MIN_HIDDEN = 512

RECURRENCE_MODES = ("auto", "dense", "blocks", "autograd")


@dataclass(frozen=True)
class BlockPlan:
    """Row groups of ``W`` ``[H, H]`` and the column spans each multiplies.

    ``groups``: ``((rows, (cols, ...)), ...)`` with ``rows``/``cols`` slices;
    ``uncovered_rows``: row slices whose mask row is all zero (no recurrent
    input); ``dense``: one block, the whole matrix; ``fraction``: the share
    of ``H * H`` entries multiplied per step.
    """

    hidden: int
    groups: tuple
    uncovered_rows: tuple
    dense: bool
    fraction: float

    @classmethod
    def full(cls, hidden: int) -> "BlockPlan":
        whole = slice(0, hidden)
        return cls(hidden, ((whole, (whole,)),), (), True, 1.0)

    def blocks(self, W):
        """The blocks ``W[rows, cols]`` in plan order (views, no copies)."""
        if self.dense:
            return [W]
        return [W[rows, c] for rows, cols in self.groups for c in cols]

    def blocks_T(self, W):
        """The transposed blocks ``W[rows, cols].T`` in plan order (views)."""
        return [b.T for b in self.blocks(W)]


def _runs(flags):
    """Slices of the maximal runs of True in a 1-d bool list."""
    out, start = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def plan_from_mask(mask) -> BlockPlan:
    """The block-sparse plan of a ``[H, H]`` mask (any dtype; nonzero = present)."""
    H = mask.shape[0]
    nz = (mask != 0).to("cpu")
    n = -(-H // TILE)
    padded = torch.zeros(n * TILE, n * TILE, dtype=torch.bool)
    padded[:H, :H] = nz
    tiles = padded.view(n, TILE, n, TILE).any(dim=3).any(dim=1).tolist()
    groups, uncovered, used = [], [], 0
    r = 0
    while r < n:
        spans = _runs(tiles[r])
        r_end = r + 1
        while r_end < n and _runs(tiles[r_end]) == spans:
            r_end += 1
        rows = slice(r * TILE, min(r_end * TILE, H))
        if not spans:
            uncovered.append(rows)
        else:
            cols_used = nz[rows].any(dim=0)
            cols = []
            for c0, c1 in spans:
                idx = cols_used[c0 * TILE:min(c1 * TILE, H)].nonzero().flatten()
                lo, hi = c0 * TILE + int(idx[0]), c0 * TILE + int(idx[-1]) + 1
                cols.append(slice(lo, hi))
                used += (rows.stop - rows.start) * (hi - lo)
            groups.append((rows, tuple(cols)))
        r = r_end
    return BlockPlan(H, tuple(groups), tuple(uncovered), False, used / max(H * H, 1))


_CACHE: dict[int, tuple] = {}


def _cached_plan(mask) -> BlockPlan:
    """``plan_from_mask`` remembered per mask tensor while it is alive and unmodified."""
    key = id(mask)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is mask and hit[1] == (mask._version, TILE):
        return hit[2]
    plan = plan_from_mask(mask)
    _CACHE[key] = (weakref.ref(mask, lambda _ref, key=key: _CACHE.pop(key, None)),
                   (mask._version, TILE), plan)
    return plan


def choose_plan(mode: str, mask, hidden: int, override: bool) -> BlockPlan:
    """The plan for ``recurrence=mode`` (``"auto"``, ``"dense"`` or ``"blocks"``).

    ``mask`` is ``W_rec_mask``; with a ``W_rec=`` override (``override``)
    its zero structure is unknown, so ``"auto"`` is dense and ``"blocks"``
    an error.
    """
    if mode == "dense" or hidden == 0:
        return BlockPlan.full(hidden)
    if override:
        if mode == "blocks":
            raise MRNNConfigError(
                "recurrence: 'blocks' needs the zero structure of W_rec_mask, but a W_rec= "
                "override is a dense matrix; expected recurrence='auto' or 'dense', got 'blocks'")
        return BlockPlan.full(hidden)
    if mode == "auto" and hidden < MIN_HIDDEN:
        return BlockPlan.full(hidden)
    plan = _cached_plan(mask)
    if mode == "auto" and plan.fraction > BLOCK_DENSITY_CROSSOVER:
        return BlockPlan.full(hidden)
    return plan

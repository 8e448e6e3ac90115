"""The torch side of the block plan: dense or block-sparse, as slices of ``W``.

The plan itself (which blocks a step must multiply, and whether skipping the
rest is worth it) is :mod:`mrnn_core.blockplan`, shared with JAX. Here a
:class:`BlockPlan` holds it as row/column slices for the fused recurrence
(``mrnn_torch._fused``), and :func:`choose_plan` reads it off a mask tensor
once per mask (cached while the tensor is alive and unmodified).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from mrnn_core import MRNNConfigError
from mrnn_core import blockplan
from mrnn_core.blockplan import AUTO_MIN_HIDDEN, plan_from_mask, worth_blocks

from ._compat import version_stamp

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

    @classmethod
    def of(cls, plan) -> "BlockPlan":
        """The slices of a :class:`mrnn_core.blockplan.BlockPlan`."""
        groups = tuple((slice(d0, d1), tuple(slice(s0, s1) for s0, s1 in spans))
                       for d0, d1, spans in plan.groups if spans)
        uncovered = tuple(slice(d0, d1) for d0, d1, spans in plan.groups if not spans)
        return cls(plan.hidden_size, groups, uncovered, False, plan.fraction)

    def blocks(self, W):
        """The blocks ``W[rows, cols]`` in plan order (views, no copies)."""
        if self.dense:
            return [W]
        return [W[rows, c] for rows, cols in self.groups for c in cols]

    def blocks_T(self, W):
        """The transposed blocks ``W[rows, cols].T`` in plan order (views)."""
        return [b.T for b in self.blocks(W)]


_CACHE: dict[int, tuple] = {}


def _cached_plan(mask):
    """``(core plan, its slices)`` of ``mask``, remembered per tensor while it is alive and unmodified."""
    key = id(mask)
    hit = _CACHE.get(key)
    version = version_stamp(mask)
    stamp = (version, blockplan.TILES)
    if version is not None and hit is not None and hit[0]() is mask and hit[1] == stamp:
        return hit[2]
    plan = plan_from_mask(mask.detach().to("cpu").numpy())
    out = (plan, BlockPlan.of(plan))
    if version is not None:  # an inference tensor has no counter: nothing to key on
        _CACHE[key] = (weakref.ref(mask, lambda _ref, key=key: _CACHE.pop(key, None)), stamp, out)
    return out


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
    if mode == "auto" and hidden < AUTO_MIN_HIDDEN:
        return BlockPlan.full(hidden)  # before reading the mask: the plan could not be worth it
    plan, slices = _cached_plan(mask)
    if mode == "auto" and not worth_blocks(plan):
        return BlockPlan.full(hidden)
    return slices

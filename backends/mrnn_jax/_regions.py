"""Region helpers: pure functions of a network's layout.

Each takes a :class:`mrnn_core.Connectivity` (or just the
:class:`mrnn_core.NetworkSpec`: only the layout is read) and works on any
array, traced or not; indices are computed in numpy at trace time.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import Connectivity, MRNNConfigError, NetworkSpec, connectivity_from_arrays


@lru_cache(maxsize=64)
def _structure_of(spec: NetworkSpec) -> Connectivity:
    # Only the layout, baselines, initial values and bias flags of this object
    # are read; its masks are placeholders.
    H, I = spec.hidden_size, spec.input_size
    zeros = np.zeros((H, H)), np.zeros((H, H)), np.zeros((H, I)), np.zeros((H, I))
    return connectivity_from_arrays(spec, *zeros)


def layout(connectivity) -> Connectivity:
    """The :class:`Connectivity` to read region slices from (a spec is materialised once)."""
    if isinstance(connectivity, Connectivity):
        return connectivity
    if isinstance(connectivity, NetworkSpec):
        return _structure_of(connectivity)
    raise MRNNConfigError(
        f"connectivity: expected a mrnn_core.Connectivity or NetworkSpec, "
        f"got {type(connectivity).__name__}")


def _take(a, index: np.ndarray, axis: int):
    """``a`` restricted to ``index`` along ``axis``; a plain slice when contiguous."""
    a = jnp.asarray(a)
    start = int(index[0]) if index.size else 0
    if np.array_equal(index, np.arange(start, start + index.size)):
        return jax.lax.slice_in_dim(a, start, start + index.size, axis=axis)
    return jnp.take(a, jnp.asarray(index, dtype=jnp.int32), axis=axis)


def _check_matrix(W, rows: int, cols: int, what: str):
    if tuple(jnp.shape(W)) != (rows, cols):
        raise MRNNConfigError(f"W: expected {what} of shape ({rows}, {cols}), got {tuple(jnp.shape(W))}")


def region_indices(connectivity, name: str) -> tuple[int, int]:
    """``(start, end)`` of region ``name`` in the hidden vector (or, for an
    input region, in the input vector). Parents have no indices."""
    return layout(connectivity).region_indices(name)


def region_activity(connectivity, act, *names: str):
    """The units of ``names`` in ``act`` ``[..., H]``, in the order given.

    Parent names expand to their children. No names: ``act`` unchanged.

    **Returns:** ``[..., n]`` with ``n`` the total size of the named regions.
    """
    c = layout(connectivity)
    if tuple(jnp.shape(act))[-1:] != (c.hidden_size,):
        raise MRNNConfigError(
            f"act: expected activity with H = {c.hidden_size} units in the last axis, "
            f"got shape {tuple(jnp.shape(act))}")
    if not names:
        return act
    return _take(act, c.unit_indices(*names), axis=-1)


def projection(connectivity, W, to: str, from_: str):
    """The block of ``W`` from region ``from_`` to region ``to``: rows of ``to``, columns of ``from_``.

    Parents expand on either side (children in network order). If ``from_`` is an
    input region, ``W`` is the input matrix ``[H, I]``, else ``[H, H]``.
    """
    c = layout(connectivity)
    is_input = from_ in c.spec.input_names
    cols = c.input_size if is_input else c.hidden_size
    _check_matrix(W, c.hidden_size, cols,
                  f"the input matrix [H, I] (from_={from_!r} is an input region)" if is_input
                  else "a recurrent matrix [H, H]")
    rows = c.unit_indices(to)
    return _take(_take(W, rows, axis=0), c.unit_indices(from_, allow_input=True), axis=1)


def weight_subset(connectivity, W, *names: str):
    """The square block of ``W`` ``[H, H]`` among ``names`` (parents expanded), in network order.

    No names: ``W`` unchanged.
    """
    c = layout(connectivity)
    _check_matrix(W, c.hidden_size, c.hidden_size, "a recurrent matrix [H, H]")
    if not names:
        return W
    index = c.unit_indices(*c.in_network_order(*names))
    return _take(_take(W, index, axis=0), index, axis=1)


def tonic_input(params: Mapping):
    """``base_firing`` ``[H]``: the constant drive ``b`` of every unit."""
    return jnp.asarray(params["base_firing"])


def initial_condition(connectivity):
    """``init`` ``[H]``: every region's initial pre-activation, in network order."""
    return jnp.asarray(layout(connectivity).init)

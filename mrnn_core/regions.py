"""Region helpers written once: pure functions of a network's layout, for any array library.

Each takes a :class:`Connectivity` (or a :class:`NetworkSpec`: only the
layout is read, so a spec is materialised once with placeholder masks) and
an array of numpy, torch or JAX (traced or not; :mod:`._arrays` picks the
library from the array itself). Indices are computed in numpy; a contiguous
run of units is a plain slice (a view where the library has views), any
other selection one ``take``.

Region order, documented once: :func:`region_activity` returns regions **in
the order the caller names them**; :func:`weight_subset` and
:func:`projection` use **network order**. Parent names expand to their
children everywhere.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._arrays import namespace
from .connectivity import Connectivity, connectivity_from_arrays
from .errors import MRNNConfigError
from .spec import NetworkSpec

__all__ = ["layout", "region_indices", "region_activity", "projection", "weight_subset"]


@lru_cache(maxsize=64)
def _layout_of(spec: NetworkSpec) -> Connectivity:
    H, I = spec.hidden_size, spec.input_size
    z_rec, z_inp = np.zeros((H, H)), np.zeros((H, I))
    return connectivity_from_arrays(spec, z_rec, z_rec, z_inp, z_inp)


def layout(connectivity) -> Connectivity:
    """The :class:`Connectivity` to read region slices from: itself, or that of a
    spec (its masks are placeholders: only names, sizes, slices, parents,
    baselines and initial values are read from it)."""
    if isinstance(connectivity, Connectivity):
        return connectivity
    if isinstance(connectivity, NetworkSpec):
        return _layout_of(connectivity)
    raise MRNNConfigError(
        f"connectivity: expected a mrnn_core.Connectivity or NetworkSpec, "
        f"got {type(connectivity).__name__}")


def _array(a):
    """An array of any library as it is; anything else (lists, numbers) as numpy."""
    return a if hasattr(a, "shape") else np.asarray(a)


def _shape(a) -> tuple:
    return tuple(a.shape)


def _take(a, index: np.ndarray, axis: int):
    """``a`` restricted to the units ``index`` along ``axis`` (0, 1 or -1)."""
    start = int(index[0]) if index.size else 0
    if np.array_equal(index, np.arange(start, start + index.size)):
        where = (slice(start, start + index.size),)
        return a[(Ellipsis,) + where] if axis == -1 else a[(slice(None),) * axis + where]
    return namespace(a).take(a, index, axis)


def region_indices(connectivity, name: str) -> tuple[int, int]:
    """``(start, end)`` of a recurrent region in the hidden vector, or of an
    input region in the input vector. A parent name is an error (it may not
    be contiguous)."""
    return layout(connectivity).region_indices(name)


def region_activity(connectivity, act, *names: str):
    """The units of the named recurrent regions, from ``act`` ``[..., H]``.

    Regions come in the order the caller names them, parents expanded to
    their children; no names returns ``act`` itself.

    **Returns:** ``[..., n]``, ``n`` the units of the named regions.
    """
    c, act = layout(connectivity), _array(act)
    if _shape(act)[-1:] != (c.hidden_size,):
        raise MRNNConfigError(
            f"act: expected activity with H = {c.hidden_size} units in the last axis, "
            f"got shape {_shape(act)}")
    if not names:
        return act
    return _take(act, c.unit_indices(*names), axis=-1)


def _check_matrix(W, want: tuple, what: str) -> None:
    if _shape(W) != want:
        raise MRNNConfigError(f"W: expected {what} of shape {want}, got {_shape(W)}")


def projection(connectivity, W, to: str, from_: str):
    """The block of ``W`` that region ``from_`` sends to region ``to``.

    ``to`` is a recurrent region or parent; ``from_`` a recurrent region or
    parent (``W`` is then ``[H, H]``) or an input region (``W`` is the input
    matrix ``[H, I]``). Parents expand to their children, in network order.

    **Returns:** ``[n_to, n_from]`` (rows receive).
    """
    c, W = layout(connectivity), _array(W)
    is_input = from_ in c.spec.input_names
    _check_matrix(W, (c.hidden_size, c.input_size if is_input else c.hidden_size),
                  f"the input matrix [H, I] (from_={from_!r} is an input region)" if is_input
                  else "a recurrent matrix [H, H]")
    rows = c.unit_indices(to)
    return _take(_take(W, rows, axis=0), c.unit_indices(from_, allow_input=True), axis=1)


def weight_subset(connectivity, W, *names: str):
    """The square block of ``W`` ``[H, H]`` among the named recurrent regions,
    rows and columns in network order (whatever order they are named in).
    No names returns ``W``."""
    c, W = layout(connectivity), _array(W)
    _check_matrix(W, (c.hidden_size, c.hidden_size), "a recurrent matrix [H, H]")
    if not names:
        return W
    index = c.unit_indices(*c.in_network_order(*names))
    return _take(_take(W, index, axis=0), index, axis=1)

"""Region helpers on JAX arrays: :mod:`mrnn_core.regions` (written once for
every array library), with inputs taken as JAX arrays, so numpy arrays in
give JAX arrays out. Each takes a :class:`mrnn_core.Connectivity` or a
:class:`mrnn_core.NetworkSpec` and works under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp

from mrnn_core import regions as _core
from mrnn_core.regions import layout as layout
from mrnn_core.regions import region_indices as region_indices


def region_activity(connectivity, act, *names: str):
    """:func:`mrnn_core.regions.region_activity` (regions in the caller's order)."""
    return _core.region_activity(connectivity, jnp.asarray(act), *names)


def projection(connectivity, W, to: str, from_: str):
    """:func:`mrnn_core.regions.projection`: the ``[n_to, n_from]`` block ``from_ -> to``."""
    return _core.projection(connectivity, jnp.asarray(W), to, from_)


def weight_subset(connectivity, W, *names: str):
    """:func:`mrnn_core.regions.weight_subset`: the square block among ``names``, network order."""
    return _core.weight_subset(connectivity, jnp.asarray(W), *names)


def tonic_input(params: Mapping):
    """``base_firing`` ``[H]``: the constant drive ``b`` of every unit."""
    return jnp.asarray(params["base_firing"])


def initial_condition(connectivity):
    """``init`` ``[H]``: every region's initial pre-activation, in network order."""
    return jnp.asarray(layout(connectivity).init)

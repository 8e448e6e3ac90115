"""The activation table on JAX arrays (:mod:`mrnn_core.activations`)."""

from __future__ import annotations

from collections.abc import Callable

from mrnn_core import activations


def get_activation(name: str) -> Callable:
    """The elementwise JAX function ``f`` called ``name``.

    ``relu``, ``tanh``, ``sigmoid``, ``softplus`` (beta = 1, exactly
    ``log(1 + exp(x))``) or ``linear``. An unknown name raises
    :class:`mrnn_core.MRNNConfigError` listing the allowed ones.
    """
    return activations.get_activation(name, "jax")

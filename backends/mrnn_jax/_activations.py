"""The activation table: one JAX function per name in ``mrnn_core.ACTIVATIONS``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from mrnn_core import check_activation


def _softplus(x):
    # log(1 + exp(x)) for every x, with no threshold shortcut: torch's default
    # switches to x above 20, which would break 1e-10 agreement there.
    return jnp.logaddexp(x, 0.0)


def _linear(x):
    return x


_ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": _softplus,
    "linear": _linear,
}


def get_activation(name: str) -> Callable:
    """The elementwise JAX function ``f`` called ``name``.

    ``relu``, ``tanh``, ``sigmoid``, ``softplus`` (beta = 1, exactly
    ``log(1 + exp(x))``) or ``linear``. An unknown name raises
    :class:`mrnn_core.MRNNConfigError` listing the allowed ones.
    """
    return _ACTIVATIONS[check_activation(name)]

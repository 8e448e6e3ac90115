"""The activations and their derivatives, written once for numpy, torch and JAX.

Each function works on the arrays of whichever library the caller passes
(picked by :func:`mrnn_core._arrays.namespace`; the core never imports a
framework the caller did not). The names are :data:`mrnn_core.ACTIVATIONS`:

- ``relu``: ``max(x, 0)``, derivative ``1[x > 0]`` (0 at 0, as autograd's).
- ``tanh``: derivative ``1 - tanh(x)^2``.
- ``sigmoid``: ``1 / (1 + exp(-x))``, derivative ``s (1 - s)``.
- ``softplus`` (beta = 1): exactly ``log(1 + exp(x))`` for every ``x`` (no
  threshold shortcut), derivative ``sigmoid(x)``.
- ``linear``: the identity, derivative 1.

The backward passes of the fused recurrences store only the rates
``h = f(x)``, so :func:`derivative_from_output` gives ``f'(x)`` from ``h``
alone (exact for every activation above).
"""

from __future__ import annotations

from collections.abc import Callable

from ._arrays import adapter, namespace
from .dynamics import check_activation


def _linear(x):
    return x


def get_activation(name: str, library: str = "numpy") -> Callable:
    """The elementwise function ``f`` called ``name``, on ``library``'s arrays.

    **Arguments:** `name`, one of :data:`mrnn_core.ACTIVATIONS` (anything else
    raises :class:`mrnn_core.MRNNConfigError` listing them); `library`,
    ``"numpy"``, ``"torch"`` or ``"jax"`` (the backends ask for their own).

    **Returns:** ``f``, a function of one array returning an array of its shape.
    """
    name = check_activation(name)
    if name == "linear":
        return _linear
    return getattr(adapter(library), name)


def derivative(name: str, x):
    """``f'(x)`` of activation ``name`` at pre-activations ``x`` (any shape), in ``x``'s library."""
    name = check_activation(name)
    xp = namespace(x)
    if name == "relu":
        return xp.astype(x > 0, x.dtype)
    if name == "tanh":
        return 1.0 - xp.tanh(x) ** 2
    if name == "sigmoid":
        s = xp.sigmoid(x)
        return s * (1.0 - s)
    if name == "softplus":
        return xp.sigmoid(x)
    return xp.ones_like(x)


def derivative_from_output(name: str, h):
    """``f'(x)`` written in terms of the rates ``h = f(x)`` (any shape), in ``h``'s library.

    relu ``1[h > 0]``, tanh ``1 - h^2``, sigmoid ``h (1 - h)``, softplus
    ``1 - exp(-h)`` (as ``-expm1(-h)``, exact for small ``h``), linear 1.
    """
    name = check_activation(name)
    xp = namespace(h)
    if name == "tanh":
        return 1.0 - h * h
    if name == "relu":
        return xp.astype(h > 0, h.dtype)
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "softplus":
        return -xp.expm1(-h)
    return xp.ones_like(h)

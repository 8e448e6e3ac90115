"""The one-step map of :mod:`mrnn_core.analysis` on JAX arrays, and its Jacobians.

Every analysis runs in float64 (inside ``jax.enable_x64``, whatever the
global setting) on copies of the model's arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import Dynamics
from mrnn_core.analysis import Problem, StepDynamics

from .._activations import get_activation
from .._functional import effective_weights


def float64(fn):
    """Run ``fn`` with JAX's 64-bit mode on, so the analysis has float64 precision."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)
    return wrapper


@dataclass(frozen=True)
class Network:
    """A problem's arrays as float64 JAX arrays: ``W`` ``[H, H]`` and ``W_inp`` ``[H, I]``
    (effective), ``b`` ``[H]``, the constant input ``u`` ``[I]`` and ``held`` ``[H]``."""

    W: jax.Array
    W_inp: jax.Array
    b: jax.Array
    u: jax.Array
    held: jax.Array
    dynamics: Dynamics
    space: str
    step: StepDynamics

    def drive(self, u=None):
        """``d = W_inp u + b`` ``[H]``."""
        return self.W_inp @ (self.u if u is None else u) + self.b


def network(problem: Problem) -> Network:
    """The arrays of ``problem`` (call inside :func:`float64`)."""
    as_array = lambda a: jnp.asarray(np.asarray(a), dtype=jnp.float64)  # noqa: E731
    params = {k: as_array(v) for k, v in problem.params.items()}
    W, W_inp = effective_weights(params, problem.dynamics)
    return Network(W, W_inp, params["base_firing"], as_array(problem.inputs),
                   as_array(problem.held), problem.dynamics, problem.space,
                   problem.step_dynamics())


def _alpha(dynamics: StepDynamics, like):
    """alpha as a float, or as a ``[n]`` array when units have their own time constants."""
    a = dynamics.alpha
    return a if isinstance(a, float) else jnp.asarray(a, dtype=like.dtype)


def step_map(dynamics: StepDynamics, space: str, W, d, y):
    """``F(y)`` for states ``y`` ``[..., n]``, weights ``W`` ``[n, n]`` and drive ``d`` ``[n]``.

    x-space ``g = W f(y) + d``, h-space ``g = f(W y + d)``; leaky
    ``F = y + alpha (-y + g)`` (alpha per unit when regions have their own
    tau), Elman ``F = g``.
    """
    f = get_activation(dynamics.activation)
    g = f(y) @ W.T + d if space == "x" else f(y @ W.T + d)
    return y + _alpha(dynamics, W) * (-y + g) if dynamics.kind == "leaky" else g


def reduced(net: Network, units, excluded):
    """``(W_r [n, n], d_r [n])``: the map on ``units`` with the other units held.

    The held units enter as a constant drive ``W[units, excluded] g(held)``,
    with ``g = f`` in x-space and the identity in h-space.
    """
    d = net.drive()
    if len(excluded) == 0:
        return net.W, d
    U, E = np.asarray(units), np.asarray(excluded)
    held = net.held[E]
    source = get_activation(net.dynamics.activation)(held) if net.space == "x" else held
    return net.W[U][:, U], d[U] + net.W[U][:, E] @ source


def closed_form_jacobian(dynamics: StepDynamics, space: str, W, d, y):
    """``dF/dy`` ``[n, n]`` at one state ``y`` ``[n]`` in closed form (O(n^2)).

    x-space ``(1 - alpha) I + alpha W diag(f'(y))``; h-space
    ``(1 - alpha) I + alpha diag(f'(W y + d)) W``; Elman has ``alpha = 1``.
    A per-unit alpha scales the rows: ``diag(1 - alpha) + diag(alpha) (...)``.
    """
    f = get_activation(dynamics.activation)
    z = y if space == "x" else W @ y + d
    fprime = jax.jvp(f, (z,), (jnp.ones_like(z),))[1]
    scaled = W * fprime[None, :] if space == "x" else fprime[:, None] * W
    if dynamics.kind != "leaky":
        return scaled
    eye = jnp.eye(W.shape[0], dtype=W.dtype)
    alpha = _alpha(dynamics, W)
    if isinstance(alpha, float):
        return (1.0 - alpha) * eye + alpha * scaled
    return (1.0 - alpha)[:, None] * eye + alpha[:, None] * scaled


def autodiff_jacobian(dynamics: StepDynamics, space: str, W, d, y):
    """``dF/dy`` ``[N, n, n]`` at states ``y`` ``[N, n]`` by forward-mode autodiff."""
    return _autodiff_jacobian(dynamics, space, W, d, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _autodiff_jacobian(dynamics, space, W, d, y):
    return jax.vmap(jax.jacfwd(lambda s: step_map(dynamics, space, W, d, s)))(y)


def input_jacobian(net: Network, state):
    """``dF/du`` ``[H, I]`` at one full state ``[H]`` and the network's input."""
    return jax.jacfwd(lambda u: step_map(net.step, net.space, net.W, net.drive(u), state))(net.u)

"""What the analysis needs from JAX (:class:`mrnn_core.analysis_driver.Backend`):
64-bit mode, forward-mode Jacobians, and one jitted Levenberg-Marquardt
iteration mapped over every search (compiled once per problem size)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import analysis as core
from mrnn_core.analysis_driver import Backend, lm_iteration, step_map


@functools.partial(jax.jit, static_argnums=(0, 1))
def _jacobian(step, space, W, d, y):
    return jax.vmap(jax.jacfwd(lambda s: step_map(step, space, W, d, s)))(y)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _iteration(step, space, tol, chunk, W, d, y, q, mu, done):
    one = functools.partial(lm_iteration, step, space, tol, W, d)
    return jax.lax.map(lambda c: one(*c), (y, q, mu, done), batch_size=chunk)


class JaxBackend(Backend):
    library = "jax"

    def context(self):
        """JAX's 64-bit mode, whatever ``jax_enable_x64`` says, so the analysis runs in float64."""
        return jax.enable_x64(True)

    def as_array(self, a, device):
        return jnp.asarray(np.asarray(a), dtype=jnp.float64)

    def jacobian(self, step, space, W, d, y):
        return _jacobian(step, space, W, d, y)

    def input_jacobian(self, net, state):
        return jax.jacfwd(lambda u: step_map(net.step, net.space, net.W, net.drive(u), state))(net.u)

    def iteration(self, step, space, tol, W, d):
        return lambda y, q, mu, done: _iteration(
            step, space, tol, min(core.chunk_size(y.shape[1]), y.shape[0]), W, d, y, q, mu, done)

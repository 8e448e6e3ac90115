"""Losses and regularisers on JAX arrays (jit-, grad- and vmap-able).

The functions are those of :mod:`mrnn_core.losses` (same code, names,
signatures, equations and shapes), bound to JAX arrays. Shape and spec checks run in
numpy at trace time, so under ``jit`` pass ``spec``, ``src``, ``dst``,
``regions``, ``kind``, ``side`` and ``axis`` as static (closed over or
``static_argnames``). Both backends reject bad input with the same message.
"""

from mrnn_core.losses import KINDS, SIDES, bind  # noqa: F401 (KINDS, SIDES re-exported)

(mse, weight_l2, weight_l1, projection_penalty, weight_penalty, rate_l2, rate_std,
 rate_cv) = bind("jax")

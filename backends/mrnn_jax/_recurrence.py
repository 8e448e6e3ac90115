"""The dense recurrence with a hand-written reverse pass.

One update, with the leak ``a = 1 - alpha`` (0 for Elman) and ``alpha``
already folded into the weights and the drive by the caller:

    pre_t = h_{t-1} Wt + b + u_t Wit + e_t
    x_t   = a x_{t-1} + pre_t
    h_t   = f(x_t)

Why not let ``jax.grad`` differentiate a plain ``lax.scan``? Two costs that
the floor (a bare scan of matmul + activation, time-major output) does not
pay. (1) The API returns batch-first ``[B, T, H]``: transposing a time-major
scan output writes a second array of that size, and on the benchmark machine
fresh memory is what costs (about 0.5 ms per MB faulted in). Writing each
step straight into a ``[B, T, H]`` buffer with ``dynamic_update_slice`` is as
cheap as the floor's own output, but reverse-mode autodiff of such a scan
accumulates a full-buffer cotangent every step (measured 12x slower). (2) The
leaky model returns both ``xs`` and ``hs``: storing only ``x`` per step and
forming ``hs = f(xs)`` in one vectorised pass afterwards is cheaper than two
per-step output streams. So the forward below stores one stream, in the call
layout, and the reverse pass is written out:

    g_t = dL/dx_t = ct_x_t + f'(x_t) (ct_h_t + g_{t+1} Wt^T) + a g_{t+1}   (g_{T+1} = 0)

then ``dWt = sum_t h_{t-1}^T g_t`` and ``dWit = sum_t u_t^T g_t`` as one GEMM
each over all ``(t, b)``, not ``T`` rank-``B`` updates. ``f'`` is taken from
the stored output ``h = f(x)`` (exact for every activation of the table).

Forward-mode (``jax.jvp``, ``jax.jacfwd``) is not defined through this
function (a ``custom_vjp``); ``jit``, ``vmap``, ``grad`` and higher reverse
derivatives are.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._activations import get_activation
from ._functional import _PRECISION


def _mm(a, b):
    return jnp.matmul(a, b, precision=_PRECISION)


def _fprime_from_output(name: str, h):
    """``f'(x)`` written in terms of ``h = f(x)``."""
    if name == "tanh":
        return 1.0 - h * h
    if name == "relu":
        # jax.nn.relu's derivative is 0 at x = 0, as h > 0 gives.
        return (h > 0).astype(h.dtype)
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "softplus":
        # f' = sigmoid(x) = 1 - exp(-f(x)); expm1 keeps it exact for small h.
        return -jnp.expm1(-h)
    if name == "linear":
        return jnp.ones_like(h)
    raise AssertionError(f"no derivative for activation {name!r}")


def _get(buf, t, batch_major: bool):
    """Step ``t`` of a ``[B, T, H]`` (batch-major) or ``[T, B, H]`` buffer, ``[B, H]``."""
    if batch_major:
        return jax.lax.dynamic_index_in_dim(buf, t, axis=1, keepdims=False)
    return jax.lax.dynamic_index_in_dim(buf, t, axis=0, keepdims=False)


def _put(buf, v, t, batch_major: bool):
    if batch_major:
        return jax.lax.dynamic_update_index_in_dim(buf, v, t, axis=1)
    return jax.lax.dynamic_update_index_in_dim(buf, v, t, axis=0)


def _to_time_major(a, batch_major: bool):
    return jnp.swapaxes(a, 0, 1) if batch_major else a


def _forward(cfg, Wt, Wit, bias, x0, h0, u, extra):
    """The scan; returns the stored stream (``xs`` leaky, ``hs`` Elman) in the call layout."""
    leak, act, batch_major, steps = cfg
    leaky = leak is not None
    f = get_activation(act)
    B, H = h0.shape
    buf = jnp.zeros((B, steps, H) if batch_major else (steps, B, H), h0.dtype)

    def body(carry, inputs):
        x, h, buf = carry
        t, u_t, e_t = inputs
        # The order of the sums is the order of SEMANTICS.md's update (same numbers).
        pre = _mm(h, Wt)
        if bias is not None:
            pre = pre + bias
        if u_t is not None:
            pre = pre + _mm(u_t, Wit)
        if e_t is not None:
            pre = pre + e_t
        x = leak * x + pre if leaky else pre
        h = f(x)
        return (x, h, _put(buf, x if leaky else h, t, batch_major)), None

    x_init = x0 if leaky else h0
    (_, _, buf), _ = jax.lax.scan(body, (x_init, h0, buf), (jnp.arange(steps), u, extra),
                                  length=steps)
    return buf


def _outputs(cfg, stored):
    leak, act, _, _ = cfg
    if leak is None:
        return stored
    return stored, get_activation(act)(stored)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrence(cfg, Wt, Wit, bias, x0, h0, u, extra):
    """Run the recurrence of the module docstring for ``steps`` steps.

    **Arguments:**

    - `cfg`: static ``(leak, activation, batch_major, steps)``; ``leak`` is
      ``1 - alpha`` for the leaky model, None for Elman.
    - `Wt`: ``[H, H]``, the transposed effective recurrent weights (times alpha).
    - `Wit`, `u`: ``[I, H]`` and time-major ``[T, B, I]``, or both None.
    - `bias`: ``[H]`` or None. `extra`: time-major ``[T, B, H]`` or None.
    - `x0`: leaky ``[B, H]`` (None for Elman); `h0`: ``[B, H]``.

    **Returns:** leaky ``(xs, hs)``, Elman ``hs``; each ``[B, T, H]`` if
    ``batch_major`` else ``[T, B, H]``.
    """
    return _outputs(cfg, _forward(cfg, Wt, Wit, bias, x0, h0, u, extra))


def _recurrence_fwd(cfg, Wt, Wit, bias, x0, h0, u, extra):
    out = _outputs(cfg, _forward(cfg, Wt, Wit, bias, x0, h0, u, extra))
    hs = out[1] if cfg[0] is not None else out
    return out, (Wt, Wit, bias, x0, h0, u, extra, hs)


def _recurrence_bwd(cfg, res, cts):
    leak, act, batch_major, steps = cfg
    leaky = leak is not None
    Wt, Wit, bias, x0, h0, u, extra, hs = res
    ct_x, ct_h = cts if leaky else (None, cts)
    WtT = Wt.T

    def grad_step(g_next, t):
        # g_t from g_{t+1}: the recursion of the module docstring.
        h_t = _get(hs, t, batch_major)
        fp = _fprime_from_output(act, h_t)
        g = fp * (_get(ct_h, t, batch_major) + _mm(g_next, WtT))
        if leaky:
            g = g + _get(ct_x, t, batch_major) + leak * g_next
        return g

    # G holds g_t shifted one step back (G[t-1] = g_t for t >= 1, G[T-1] = 0),
    # so it lines up with hs for dWt = sum_t h_{t-1}^T g_t; g_0 (which pairs
    # with h0) comes out of the loop as its carry.
    def body(carry, t):
        g_next, G = carry
        g = grad_step(g_next, t)
        return (g, _put(G, g, t - 1, batch_major)), None

    G = jnp.zeros_like(hs)
    g_last = jnp.zeros_like(h0)
    (g1, G), _ = jax.lax.scan(body, (g_last, G), jnp.arange(steps - 1, 0, -1))
    g0 = grad_step(g1, 0)

    dims = ((0, 1), (0, 1))
    dWt = jax.lax.dot_general(hs, G, (dims, ((), ())), precision=_PRECISION) + _mm(h0.T, g0)
    dh0 = _mm(g0, WtT)
    dx0 = leak * g0 if leaky else None
    dbias = None if bias is None else jnp.sum(G, axis=(0, 1)) + jnp.sum(g0, axis=0)

    # Per-step cotangents in time-major order: g_0, then G[0 .. T-2].
    def time_major(first, shifted):
        rest = _to_time_major(shifted, batch_major)[:-1]
        return jnp.concatenate([first[None], rest], axis=0)

    dWit = du = None
    if u is not None:
        # u_{t+1} pairs with G[t]; its last row meets the zero row of G.
        u_next = jnp.concatenate([u[1:], jnp.zeros_like(u[:1])], axis=0)
        if batch_major:
            u_next = jnp.swapaxes(u_next, 0, 1)
        dWit = jax.lax.dot_general(u_next, G, (dims, ((), ())), precision=_PRECISION) \
            + _mm(u[0].T, g0)
        WitT = Wit.T
        du = time_major(_mm(g0, WitT), _mm(G, WitT))
    dextra = None if extra is None else time_major(g0, G)
    return dWt, dWit, dbias, dx0, dh0, du, dextra


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)

"""The dense recurrence with a hand-written reverse pass.

One update, with the leak ``a = 1 - alpha`` (0 for Elman; a scalar, or one
per unit when the regions' time constants differ) and ``alpha`` already
folded into the weights and the drive by the caller:

    pre_t = h_{t-1} Wt + b + u_t Wit + e_t
    x_t   = a x_{t-1} + pre_t
    h_t   = f(x_t)

Why not let ``jax.grad`` differentiate a plain ``lax.scan``? Two costs that
the floor (a bare scan of matmul + activation, time-major output) does not
pay. (1) The API returns batch-first ``[B, T, H]``: transposing a time-major
scan output writes a second array of that size, and fresh memory is what
costs on CPU (benchmarks/RESULTS.md). Writing each
step straight into a ``[B, T, H]`` buffer with ``dynamic_update_slice`` is as
cheap as the floor's own output, but reverse-mode autodiff of such a scan
accumulates a full-buffer cotangent every step (measured 12x slower). (2) The
leaky model returns both ``xs`` and ``hs``: for large outputs, storing only
``x`` per step and forming ``hs = f(xs)`` in one vectorised pass afterwards
is cheaper than two per-step output streams (small ones, and every call that
is differentiated, store both). So the forward below writes its streams in
the call layout, and the reverse pass is written out:

    g_t = dL/dx_t = ct_x_t + f'(x_t) (ct_h_t + g_{t+1} Wt^T) + a g_{t+1}   (g_{T+1} = 0)

then ``dWt = sum_t h_{t-1}^T g_t`` and ``dWit = sum_t u_t^T g_t`` (and for a
per-unit leak ``da = sum_t sum_b g_t x_{t-1}``, which a learned tau needs): for small
outputs as one GEMM each over all ``(t, b)`` after the loop, for large ones as
rank-``B`` updates inside it (see ``_GEMM_MAX_ELEMENTS``). ``f'`` is taken
from the stored output ``h = f(x)`` (exact for every activation of the table).

Forward-mode (``jax.jvp``, ``jax.jacfwd``) is not defined through this
function (a ``custom_vjp``); ``jit``, ``vmap``, ``grad`` and higher reverse
derivatives are.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from mrnn_core.activations import derivative_from_output

from ._activations import get_activation
from ._functional import _PRECISION


# Outputs up to this many entries (B T H) take the reverse pass that stores
# every g_t and forms each weight gradient in one GEMM; larger ones add
# rank-B updates step by step, because the GEMM needs a transposed copy of a
# [B T, H] operand and fresh memory of that size costs more than the per-step
# updates (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from").
_GEMM_MAX_ELEMENTS = 1 << 20
# ... and so do networks whose [H, H] gradient is too large to stay in cache
# while it is updated every step (H above about 720 in float32).
_ACCUMULATE_MAX_WEIGHTS = 1 << 19

# A leaky forward call (not differentiated) with outputs up to this many
# entries (B T H) stores h_t in the loop as well as x_t; larger ones store x_t
# only and form hs = f(xs) in one pass after the loop, which measured faster
# there (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from").
_STORE_RATES_MAX_ELEMENTS = 1 << 20

# Up to this many inputs the dense path writes the input term of a step as
# multiply-adds, which fuse into the step's elementwise update: no [T, B, H]
# drive array and no extra matmul call per step (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from").
_INPUT_FMA_MAX = 8


def _mm(a, b):
    return jnp.matmul(a, b, precision=_PRECISION)


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


def _input_term(u_t, Wit, fma: bool):
    """``u_t Wit`` (``[B, I] x [I, H]``); with `fma`, as I multiply-adds that fuse
    into the step's elementwise update (no matmul call per step: for a few inputs)."""
    I = Wit.shape[0]
    if not fma:
        return _mm(u_t, Wit)
    out = u_t[:, :1] * Wit[0]
    for i in range(1, I):
        out = out + u_t[:, i:i + 1] * Wit[i]
    return out


def _leak(cfg, leak_vec):
    """The leak of the update: the per-unit ``leak_vec`` ``[H]`` when given, else
    the static scalar ``cfg[0]`` (None for Elman)."""
    return cfg[0] if leak_vec is None else leak_vec


def _forward(cfg, Wt, Wit, bias, x0, h0, u, extra, leak_vec, store_h: bool):
    """The scan, writing the outputs in the call layout: Elman ``hs``; leaky
    ``(xs, hs)`` with `store_h`, else ``xs`` alone (``hs = f(xs)`` is formed after)."""
    _, act, batch_major, steps, _, fma = cfg
    leaky = cfg[0] is not None
    leak = _leak(cfg, leak_vec)
    f = get_activation(act)
    B, H = h0.shape
    shape = (B, steps, H) if batch_major else (steps, B, H)
    store_h = store_h and leaky
    bufs = tuple(jnp.zeros(shape, h0.dtype) for _ in range(2 if store_h else 1))

    def body(carry, inputs):
        x, h, bufs = carry
        t, u_t, e_t = inputs
        # The order of the sums is the order of SEMANTICS.md's update (same numbers).
        pre = _mm(h, Wt)
        if bias is not None:
            pre = pre + bias
        if u_t is not None:
            pre = pre + _input_term(u_t, Wit, fma)
        if e_t is not None:
            pre = pre + e_t
        x = leak * x + pre if leaky else pre
        h = f(x)
        vals = (x, h) if store_h else ((x,) if leaky else (h,))
        return (x, h, tuple(_put(b, v, t, batch_major) for b, v in zip(bufs, vals))), None

    x_init = x0 if leaky else h0
    (_, _, bufs), _ = jax.lax.scan(body, (x_init, h0, bufs), (jnp.arange(steps), u, extra),
                                   length=steps)
    return bufs if store_h else bufs[0]


def _outputs(cfg, stored):
    leak, act = cfg[:2]
    if leak is None or isinstance(stored, tuple):
        return stored
    return stored, get_activation(act)(stored)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrence(cfg, Wt, Wit, bias, x0, h0, u, extra, leak_vec=None):
    """Run the recurrence of the module docstring for ``steps`` steps.

    **Arguments:**

    - `cfg`: static ``(leak, activation, batch_major, steps, reverse_gemm, fma)``;
      ``leak`` is ``1 - alpha`` for the leaky model (any placeholder, such as
      ``"per unit"``, when `leak_vec` gives it), None for Elman;
      ``reverse_gemm`` picks how the reverse pass forms the weight gradients
      (the caller decides with ``_GEMM_MAX_ELEMENTS``); ``fma`` writes the
      input term as multiply-adds (with ``_INPUT_FMA_MAX``).
    - `Wt`: ``[H, H]``, the transposed effective recurrent weights (times alpha).
    - `Wit`, `u`: ``[I, H]`` and time-major ``[T, B, I]``, or both None.
    - `bias`: ``[H]`` or None. `extra`: time-major ``[T, B, H]`` or None.
    - `x0`: leaky ``[B, H]`` (None for Elman); `h0`: ``[B, H]``.
    - `leak_vec`: ``[H]``, the per-unit leak ``1 - alpha`` (differentiable: a
      learned tau), or None for the scalar of `cfg`.

    **Returns:** leaky ``(xs, hs)``, Elman ``hs``; each ``[B, T, H]`` if
    ``batch_major`` else ``[T, B, H]``.
    """
    B, H = h0.shape
    small = B * cfg[3] * H <= _STORE_RATES_MAX_ELEMENTS
    return _outputs(cfg, _forward(cfg, Wt, Wit, bias, x0, h0, u, extra, leak_vec,
                                  store_h=small))


def _recurrence_fwd(cfg, Wt, Wit, bias, x0, h0, u, extra, leak_vec=None):
    # Under differentiation the rates are stored as they are made: the reverse
    # pass reads them, and f(xs) after the loop would be a second pass.
    out = _outputs(cfg, _forward(cfg, Wt, Wit, bias, x0, h0, u, extra, leak_vec, store_h=True))
    hs = out[1] if cfg[0] is not None else out
    # A per-unit leak's gradient pairs g_t with x_{t-1}: keep xs too.
    xs = out[0] if leak_vec is not None else None
    return out, (Wt, Wit, bias, x0, h0, u, extra, hs, leak_vec, xs)


def _recurrence_bwd(cfg, res, cts):
    _, act, batch_major, steps, gemm, _ = cfg
    leaky = cfg[0] is not None
    Wt, Wit, bias, x0, h0, u, extra, hs, leak_vec, xs = res
    leak = _leak(cfg, leak_vec)
    ct_x, ct_h = cts if leaky else (None, cts)
    WtT = Wt.T

    def grad_step(g_next, t):
        # g_t from g_{t+1}: the recursion of the module docstring.
        h_t = _get(hs, t, batch_major)
        fp = derivative_from_output(act, h_t)
        g = fp * (_get(ct_h, t, batch_major) + _mm(g_next, WtT))
        if leaky:
            g = g + _get(ct_x, t, batch_major) + leak * g_next
        return g

    reverse = _reverse_gemm if gemm else _reverse_accumulate
    dWt, dWit, dbias, g0, du, dextra, dleak = reverse(grad_step, steps, batch_major, hs, h0,
                                                      u, Wit, bias, extra, x0, xs)
    dx0 = leak * g0 if leaky else None
    return dWt, dWit, dbias, dx0, _mm(g0, WtT), du, dextra, dleak


def _reverse_gemm(grad_step, steps, batch_major, hs, h0, u, Wit, bias, extra, x0, xs):
    """Run the recursion storing every g_t, then one GEMM per weight gradient
    (and, with `xs`, the per-unit leak's gradient as one reduction)."""
    # G holds g_t shifted one step back (G[t-1] = g_t for t >= 1, G[T-1] = 0),
    # so it lines up with hs for dWt = sum_t h_{t-1}^T g_t; g_0 (which pairs
    # with h0) comes out of the loop as its carry.
    def body(carry, t):
        g_next, G = carry
        g = grad_step(g_next, t)
        return (g, _put(G, g, t - 1, batch_major)), None

    (g1, G), _ = jax.lax.scan(body, (jnp.zeros_like(h0), jnp.zeros_like(hs)),
                              jnp.arange(steps - 1, 0, -1))
    g0 = grad_step(g1, 0)

    dims = (((0, 1), (0, 1)), ((), ()))
    dWt = jax.lax.dot_general(hs, G, dims, precision=_PRECISION) + _mm(h0.T, g0)
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
        dWit = jax.lax.dot_general(u_next, G, dims, precision=_PRECISION) + _mm(u[0].T, g0)
        WitT = Wit.T
        du = time_major(_mm(g0, WitT), _mm(G, WitT))
    dextra = None if extra is None else time_major(g0, G)
    # G[t] (= g_{t+1}) pairs with xs[t] (= x_t), its last row being zero; g_0 with x0.
    dleak = None if xs is None else jnp.sum(G * xs, axis=(0, 1)) + jnp.sum(g0 * x0, axis=0)
    return dWt, dWit, dbias, g0, du, dextra, dleak


def _reverse_accumulate(grad_step, steps, batch_major, hs, h0, u, Wit, bias, extra, x0, xs):
    """Run the recursion adding each step's rank-B share to the weight gradients
    (and, with `xs`, to the per-unit leak's)."""
    def accumulate(acc, g, h_prev, u_t, x_prev):
        dWt, dWit, dbias, dleak = acc
        dWt = dWt + _mm(h_prev.T, g)
        if u is not None:
            dWit = dWit + _mm(u_t.T, g)
        if bias is not None:
            dbias = dbias + jnp.sum(g, axis=0)
        if xs is not None:
            dleak = dleak + jnp.sum(g * x_prev, axis=0)
        return dWt, dWit, dbias, dleak

    WitT = None if u is None else Wit.T

    def body(carry, t):
        g_next, acc = carry
        g = grad_step(g_next, t)
        u_t = None if u is None else u[t]
        x_prev = None if xs is None else _get(xs, t - 1, batch_major)
        acc = accumulate(acc, g, _get(hs, t - 1, batch_major), u_t, x_prev)
        du_t = None if u is None else _mm(g, WitT)
        return (g, acc), (du_t, g if extra is not None else None)

    H = h0.shape[-1]
    acc = (jnp.zeros((H, H), h0.dtype), None if u is None else jnp.zeros_like(Wit),
           None if bias is None else jnp.zeros_like(bias),
           None if xs is None else jnp.zeros((H,), h0.dtype))
    (g1, acc), (du_rest, g_rest) = jax.lax.scan(body, (jnp.zeros_like(h0), acc),
                                                jnp.arange(steps - 1, 0, -1))
    g0 = grad_step(g1, 0)
    dWt, dWit, dbias, dleak = accumulate(acc, g0, h0, None if u is None else u[0], x0)

    # The loop ran from t = T-1 down to 1: its per-step outputs come reversed.
    def time_major(first, rest):
        return jnp.concatenate([first[None], rest[::-1]], axis=0)

    du = None if u is None else time_major(_mm(g0, WitT), du_rest)
    dextra = None if extra is None else time_major(g0, g_rest)
    return dWt, dWit, dbias, g0, du, dextra, dleak


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)

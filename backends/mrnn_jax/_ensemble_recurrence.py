"""The dense recurrence of ``E`` networks at once, with a hand-written reverse pass.

The update of :mod:`._recurrence` with a leading member axis on every
operand: each step is one batched matmul ``[E, B, H] x [E, H, H]`` (member
``e`` multiplies its own weights only), so ``E`` networks run in one loop of
``T`` steps instead of ``E`` loops, and the reverse pass forms the weight
gradients of every member in one batched GEMM. (``jax.vmap`` of the
single-network training step measured no faster: 1.02-1.04x this one's time,
16 W3-size members, one CPU.) On a CPU an ensemble is not faster than its members run one after another
(their ``[E, B, T, H]`` arrays leave the cache the sequential loop reuses;
benchmarks/RESULTS.md); its worth is one compiled program and sharding.

    pre_t = h_{t-1} Wt_e + b_e + u_t Wit_e + e_t
    x_t   = a_e x_{t-1} + pre_t          (a_e = 1 - alpha_e, per unit; Elman: no x)
    h_t   = f(x_t)

``a_e`` is always an ``[E, H]`` array here (scalar, per-unit and learned time
constants alike); its gradient is formed only when ``learn_leak`` says so.
The reverse pass is that of :mod:`._recurrence` (``g_t = ct_x_t + f'(x_t)
(ct_h_t + g_{t+1} Wt^T) + a g_{t+1}``), batched over members.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero

from mrnn_core.activations import derivative_from_output

from ._activations import get_activation
from ._functional import _PRECISION


class Config(NamedTuple):
    """Static settings of one ensemble recurrence (hashable)."""

    leaky: bool
    activation: str
    batch_first: bool  # outputs [E, B, T, H] if True, else [E, T, B, H]
    steps: int
    reverse_gemm: bool  # weight gradients as one GEMM after the loop (small outputs)
    fma: bool  # input term as I multiply-adds (a few inputs)
    learn_leak: bool  # form the leak's gradient (a learned tau)


def _mm(a, b):
    return jnp.matmul(a, b, precision=_PRECISION)


def _mT(a):
    return jnp.swapaxes(a, -1, -2)


def _time_axis(cfg: Config) -> int:
    return 2 if cfg.batch_first else 1


def _put(buf, v, t, cfg):
    return jax.lax.dynamic_update_index_in_dim(buf, v, t, axis=_time_axis(cfg))


def _input_term(u_t, Wit, fma: bool):
    """``u_t Wit_e`` for every member: ``u_t`` ``[B, I]`` (shared) or ``[E, B, I]``,
    ``Wit`` ``[E, I, H]``; with `fma` as I multiply-adds (the single path's order)."""
    if not fma:
        return _mm(u_t, Wit)
    out = u_t[..., :1] * Wit[:, None, 0]
    for i in range(1, Wit.shape[1]):
        out = out + u_t[..., i:i + 1] * Wit[:, None, i]
    return out


def _forward(cfg: Config, Wt, Wit, bias, leak, x0, h0, u, extra):
    f = get_activation(cfg.activation)
    E, B, H = h0.shape
    shape = (E, B, cfg.steps, H) if cfg.batch_first else (E, cfg.steps, B, H)
    bufs = tuple(jnp.zeros(shape, h0.dtype) for _ in range(2 if cfg.leaky else 1))
    bias_b = None if bias is None else bias[:, None, :]
    leak_b = None if leak is None else leak[:, None, :]

    def body(carry, inputs):
        x, h, bufs = carry
        t, u_t, e_t = inputs
        pre = _mm(h, Wt)
        if bias_b is not None:
            pre = pre + bias_b
        if u_t is not None:
            pre = pre + _input_term(u_t, Wit, cfg.fma)
        if e_t is not None:
            pre = pre + e_t
        x = leak_b * x + pre if cfg.leaky else pre
        h = f(x)
        vals = (x, h) if cfg.leaky else (h,)
        return (x, h, tuple(_put(b, v, t, cfg) for b, v in zip(bufs, vals))), None

    x_init = x0 if cfg.leaky else h0
    (_, _, bufs), _ = jax.lax.scan(body, (x_init, h0, bufs),
                                   (jnp.arange(cfg.steps), u, extra), length=cfg.steps)
    return bufs if cfg.leaky else bufs[0]


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def ensemble_recurrence(cfg: Config, Wt, Wit, bias, leak, x0, h0, u, extra):
    """Run ``E`` networks for ``cfg.steps`` steps.

    **Arguments:**

    - `cfg`: the static :class:`Config`.
    - `Wt`: ``[E, H, H]``, each member's transposed effective recurrent weights
      (times alpha).
    - `Wit`: ``[E, I, H]`` (times alpha) and `u`: time-major ``[T, B, I]``
      (shared by every member) or ``[T, E, B, I]``; or both None.
    - `bias`: ``[E, H]`` (times alpha) or None; `extra`: ``[T, E, B, H]`` or None.
    - `leak`: ``[E, H]``, ``1 - alpha`` per member and unit (None for Elman).
    - `x0`: ``[E, B, H]`` (None for Elman); `h0`: ``[E, B, H]``.

    **Returns:** leaky ``(xs, hs)``, Elman ``hs``, each ``[E, B, T, H]`` if
    ``cfg.batch_first`` else ``[E, T, B, H]``.
    """
    return _forward(cfg, Wt, Wit, bias, leak, x0, h0, u, extra)


def _value(p):
    return p.value if isinstance(p, CustomVJPPrimal) else p


_MARK = ()  # an empty pytree: "this input is differentiated" (None: it is not)


def _fwd(cfg, *primals):
    def perturbed(p):
        return any(isinstance(a, CustomVJPPrimal) and a.perturbed for a in jax.tree.leaves(
            p, is_leaf=lambda a: isinstance(a, CustomVJPPrimal)))

    # Inputs nobody differentiates (the trials, the noise) get no cotangent:
    # forming du and dextra costs two passes over [T, E, B, H].
    wants = tuple(_MARK if perturbed(primals[k]) else None for k in (6, 7))
    Wt, Wit, bias, leak, x0, h0, u, extra = jax.tree.map(
        _value, primals, is_leaf=lambda p: isinstance(p, CustomVJPPrimal))
    out = _forward(cfg, Wt, Wit, bias, leak, x0, h0, u, extra)
    xs, hs = out if cfg.leaky else (None, out)
    return out, (Wt, Wit, bias, leak, x0, h0, u, extra, xs if cfg.learn_leak else None, hs,
                 wants)


def _member_major(a, cfg):
    """An output-layout array for the reverse loop (None for a symbolic zero).

    Small outputs (the GEMM reverse pass) become member-major ``[E, T, B, H]``:
    step ``t`` is then ``E`` contiguous blocks, which the loop reads several
    times faster than ``E B`` short strided rows (W3 size). Large ones stay as
    they are: their rows are long, and a transposed copy would add to the
    memory the ensemble needs beyond its members'."""
    if a is None or isinstance(a, SymbolicZero):
        return None
    return jnp.swapaxes(a, 1, 2) if cfg.batch_first and cfg.reverse_gemm else a


def _loop_axis(cfg):
    """The time axis of the arrays :func:`_member_major` gives."""
    return 1 if cfg.reverse_gemm else _time_axis(cfg)


def _at(buf, t, cfg):
    if buf is None:
        return None
    return jax.lax.dynamic_index_in_dim(buf, t, axis=_loop_axis(cfg), keepdims=False)


def _bwd(cfg, res, cts):
    Wt, Wit, bias, leak, x0, h0, u, extra, xs, hs, (want_du, want_dextra) = res
    ct_x, ct_h = cts if cfg.leaky else (None, cts)
    hs, xs, ct_x, ct_h = (_member_major(a, cfg) for a in (hs, xs, ct_x, ct_h))
    WtT = _mT(Wt)
    leak_b = None if leak is None else leak[:, None, :]

    def grad_step(g_next, t):
        fp = derivative_from_output(cfg.activation, _at(hs, t, cfg))
        back = _mm(g_next, WtT)
        g = fp * (back if ct_h is None else _at(ct_h, t, cfg) + back)
        if cfg.leaky:
            g = (g + leak_b * g_next if ct_x is None
                 else g + _at(ct_x, t, cfg) + leak_b * g_next)
        return g

    reverse = _reverse_gemm if cfg.reverse_gemm else _reverse_accumulate
    dWt, dWit, dbias, g0, du, dextra, dleak = reverse(
        cfg, grad_step, hs, h0, u, Wit, bias, extra if want_dextra is not None else None, x0,
        xs, want_du is not None)
    if leak is not None and dleak is None:
        dleak = jnp.zeros_like(leak)
    dx0 = leak_b * g0 if cfg.leaky else None
    return dWt, dWit, dbias, dleak, dx0, _mm(g0, WtT), du, dextra


def _shared_input_grad(du, u):
    """A shared input's cotangent is the sum of the members'."""
    return du.sum(axis=1) if u.ndim == 3 else du


def _reverse_gemm(cfg, grad_step, hs, h0, u, Wit, bias, extra, x0, xs, want_du):
    """Store every g_t, then one batched GEMM per weight gradient (``hs``, ``xs``
    member-major ``[E, T, B, H]``; `extra` None when it gets no cotangent)."""
    # G[:, t-1] = g_t (t >= 1), lined up with hs for dWt = sum_t h_{t-1}^T g_t;
    # g_0 (pairing with h0) is the loop's last carry.
    def body(carry, t):
        g_next, G = carry
        g = grad_step(g_next, t)
        return (g, jax.lax.dynamic_update_index_in_dim(G, g, t - 1, axis=1)), None

    (g1, G), _ = jax.lax.scan(body, (jnp.zeros_like(h0), jnp.zeros_like(hs)),
                              jnp.arange(cfg.steps - 1, 0, -1))
    g0 = grad_step(g1, 0)
    # [E, T B, F]^T [E, T B, H] with one contracting axis: XLA's CPU dot ran the
    # two-axis contraction at half this speed (W3 size, E = 16).
    E, T, B, H = hs.shape
    dims = (((1,), (1,)), ((0,), (0,)))
    G_flat = G.reshape(E, T * B, H)
    dWt = (jax.lax.dot_general(hs.reshape(E, T * B, H), G_flat, dims, precision=_PRECISION)
           + _mm(_mT(h0), g0))
    dbias = None if bias is None else jnp.sum(G, axis=(1, 2)) + jnp.sum(g0, axis=1)
    dleak = None if xs is None else jnp.sum(G * xs, axis=(1, 2)) + jnp.sum(g0 * x0, axis=1)
    dWit = du = dextra = None
    if u is not None:
        # u_{t+1} pairs with G[:, t]; its last row meets G's zero row.
        u_e = u if u.ndim == 4 else jnp.broadcast_to(u[:, None], (T, E) + u.shape[1:])
        u_next = jnp.concatenate([u_e[1:], jnp.zeros_like(u_e[:1])], axis=0)
        u_next = jnp.moveaxis(u_next, 1, 0).reshape(E, T * B, -1)
        dWit = (jax.lax.dot_general(u_next, G_flat, dims, precision=_PRECISION)
                + _mm(_mT(u_e[0]), g0))
    if want_du or extra is not None:
        g_all = jnp.moveaxis(jnp.concatenate([g0[:, None], G[:, :-1]], axis=1), 1, 0)
        du = _shared_input_grad(_mm(g_all, _mT(Wit)), u) if want_du else None
        dextra = None if extra is None else g_all
    return dWt, dWit, dbias, g0, du, dextra, dleak


def _reverse_accumulate(cfg, grad_step, hs, h0, u, Wit, bias, extra, x0, xs, want_du):
    """Add each step's rank-B share to the weight gradients (large outputs: no
    ``[E, T, B, H]`` cotangent buffer)."""
    WitT = None if u is None else _mT(Wit)

    def accumulate(acc, g, h_prev, u_t, x_prev):
        dWt, dWit, dbias, dleak = acc
        dWt = dWt + _mm(_mT(h_prev), g)
        if u is not None:
            u_e = u_t if u_t.ndim == 3 else jnp.broadcast_to(u_t, (g.shape[0],) + u_t.shape)
            dWit = dWit + _mm(_mT(u_e), g)
        if bias is not None:
            dbias = dbias + jnp.sum(g, axis=1)
        if xs is not None:
            dleak = dleak + jnp.sum(g * x_prev, axis=1)
        return dWt, dWit, dbias, dleak

    def body(carry, t):
        g_next, acc = carry
        g = grad_step(g_next, t)
        u_t = None if u is None else u[t]
        acc = accumulate(acc, g, _at(hs, t - 1, cfg), u_t, _at(xs, t - 1, cfg))
        du_t = _mm(g, WitT) if want_du else None
        return (g, acc), (du_t, g if extra is not None else None)

    E, _, H = h0.shape
    acc = (jnp.zeros((E, H, H), h0.dtype), None if u is None else jnp.zeros_like(Wit),
           None if bias is None else jnp.zeros_like(bias),
           None if xs is None else jnp.zeros((E, H), h0.dtype))
    (g1, acc), (du_rest, g_rest) = jax.lax.scan(body, (jnp.zeros_like(h0), acc),
                                                jnp.arange(cfg.steps - 1, 0, -1))
    g0 = grad_step(g1, 0)
    dWt, dWit, dbias, dleak = accumulate(acc, g0, h0, None if u is None else u[0], x0)

    def time_major(first, rest):  # the loop ran t = T-1 .. 1
        return jnp.concatenate([first[None], rest[::-1]], axis=0)

    du = _shared_input_grad(time_major(_mm(g0, WitT), du_rest), u) if want_du else None
    dextra = None if extra is None else time_major(g0, g_rest)
    return dWt, dWit, dbias, g0, du, dextra, dleak


ensemble_recurrence.defvjp(_fwd, _bwd, symbolic_zeros=True)

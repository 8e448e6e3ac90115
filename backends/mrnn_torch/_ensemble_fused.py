"""The recurrence of ``E`` networks as one autograd node: :mod:`._fused` with a member axis.

Buffers are time-major with the member axis next, ``[T, E, B, H]``, so each
step's states ``[E, B, H]`` are one contiguous block and the step is one
batched matmul (``baddbmm``) for all members: ``E`` small networks cost
about one kernel launch per step instead of ``E``. (On strided per-step
views torch's CPU ``baddbmm`` falls back to one ``addmm`` per member, 3-4x
slower at W3 sizes.) The equations, the adjoint recursion and the weight
gradient are those of :class:`mrnn_torch._fused.Recurrence`, member by
member::

    x_t = carry * x_{t-1} + alpha W h_{t-1} + ad_t,     h_t = f(x_t)

with ``carry = 1 - alpha`` (a float) or an ``[E, 1, H]`` tensor (then
``W`` arrives with its rows already scaled by each member's alpha and
``alpha = 1``). Only the dense plan: each member multiplies its whole
``[H, H]`` matrix. :class:`EnsembleDrive` forms the drive ``ad`` in that
layout from inputs in the caller's layout.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ._compat import unsafe_view as _unsafe_view
from ._compat import script as _compile
from ._fused import _ACTIVATION_CODES, _CARRY_CHUNK, _dense_forward

# Elements (8 MB of float32) per chunk where a [T, E, B, .] buffer is turned member-major for a
# batched matmul: small reused buffers (no second [T, E, B, H] buffer, and no
# fresh pages per chunk, which cost about 0.5 ms per MB on small VMs).
_CHUNK_ELEMENTS = 2**21


def _chunks(T: int, row_elements: int, first: int = 0):
    """``(start, n)`` pieces of ``first .. T - 1``, each of at most ``_CHUNK_ELEMENTS``."""
    step = max(1, _CHUNK_ELEMENTS // max(row_elements, 1))
    return [(start, min(step, T - start)) for start in range(first, T, step)]


def _ensemble_backward_loop(W, G, Hs, gX: Optional[torch.Tensor], tmp, alpha: float, act: int,
                            leaky: bool, carry_scalar: float, carry: Optional[torch.Tensor],
                            time_axis: int):
    """The adjoint steps (TorchScript below), in place in ``G``, as in
    :meth:`mrnn_torch._fused.Recurrence.backward`.

    On entry ``G[t]`` holds ``dL/dh_{t+1}`` from the outputs (zeros when
    none); on return ``G[t] = dL/dx_{t+1}``. Each step adds ``alpha g_{t+1} W``
    into ``G[t]`` (no copy of the output gradient per step), multiplies by
    ``f'`` from the stored rates, then adds the leak and ``dL/dx`` from the
    outputs. ``W`` ``[E, H, H]`` contiguous; ``tmp`` an ``[E, B, H]`` scratch.
    """
    T = Hs.shape[time_axis]
    hs = Hs.unbind(time_axis)
    gs = G.unbind(time_axis)
    for k in range(T):
        t = T - 1 - k
        g = gs[t]
        if t < T - 1:
            g.baddbmm_(gs[t + 1], W, alpha=alpha)
        h = hs[t]
        if act == 0:
            g.mul_(h.gt(0))  # relu'(0) = 0, as autograd's
        elif act == 1:
            # g (1 - h^2) = g - (g h) h
            torch.mul(g, h, out=tmp)
            g.addcmul_(tmp, h, value=-1)
        elif act == 2:
            # g h (1 - h) = (g h) - (g h) h
            torch.mul(g, h, out=tmp)
            torch.addcmul(tmp, tmp, h, value=-1, out=g)
        elif act == 3:
            # f' = 1 - exp(-f(x)) = -expm1(-h)
            g.mul_(torch.expm1(-h)).neg_()
        if gX is not None:
            g.add_(gX.select(time_axis, t))
        if leaky and t < T - 1:
            if carry is not None:
                g.addcmul_(gs[t + 1], carry)
            elif carry_scalar != 0.0:
                g.add_(gs[t + 1], alpha=carry_scalar)


_ensemble_backward = _compile(_ensemble_backward_loop)


def _member_major(a, start: int, n: int, buffer):
    """Steps ``start .. start + n - 1`` of ``a`` ``[T, E, B, F]`` as ``[E, n B, F]``, copied
    into the front of ``buffer`` (at least ``E n B F`` elements)."""
    E, B, F = a.shape[1:]
    out = buffer[:E * n * B * F].view(E, n, B, F)
    out.copy_(a.narrow(0, start, n).transpose(0, 1))
    return out.view(E, n * B, F)


def _weight_gradient(W, G, h0, Hs, alpha: float, time_axis: int):
    """``alpha * sum_t g_t^T h_{t-1}`` per member, ``[E, H, H]``.

    Member-major buffers (``time_axis`` 1): per member the rows of ``G`` and
    ``Hs`` flattened over (time, batch) pair row ``k`` with row ``k - B``,
    so one batched matmul of shifted views does every step but the first.
    Time-major: a few steps per batched matmul, copied member-major.
    """
    E, H = W.shape[0], W.shape[-1]
    T, B = G.shape[time_axis], G.shape[2]
    dW = torch.bmm(G.select(time_axis, 0).transpose(1, 2), h0)
    if time_axis == 1:
        Gf, Hf = G.view(E, T * B, H), Hs.view(E, T * B, H)
        dW.baddbmm_(Gf[:, B:].transpose(1, 2), Hf[:, :-B])
        return dW.mul_(alpha)
    pieces = _chunks(T, E * B * H, first=1)
    if pieces:
        size = pieces[0][1] * E * B * H
        g_buf, h_buf = G.new_empty(size), G.new_empty(size)
        for start, n in pieces:
            dW.baddbmm_(_member_major(G, start, n, g_buf).transpose(1, 2),
                        _member_major(Hs, start - 1, n, h_buf))
    return dW.mul_(alpha)


class EnsembleRecurrence(torch.autograd.Function):
    """``(xs, hs) = EnsembleRecurrence.apply(W, ad, x0, h0, alpha, activation, carry, time_axis)``.

    ``W`` ``[E, H, H]``; ``ad`` the drive times alpha, ``[T, E, B, H]``
    (``time_axis`` 0) or ``[E, T, B, H]`` (1), a fresh contiguous tensor
    that is overwritten and returned as ``xs`` (Elman: ``hs``); ``x0``
    ``[E, B, H]`` (``None`` for Elman), ``h0`` ``[E, B, H]``; ``carry``
    ``None`` or ``[E, 1, H]`` (see the module docstring). A ``carry`` that
    requires grad gets ``dL/dcarry = sum_{t, b} g_t x_{t-1}``. Outputs are
    laid out like ``ad``.
    """

    @staticmethod
    def forward(ctx, W, ad, x0, h0, alpha, activation, carry, time_axis):
        leaky = x0 is not None
        ctx.mark_dirty(ad)
        Xs = ad if leaky else None
        Hs = torch.empty_like(ad) if leaky else ad
        _dense_forward(W.transpose(1, 2).contiguous(), Xs if leaky else Hs,
                       x0 if leaky else h0, Hs, h0, float(alpha),
                       _ACTIVATION_CODES.get(activation, 4), time_axis, leaky, carry, True)
        learned = leaky and isinstance(carry, torch.Tensor) and ctx.needs_input_grad[6]
        ctx.save_for_backward(W, h0, Hs, *((x0, Xs) if learned else ()))
        ctx.meta = (leaky, alpha, activation, carry, time_axis)
        ctx.set_materialize_grads(False)
        return Xs, Hs

    @staticmethod
    @once_differentiable
    def backward(ctx, gX, gH):
        W, h0, Hs, *states = ctx.saved_tensors
        leaky, a, activation, carry, time_axis = ctx.meta
        T = Hs.shape[time_axis]
        G = torch.empty_like(Hs)  # G[t] = dL/dx_{t+1}, filled in place from dL/dh_{t+1}
        if gH is None:
            G.zero_()
        else:
            G.copy_(gH)
        g1 = G.select(time_axis, 0)
        tmp = torch.empty_like(h0, memory_format=torch.contiguous_format)
        W = W.contiguous()
        if carry is None:
            carry = 1 - a if leaky else 0.0
        vector = isinstance(carry, torch.Tensor)
        _ensemble_backward(W, G, Hs, gX, tmp, float(a), _ACTIVATION_CODES.get(activation, 4),
                           leaky, 0.0 if vector else float(carry), carry if vector else None,
                           time_axis)
        dW = _weight_gradient(W, G, h0, Hs, a, time_axis) if ctx.needs_input_grad[0] else None
        dd = G if ctx.needs_input_grad[1] else None
        dx0 = g1 * carry if leaky and ctx.needs_input_grad[2] else None
        dh0 = torch.bmm(g1, W).mul_(a) if ctx.needs_input_grad[3] else None
        dcarry = None
        if states:
            x0, Xs = states
            dcarry = (g1 * x0).sum(dim=1, keepdim=True)
            rest = (0, 2) if time_axis == 0 else (1, 2)
            for start in range(1, T, _CARRY_CHUNK):
                n = min(_CARRY_CHUNK, T - start)
                dcarry += (G.narrow(time_axis, start, n)
                           * Xs.narrow(time_axis, start - 1, n)).sum(dim=rest).unsqueeze(1)
        return dW, dd, dx0, dh0, None, None, dcarry, None


class EnsembleDrive(torch.autograd.Function):
    """``ad = EnsembleDrive.apply(u, W, b, scale, batch_first, time_axis)``: ``scale (u W^T + b)``
    per member, ``[T, E, B, H]`` (``time_axis`` 0) or ``[E, T, B, H]`` (1).

    ``u`` ``[E', B, T, I]`` (``batch_first``) or ``[E', T, B, I]``, ``E'`` 1
    (shared by every member) or ``E``; ``W`` ``[E, H, I]``; ``b`` ``[E, H]``;
    ``scale`` a float. The output is a fresh contiguous tensor (noise and
    stimulus may be added into it in place). Member-major: one batched
    matmul each way. Time-major: a few steps at a time through a small
    buffer, so no second ``[T, E, B, H]`` is ever held.
    """

    @staticmethod
    def forward(ctx, u, W, b, scale, batch_first, time_axis):
        u_tm = u.transpose(1, 2) if batch_first else u  # [E', T, B, I]
        E, H, I = W.shape
        T, B = u_tm.shape[1], u_tm.shape[2]
        Wt, bias = W.transpose(1, 2), b[:, None, :]
        ctx.save_for_backward(u, W)
        ctx.meta = (scale, batch_first, time_axis)
        if time_axis == 1:
            flat = u_tm.reshape(u_tm.shape[0], T * B, I).expand(E, T * B, I)
            out = torch.baddbmm(bias, flat, Wt, beta=scale, alpha=scale)
            return _unsafe_view(out, (E, T, B, H))  # not a view: callers add noise in place
        out = W.new_empty(T, E, B, H)
        pieces = _chunks(T, E * B * H)
        block = W.new_empty(E, pieces[0][1] * B, H) if pieces else None
        for start, n in pieces:
            uc = u_tm.narrow(1, start, n).reshape(u_tm.shape[0], n * B, I).expand(E, n * B, I)
            piece = block[:, :n * B]
            torch.baddbmm(bias, uc, Wt, beta=scale, alpha=scale, out=piece)
            out.narrow(0, start, n).copy_(piece.view(E, n, B, H).transpose(0, 1))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, G):
        u, W = ctx.saved_tensors
        scale, batch_first, time_axis = ctx.meta
        u_tm = u.transpose(1, 2) if batch_first else u
        E, H, I = W.shape
        T, B = G.shape[time_axis], G.shape[2]
        want_u, want_W, want_b = ctx.needs_input_grad[:3]
        dW = W.new_zeros(E, H, I) if want_W else None
        du = torch.zeros_like(u_tm) if want_u else None
        if time_axis == 1:
            pieces = [(0, T)]
            member_major = lambda a, start, n, buffer: a.reshape(E, T * B, H)  # noqa: E731
            g_buf = None
        else:
            pieces = _chunks(T, E * B * H)
            member_major = _member_major
            g_buf = G.new_empty(pieces[0][1] * E * B * H) if pieces else None
        for start, n in pieces:
            Gc = member_major(G, start, n, g_buf)  # [E, n B, H]
            if want_W:
                uc = u_tm.narrow(1, start, n).reshape(u_tm.shape[0], n * B, I)
                dW.baddbmm_(Gc.transpose(1, 2), uc.expand(E, n * B, I))
            if want_u:
                dc = torch.bmm(Gc, W).view(E, n, B, I)
                du.narrow(1, start, n).add_(dc.sum(dim=0, keepdim=True) if du.shape[0] == 1 else dc)
        db = G.sum(dim=(0, 2) if time_axis == 0 else (1, 2)).mul_(scale) if want_b else None
        if dW is not None:
            dW.mul_(scale)
        if du is not None:
            du.mul_(scale)
            du = du.transpose(1, 2) if batch_first else du
        return du, dW, db, None, None, None

"""The recurrence of ``E`` networks as one autograd node: :mod:`._fused` with a member axis.

Every tensor gains a leading member axis: ``W`` ``[E, H, H]``, states
``[E, B, H]`` per step, buffers ``[E, B, T, H]`` (time axis 2) or
``[E, T, B, H]`` (time axis 1). Each step is one batched matmul
(``baddbmm``) for all members, so ``E`` small networks cost about one
kernel launch per step instead of ``E``; the equations, the adjoint
recursion and the one-matmul weight gradient are those of
:class:`mrnn_torch._fused.Recurrence`, member by member::

    x_t = carry * x_{t-1} + alpha W h_{t-1} + ad_t,     h_t = f(x_t)

with ``carry = 1 - alpha`` (a float) or an ``[E, 1, H]`` tensor (then
``W`` arrives with its rows already scaled by each member's alpha and
``alpha = 1``). Only the dense plan: each member multiplies its whole
``[H, H]`` matrix.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ._fused import _ACTIVATION_CODES, _CARRY_CHUNK, _compile, _times_derivative


def _ensemble_forward_loop(Wt, Xs, x0, Hs, h0, alpha: float, act: int, time_axis: int,
                           leaky: bool, carry: Optional[torch.Tensor]):
    """The steps, in place (TorchScript below). ``Wt`` ``[E, H, H]`` holds ``W^T`` per member.

    On entry ``Xs`` holds ``alpha * d`` (leaky) and ``Hs`` holds ``d``
    (Elman), as in :func:`mrnn_torch._fused._dense_forward_loop`.
    """
    zero = h0.new_zeros([])
    h = h0
    x = x0
    hs = Hs.unbind(time_axis)
    xs = Xs.unbind(time_axis) if leaky else hs
    for t in range(len(hs)):
        ht = hs[t]
        if leaky:
            xt = xs[t]
            if carry is None:
                xt.add_(x, alpha=1 - alpha)
            else:
                xt.addcmul_(x, carry)
            xt.baddbmm_(h, Wt, alpha=alpha)
            x = xt
        else:
            ht.baddbmm_(h, Wt)
            xt = ht
        if act == 0:
            torch.clamp_min(xt, 0, out=ht)
        elif act == 1:
            torch.tanh(xt, out=ht)
        elif act == 2:
            torch.sigmoid(xt, out=ht)
        elif act == 3:
            torch.logaddexp(xt, zero, out=ht)
        elif leaky:
            ht.copy_(xt)
        h = ht


_ensemble_forward = _compile(_ensemble_forward_loop)


def _weight_gradient(W, G, h0, Hs, time_axis: int, alpha: float):
    """``alpha * sum_t g_t^T h_{t-1}`` per member, ``[E, H, H]``, as one batched matmul.

    Per member the rows of ``G`` and ``Hs`` flattened over (time, batch) pair
    row ``k`` with row ``k - s`` (``s = B`` time-major, ``1`` batch-major);
    the rows whose partner is ``h_0`` are fixed as in
    :func:`mrnn_torch._fused._weight_gradient`.
    """
    E, H = W.shape[0], W.shape[-1]
    Gf, Hf = G.reshape(E, -1, H), Hs.reshape(E, -1, H)
    s = G.shape[2] if time_axis == 1 else 1
    G1 = G.select(time_axis, 0)  # [E, B, H]
    dW = torch.bmm(Gf[:, s:].transpose(1, 2), Hf[:, :-s])
    dW.baddbmm_(G1.transpose(1, 2), h0)
    if time_axis == 2:
        dW.baddbmm_(G1[:, 1:].transpose(1, 2), Hs[:, :-1, -1], alpha=-1)
    return dW.mul_(alpha)


class EnsembleRecurrence(torch.autograd.Function):
    """``(xs, hs) = EnsembleRecurrence.apply(W, ad, x0, h0, alpha, activation, time_axis, carry)``.

    ``W`` ``[E, H, H]``; ``ad`` the drive times alpha, ``[E, B, T, H]``
    (``time_axis=2``) or ``[E, T, B, H]`` (``time_axis=1``), a fresh
    contiguous tensor that is overwritten and returned as ``xs`` (Elman:
    ``hs``); ``x0`` ``[E, B, H]`` (``None`` for Elman), ``h0`` ``[E, B, H]``;
    ``carry`` ``None`` or ``[E, 1, H]`` (see the module docstring). A
    ``carry`` that requires grad gets ``dL/dcarry = sum_{t, b} g_t x_{t-1}``.
    """

    @staticmethod
    def forward(ctx, W, ad, x0, h0, alpha, activation, time_axis, carry=None):
        leaky = x0 is not None
        ctx.mark_dirty(ad)
        Xs = ad if leaky else None
        Hs = torch.empty_like(ad) if leaky else ad
        _ensemble_forward(W.transpose(1, 2), Xs if leaky else Hs, x0 if leaky else h0, Hs, h0,
                          float(alpha), _ACTIVATION_CODES.get(activation, 4), time_axis, leaky,
                          carry)
        learned = leaky and isinstance(carry, torch.Tensor) and ctx.needs_input_grad[7]
        ctx.save_for_backward(W, h0, Hs, *((x0, Xs) if learned else ()))
        ctx.meta = (leaky, alpha, activation, time_axis, carry)
        ctx.set_materialize_grads(False)
        return Xs, Hs

    @staticmethod
    @once_differentiable
    def backward(ctx, gX, gH):
        W, h0, Hs, *states = ctx.saved_tensors
        leaky, a, activation, time_axis, carry = ctx.meta
        T = Hs.shape[time_axis]
        G = torch.empty_like(Hs)  # G[t] = dL/dx_{t+1}
        hs, gs = Hs.unbind(time_axis), G.unbind(time_axis)
        gXs = None if gX is None else gX.unbind(time_axis)
        gHs = None if gH is None else gH.unbind(time_axis)
        zero = Hs.new_zeros(())
        gh = torch.empty_like(h0)
        if carry is None:
            carry = 1 - a if leaky else 0.0
        for t in range(T - 1, -1, -1):
            base = gHs[t] if gHs is not None else zero.expand_as(gh)
            if t == T - 1:
                gh.copy_(base)
            else:
                torch.baddbmm(base, gs[t + 1], W, alpha=a, out=gh)
            g = gs[t]
            _times_derivative(activation, gh, hs[t], g)
            if gXs is not None:
                g.add_(gXs[t])
            if t == T - 1 or not leaky:
                continue
            if isinstance(carry, torch.Tensor):
                g.addcmul_(gs[t + 1], carry)
            elif carry:
                g.add_(gs[t + 1], alpha=carry)
        dW = _weight_gradient(W, G, h0, Hs, time_axis, a) if ctx.needs_input_grad[0] else None
        dd = G if ctx.needs_input_grad[1] else None
        dx0 = gs[0] * carry if leaky and ctx.needs_input_grad[2] else None
        dh0 = torch.bmm(gs[0], W).mul_(a) if ctx.needs_input_grad[3] else None
        dcarry = None
        if states:
            x0, Xs = states
            dcarry = (gs[0] * x0).sum(dim=1, keepdim=True)
            for start in range(1, T, _CARRY_CHUNK):
                n = min(_CARRY_CHUNK, T - start)
                dcarry += (G.narrow(time_axis, start, n)
                           * Xs.narrow(time_axis, start - 1, n)).sum(dim=(1, 2)).unsqueeze(1)
        return dW, dd, dx0, dh0, None, None, None, dcarry

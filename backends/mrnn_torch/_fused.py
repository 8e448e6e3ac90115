"""The recurrence as one autograd node, with a hand-written backward through time.

Given the drive ``d`` of every step (from the input side, ordinary autograd),
the recurrence is, with ``a = alpha`` (Elman: ``a = 1``)::

    x_t = (1 - a) x_{t-1} + a (W h_{t-1} + d_t),    h_t = f(x_t),    t = 1..T

Plain autograd records ~4 nodes per step and, for ``W``, one small gradient
matmul per step. Here the forward writes every state into one preallocated
buffer (autograd never sees it), and the backward runs the adjoint
recursion, writing every ``g_t = dL/dx_t`` into a second buffer::

    gh_t = dL/dh_t (from the output) + a g_{t+1} W
    g_t  = dL/dx_t (from the output) + gh_t * f'(x_t) + (1 - a) g_{t+1}

then ``dL/dW = a sum_t g_t^T h_{t-1}`` as ONE matmul over all steps,
``dL/dd_t = a g_t``, ``dL/dx_0 = (1 - a) g_1``, ``dL/dh_0 = a g_1 W``.
Per step: one matmul and a few elementwise ops each way. ``f'`` comes from
the stored rates ``h`` for every activation (relu ``h > 0``, tanh
``1 - h^2``, sigmoid ``h (1 - h)``, softplus ``1 - exp(-h)``, linear 1): the
formulas of :func:`mrnn_core.activations.derivative_from_output`, written
here as in-place kernels into the preallocated buffers (a test checks that
they agree with the core's).

Buffers keep the caller's layout (time axis 0 or 1), so outputs are
contiguous and never copied or transposed.

The matmuls follow a :class:`~._blocks.BlockPlan`: the dense plan is one
block; a block-sparse plan multiplies only the blocks the mask keeps.

The backward is ``once_differentiable`` (it writes into buffers): double
backward and ``torch.func`` transforms need ``recurrence="autograd"``, which
:func:`mrnn_torch.simulate` also picks by itself under ``torch.func``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ._blocks import BlockPlan
from ._compat import script as _compile


def _activate(name: str, src, out):
    if name == "relu":
        torch.clamp_min(src, 0, out=out)
    elif name == "tanh":
        torch.tanh(src, out=out)
    elif name == "sigmoid":
        torch.sigmoid(src, out=out)
    elif name == "softplus":
        # Exactly log(1 + exp(x)) (see _functional._softplus).
        torch.logaddexp(src, src.new_zeros(()), out=out)
    else:
        out.copy_(src)


def _times_derivative(name: str, gh, h, out):
    """``out = gh * f'(x)`` for one step, ``f'`` from the rates ``h = f(x)``.

    Per step rather than ``f'`` of every step at once: that would be one more
    ``[T, B, H]`` tensor (two for tanh's ``1 - h * h``) of fresh memory per
    backward, about 10 % of a W2 forward + backward; the per-step form costs a
    kernel or two on data already in cache. ``out`` may be a strided view.
    """
    if name == "relu":
        torch.mul(gh, h.gt(0), out=out)  # relu'(0) = 0, as autograd's
    elif name == "tanh":
        # gh (1 - h^2) = gh - (gh h) h
        torch.mul(gh, h, out=out)
        torch.addcmul(gh, out, h, value=-1, out=out)
    elif name == "sigmoid":
        # gh h (1 - h) = (gh h) - (gh h) h
        torch.mul(gh, h, out=out)
        torch.addcmul(out, out, h, value=-1, out=out)
    elif name == "softplus":
        # f' = sigmoid(x) = 1 - exp(-f(x)) = -expm1(-h)
        torch.mul(gh, torch.expm1(-h), out=out)
        out.neg_()
    else:  # linear: f' = 1
        out.copy_(gh)


# Steps per product when the backward sums a per-unit carry's gradient.
_CARRY_CHUNK = 32

_ACTIVATION_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2, "softplus": 3}  # else linear


def _dense_forward_loop(Wt, Xs, x0, Hs, h0, alpha: float, act: int, time_axis: int,
                        leaky: bool, carry: Optional[torch.Tensor], members: bool = False):
    """The dense forward steps, in place; compiled below by :func:`~._compat.script`.

    On entry ``Xs`` holds ``alpha * d`` (leaky) and ``Hs`` holds ``d``
    (Elman, whose ``Xs`` is unused), so each step is the drive slice updated
    in place: no per-step ``out=`` kernel with a separate input, which costs
    about as much again as the in-place one at small sizes. A per-unit
    ``carry`` ``[H]`` (``1 - alpha``) replaces the scalar ``1 - alpha``.
    ``members``: the ensemble's loop (:mod:`._ensemble_fused`), where every
    operand has a leading member axis (``Wt`` ``[E, H, H]``, states
    ``[E, B, H]``, ``carry`` ``[E, 1, H]``) and each step is one batched matmul.
    """
    zero = h0.new_zeros([])
    h = h0
    x = x0
    # Every step's views made in one call (a select per step costs as much again).
    hs = Hs.unbind(time_axis)
    xs = Xs.unbind(time_axis) if leaky else hs
    for t in range(len(hs)):
        ht = hs[t]
        if leaky:
            xt = xs[t]
            # x_t = (a d_t + (1 - a) x_{t-1}) + a W h_{t-1}
            if carry is None:
                xt.add_(x, alpha=1 - alpha)
            else:
                xt.addcmul_(x, carry)
            if members:
                xt.baddbmm_(h, Wt, alpha=alpha)
            else:
                xt.addmm_(h, Wt, alpha=alpha)
            x = xt
        else:
            if members:
                ht.baddbmm_(h, Wt)
            else:
                ht.addmm_(h, Wt)
            xt = ht
        if act == 0:
            torch.clamp_min(xt, 0, out=ht)
        elif act == 1:
            torch.tanh(xt, out=ht)
        elif act == 2:
            torch.sigmoid(xt, out=ht)
        elif act == 3:
            # Exactly log(1 + exp(x)) (see _functional._softplus).
            torch.logaddexp(xt, zero, out=ht)
        elif leaky:
            ht.copy_(xt)
        h = ht


_dense_forward = _compile(_dense_forward_loop)


def _recurrent_matmul(plan: BlockPlan, blocks_T, h, base, out, alpha: float):
    """``out = base + alpha * (W h)`` for ``[B, H]`` rows, only over the plan's blocks.

    ``blocks_T`` are the transposed blocks ``W[rows, cols].T``; ``base`` and
    ``out`` may be strided views.
    """
    if plan.dense:
        torch.addmm(base, h, blocks_T[0], alpha=alpha, out=out)
        return
    for rows in plan.uncovered_rows:
        out[:, rows].copy_(base[:, rows])
    k = 0
    for rows, cols in plan.groups:
        o = out[:, rows]
        torch.addmm(base[:, rows], h[:, cols[0]], blocks_T[k], alpha=alpha, out=o)
        k += 1
        for c in cols[1:]:
            o.addmm_(h[:, c], blocks_T[k], alpha=alpha)
            k += 1


def _adjoint_matmul(plan: BlockPlan, blocks, g, base, out, alpha: float):
    """``out = base + alpha * g W`` (``g`` ``[B, H]`` adjoints of ``x``), over the plan's blocks."""
    if plan.dense:
        torch.addmm(base, g, blocks[0], alpha=alpha, out=out)
        return
    out.copy_(base)
    k = 0
    for rows, cols in plan.groups:
        gr = g[:, rows]
        for c in cols:
            out[:, c].addmm_(gr, blocks[k], alpha=alpha)
            k += 1


def _weight_gradient(plan: BlockPlan, W, G, h0, Hs, time_axis: int, alpha: float):
    """``alpha * sum_t g_t^T h_{t-1}`` with ``G``, ``Hs`` ``[T, B, H]`` or ``[B, T, H]``.

    Flattened to rows, the state before row ``k`` of ``G`` is row ``k - s``
    of ``Hs`` (``s = B`` time-major, ``s = 1`` batch-major), so one matmul
    of shifted views does every step; the rows whose partner is ``h_0``
    (the first ``B`` time-major; each trial's first step batch-major, which
    the shift pairs with the previous trial's last state) are fixed with
    ``[H, B] x [B, H]`` products.
    """
    H = Hs.shape[-1]
    Gf, Hf = G.reshape(-1, H), Hs.reshape(-1, H)
    s = G.shape[1] if time_axis == 0 else 1
    G1 = G.select(time_axis, 0)
    dW = W.new_zeros(W.shape) if not plan.dense else None
    for rows, cols in plan.groups:
        for c in cols:
            block = torch.mm(Gf[s:, rows].T, Hf[:-s, c])
            block.addmm_(G1[:, rows].T, h0[:, c])
            if time_axis == 1:
                block.addmm_(G1[1:, rows].T, Hs[:-1, -1, c], alpha=-1)
            if plan.dense:
                return block.mul_(alpha)
            dW[rows, c] = block
    return dW.mul_(alpha)


class Recurrence(torch.autograd.Function):
    """``(xs, hs) = Recurrence.apply(W, ad, x0, h0, alpha, activation, time_axis, plan, carry)``.

    ``W`` ``[H, H]`` effective recurrent matrix; ``ad`` the drive times
    ``alpha``, with the time axis at ``time_axis`` (0: ``[T, B, H]``, 1:
    ``[B, T, H]``); ``x0`` ``[B, H]`` (``None`` for Elman, ``alpha = 1``);
    ``h0`` ``[B, H]``. Returns ``xs`` (``None`` for Elman) and ``hs``, laid
    out like ``ad``.

    Per-unit alpha: pass ``W`` with its rows already scaled by alpha,
    ``ad`` likewise, ``alpha = 1`` and ``carry = 1 - alpha`` ``[H]``; then
    ``x_t = carry * x_{t-1} + W h_{t-1} + ad_t``. ``carry=None`` means the
    scalar ``1 - alpha``. A ``carry`` that requires grad (a learned time
    constant) gets ``dL/dcarry = sum_t sum_b g_t x_{t-1}``; the scaling of
    ``W`` and ``ad`` by alpha happens outside, where autograd sees it.

    ``ad`` must be a fresh contiguous tensor that is not a view: it is
    overwritten and returned as ``xs`` (Elman: ``hs``), which saves a
    ``[T, B, H]`` buffer and a copy per call.
    """

    @staticmethod
    def forward(ctx, W, ad, x0, h0, alpha, activation, time_axis, plan, carry=None):
        leaky = x0 is not None
        T = ad.shape[time_axis]
        ctx.mark_dirty(ad)
        Xs = ad if leaky else None
        Hs = torch.empty_like(ad) if leaky else ad
        blocks_T = plan.blocks_T(W)
        if plan.dense:
            _dense_forward(blocks_T[0], Xs if leaky else Hs, x0 if leaky else h0, Hs, h0,
                           float(alpha), _ACTIVATION_CODES.get(activation, 4), time_axis, leaky,
                           carry)
            return Recurrence._keep(ctx, W, h0, Xs, Hs, leaky, alpha, activation, time_axis, plan,
                                    carry, x0)
        hs = (h0, *Hs.unbind(time_axis))  # hs[t] = h_t
        if leaky:
            # x_t = (1 - a) x_{t-1} + a (W h_{t-1} + d_t); xs[t] holds a d_t until written.
            xs = Xs.unbind(time_axis)
            x = x0
            z = ad.new_empty(h0.shape)  # contiguous: addmm into a strided out= is slower
            for t in range(T):
                _recurrent_matmul(plan, blocks_T, hs[t], xs[t], z, alpha)
                if carry is None:
                    torch.add(z, x, alpha=1 - alpha, out=xs[t])
                else:
                    torch.addcmul(z, x, carry, out=xs[t])
                x = xs[t]
                _activate(activation, x, hs[t + 1])
        else:
            z = ad.new_empty(h0.shape)
            for t in range(T):
                # hs[t + 1] holds d_t until written.
                _recurrent_matmul(plan, blocks_T, hs[t], hs[t + 1], z, 1.0)
                _activate(activation, z, hs[t + 1])
        return Recurrence._keep(ctx, W, h0, Xs, Hs, leaky, alpha, activation, time_axis, plan,
                                carry, x0)

    @staticmethod
    def _keep(ctx, W, h0, Xs, Hs, leaky, alpha, activation, time_axis, plan, carry, x0=None):
        """Store what the backward needs; return the forward's outputs."""
        # The states x_t are needed only for a learned carry's gradient.
        learned = leaky and isinstance(carry, torch.Tensor) and ctx.needs_input_grad[8]
        ctx.save_for_backward(W, h0, Hs, *((x0, Xs) if learned else ()))
        ctx.meta = (leaky, alpha, activation, time_axis, plan, carry)
        ctx.set_materialize_grads(False)
        return Xs, Hs

    @staticmethod
    @once_differentiable
    def backward(ctx, gX, gH):
        W, h0, Hs, *states = ctx.saved_tensors
        leaky, a, activation, time_axis, plan, carry = ctx.meta
        T = Hs.shape[time_axis]
        G = torch.empty_like(Hs)  # G[t] = g_{t+1} = dL/dx_{t+1}
        hs = Hs.unbind(time_axis)
        gs = G.unbind(time_axis)
        gXs = None if gX is None else gX.unbind(time_axis)
        gHs = None if gH is None else gH.unbind(time_axis)
        blocks = plan.blocks(W)
        zero = Hs.new_zeros(())
        gh = torch.empty_like(h0)
        if carry is None:
            carry = 1 - a if leaky else 0.0
        for t in range(T - 1, -1, -1):
            # gh = dL/dh_t from the output + a g_{t+1} W  (g_{T+1} = 0)
            base = gHs[t] if gHs is not None else zero.expand_as(gh)
            if t == T - 1:
                gh.copy_(base)
            else:
                _adjoint_matmul(plan, blocks, gs[t + 1], base, gh, a)
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
        dW = None
        if ctx.needs_input_grad[0]:
            dW = _weight_gradient(plan, W, G, h0, Hs, time_axis, a)
        dd = G if ctx.needs_input_grad[1] else None  # the input is a * d
        dx0 = gs[0] * carry if leaky and ctx.needs_input_grad[2] else None
        dh0 = None
        if ctx.needs_input_grad[3]:
            dh0 = torch.empty_like(gh)
            _adjoint_matmul(plan, blocks, gs[0], zero.expand_as(gh), dh0, a)
        dcarry = None
        if states:  # x_t = carry x_{t-1} + ...: dL/dcarry = sum over t and b of g_t x_{t-1}
            x0, Xs = states
            dcarry = (gs[0] * x0).sum(dim=0)
            # A few steps at a time: the products stay small (no [T, B, H]
            # temporary of fresh memory) and the allocator reuses them.
            for start in range(1, T, _CARRY_CHUNK):
                n = min(_CARRY_CHUNK, T - start)
                dcarry += (G.narrow(time_axis, start, n)
                           * Xs.narrow(time_axis, start - 1, n)).sum(dim=(0, 1))
        return dW, dd, dx0, dh0, None, None, None, None, dcarry

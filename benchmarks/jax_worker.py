"""JAX worker: ours (the jitted model call) against a bare ``lax.scan`` floor.

Run by ``run.py``; by hand: ``python benchmarks/jax_worker.py --case W3:leaky:1000
--impls ours,floor --out /tmp/w3.json``. float32 (x64 stays off). Every
function is compiled ahead of time (``jit(...).lower(...).compile()``), so
compile time is reported on its own and never counted in a timed call.
Forward + backward is ``jax.grad`` of ``mean(hs)`` with respect to the
trainable parameters (``W_rec``, ``W_inp``, and ``base_firing`` where a
region's bias learns). ``ours_dense`` is the same call forced onto the dense
path (``recurrence="dense"``), to show what skipping absent blocks gains.
"""

from __future__ import annotations

import inspect
import time

import jax
import jax.numpy as jnp
import numpy as np

import mrnn_core
from worker import Impl, Skip, build_each, run_worker
from workloads import Case

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def _compiled(fn, *args):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _impl(label, forward, loss, args, grad_args, rates=None) -> Impl:
    """Compile ``forward(*args)`` and ``grad(loss)(*grad_args)`` (no ``loss``:
    forward only); time the compiled calls."""
    fwd_c, fwd_s = _compiled(forward, *args)
    compile_s = {"fwd": fwd_s}
    fwdbwd = None
    if loss is not None:
        grad_c, compile_s["fwdbwd"] = _compiled(jax.grad(loss), *grad_args)
        fwdbwd = lambda: jax.block_until_ready(grad_c(*grad_args))  # noqa: E731

    def hs():
        return np.asarray(rates(fwd_c(*args)))

    return Impl(label,
                fwd=lambda: jax.block_until_ready(fwd_c(*args)),
                fwdbwd=fwdbwd,
                hs=hs if rates else None,
                compile_s=compile_s)


def _floor(label, layout, act, W_eff, state, steps) -> Impl:
    """T back-to-back matmuls plus the activation in a bare ``lax.scan``; nothing else."""
    f = ACTIVATIONS[act]
    M = W_eff.T if layout == "bh" else W_eff
    h0 = state if layout == "bh" else state.T

    def run(M, h0):
        def body(h, _):
            h = f(h @ M) if layout == "bh" else f(M @ h)
            return h, h
        return jax.lax.scan(body, h0, None, length=steps)[1]

    return _impl(label, run, lambda M, h0: jnp.mean(run(M, h0)), (M, h0), (M, h0))


def _floor_two_outputs(label, act, W_eff, state, steps) -> Impl:
    """The floor writing what a leaky call returns: ``x_t = h_{t-1} W^T`` and
    ``h_t = f(x_t)``, each into its own batch-first ``[B, T, H]`` array; still no
    input, bias or leak. Information only (no target, forward only): it shows
    what returning the second array costs on this machine, a cost every leaky
    call pays."""
    f = ACTIVATIONS[act]
    M = W_eff.T
    B, H = state.shape

    def run(M, h0):
        def body(carry, t):
            h, xs, hs = carry
            x = h @ M
            h = f(x)
            put = lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v, t, axis=1)  # noqa: E731
            return (h, put(xs, x), put(hs, h)), None

        bufs = (jnp.zeros((B, steps, H), M.dtype), jnp.zeros((B, steps, H), M.dtype))
        return jax.lax.scan(body, (h0, *bufs), jnp.arange(steps))[0][1:]

    # Forward only: differentiating writes into carried buffers is slow in JAX
    # (the reason ours has a hand-written reverse pass) and would say nothing.
    return _impl(label, run, None, (M, state), (M, state))


def _ours(ckpt, inp, state, recurrence=None) -> Impl:
    """The model call, as a user trains it: arrays traced, structure static.

    Forward + backward differentiates with respect to the trainable arrays
    only (``eqx.partition``), the usual equinox training set-up.
    ``recurrence`` forces one path of the model (``"dense"``) where it has
    that override.
    """
    import equinox as eqx

    import mrnn_jax

    leaky = ckpt.dynamics.kind == "leaky"
    cls = mrnn_jax.mRNN if leaky else mrnn_jax.ElmanmRNN
    model = cls.from_checkpoint(ckpt)
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, model)
    kwargs = {}
    if recurrence is not None:
        if "recurrence" not in inspect.signature(type(model).__call__).parameters:
            raise Skip(f"{cls.__name__} has no recurrence= override")
        kwargs = {"recurrence": recurrence}
    learnable = ckpt.connectivity.bias_trainable.any()
    names = ("W_rec", "W_inp") + (("base_firing",) if learnable else ())
    spec = jax.tree_util.tree_map(lambda _: False, model)
    spec = eqx.tree_at(lambda m: tuple(getattr(m, n) for n in names), spec,
                       replace=(True,) * len(names))
    trainable, rest = eqx.partition(model, spec)
    arrays, static = eqx.partition(rest, eqx.is_array)

    def rates(out):
        return out[1] if leaky else out

    def forward(trainable, arrays, inp, state):
        return eqx.combine(trainable, arrays, static)(inp, state, **kwargs)

    def loss(trainable, arrays, inp, state):
        return jnp.mean(rates(forward(trainable, arrays, inp, state)))

    label = f"ours ({cls.__name__}, jit)" + (f" {recurrence} path" if recurrence else "")
    args = (trainable, arrays, inp, state)
    return _impl(label, forward, loss, args, args, rates)


def build(case: Case, names: list[str], device: str):
    """The JAX contenders for one case (see :func:`worker.run_worker`); JAX's default device."""
    ckpt = case.checkpoint()
    inp_np, state_np = case.arrays()
    inp, state = jnp.asarray(inp_np), jnp.asarray(state_np)
    d = ckpt.dynamics
    W_eff = jnp.asarray(mrnn_core.effective_weight(
        ckpt.params["W_rec"], ckpt.params["W_rec_mask"], ckpt.params["W_rec_sign_matrix"],
        d.rec_constrained).astype(np.float32))

    def make(name: str) -> Impl:
        if name == "ours":
            return _ours(ckpt, inp, state)
        if name == "ours_dense":
            return _ours(ckpt, inp, state, recurrence="dense")
        if name in ("floor", "floor_hb"):
            layout = "bh" if name == "floor" else "hb"
            label = "floor (lax.scan)" if layout == "bh" else "floor [H,B] (info)"
            return _floor(label, layout, d.activation, W_eff, state, case.steps)
        if name == "floor_xh":
            return _floor_two_outputs("floor, xs + hs [B,T,H] (info)", d.activation, W_eff,
                                      state, case.steps)
        raise ValueError(f"no JAX implementation {name!r}")

    impls, errors, skipped = build_each(names, make)
    info = {"jax": jax.__version__, "jax_backend": jax.default_backend(),
            "jax_devices": [str(x) for x in jax.devices()]}
    return impls, errors, skipped, info


if __name__ == "__main__":
    run_worker("jax", build)

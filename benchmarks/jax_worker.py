"""JAX worker: ours (jitted ``mrnn_jax.simulate``) against a bare ``lax.scan`` floor.

Run by ``run.py``; by hand: ``python benchmarks/jax_worker.py --case W3:leaky:1000
--impls ours,floor --out /tmp/w3.json``. float32 (x64 stays off). Every
function is compiled ahead of time (``jit(...).lower(...).compile()``), so
compile time is reported on its own and never counted in a timed call.
Forward + backward is ``jax.grad`` of ``mean(hs)`` with respect to the
trainable parameters (``W_rec``, ``W_inp``, and ``base_firing`` where a
region's bias learns).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import mrnn_core
from worker import Impl, run_worker
from workloads import Case

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def _compiled(fn, *args):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _impl(label, forward, loss, args, grad_args, rates=None) -> Impl:
    """Compile ``forward(*args)`` and ``grad(loss)(*grad_args)``; time the compiled calls."""
    fwd_c, fwd_s = _compiled(forward, *args)
    grad_c, grad_s = _compiled(jax.grad(loss), *grad_args)

    def hs():
        return np.asarray(rates(fwd_c(*args)))

    return Impl(label,
                fwd=lambda: jax.block_until_ready(fwd_c(*args)),
                fwdbwd=lambda: jax.block_until_ready(grad_c(*grad_args)),
                hs=hs if rates else None,
                compile_s={"fwd": fwd_s, "fwdbwd": grad_s})


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


def _ours(case: Case, ckpt, inp, state) -> Impl:
    import mrnn_jax

    dynamics = ckpt.dynamics
    leaky = dynamics.kind == "leaky"
    params = {k: jnp.asarray(np.asarray(v, dtype=np.float32)) for k, v in ckpt.params.items()}
    learnable = ckpt.connectivity.bias_trainable.any()
    trainable_keys = ("W_rec", "W_inp") + (("base_firing",) if learnable else ())
    trainable = {k: params[k] for k in trainable_keys}
    fixed = {k: v for k, v in params.items() if k not in trainable_keys}

    def forward(params, inp, state):
        if leaky:
            return mrnn_jax.simulate(params, dynamics, inp, state)
        return mrnn_jax.simulate(params, dynamics, inp, h0=state)

    def rates(out):
        return out[1] if leaky else out

    def loss(trainable, fixed, inp, state):
        return jnp.mean(rates(forward({**fixed, **trainable}, inp, state)))

    return _impl("ours (jit simulate)", forward, loss, (params, inp, state),
                 (trainable, fixed, inp, state), rates)


def build(case: Case, names: list[str], device: str):
    """The JAX contenders for one case (see :func:`worker.run_worker`); JAX's default device."""
    ckpt = case.checkpoint()
    inp_np, state_np = case.arrays()
    inp, state = jnp.asarray(inp_np), jnp.asarray(state_np)
    d = ckpt.dynamics
    W_eff = jnp.asarray(mrnn_core.effective_weight(
        ckpt.params["W_rec"], ckpt.params["W_rec_mask"], ckpt.params["W_rec_sign_matrix"],
        d.rec_constrained).astype(np.float32))
    impls, errors = {}, {}
    for name in names:
        try:
            if name == "ours":
                impls[name] = _ours(case, ckpt, inp, state)
            elif name == "floor":
                impls[name] = _floor("floor (lax.scan)", "bh", d.activation, W_eff, state, case.steps)
            elif name == "floor_hb":
                impls[name] = _floor("floor [H,B] (info)", "hb", d.activation, W_eff, state, case.steps)
            else:
                raise ValueError(f"no JAX implementation {name!r}")
        except Exception as err:  # noqa: BLE001 - shown in the table
            errors[name] = f"{type(err).__name__}: {err}"
    info = {"jax": jax.__version__, "jax_backend": jax.default_backend(),
            "jax_devices": [str(x) for x in jax.devices()]}
    return impls, errors, info


if __name__ == "__main__":
    run_worker("jax", build)

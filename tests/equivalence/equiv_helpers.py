"""Shared pieces of the cross-backend suite: drawing cases, building models.

Tolerances (float64): every backend evaluates the same arithmetic in a
different order (batched matmuls, scan vs Python loop, precomputed input
drive), so results differ by rounding only. Over at most a few hundred steps
of a contracting or mildly expanding network that stays far below 1e-10
relative; we compare with ``rtol = atol = 1e-10``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
import mrnn_torch
from mrnn_core.testing import arrays, dynamics_settings, network_specs

RTOL = ATOL = 1e-10

TORCH_CLASSES = {"leaky": mrnn_torch.mRNN, "elman": mrnn_torch.ElmanmRNN}
JAX_CLASSES = {"leaky": mrnn_jax.mRNN, "elman": mrnn_jax.ElmanmRNN}


def specs(min_inputs: int = 0):
    """Small networks mostly, sometimes one with regions of up to 120 units, and
    networks with the nn4n-style features (per-region and learnable tau,
    learnable initial states, frozen projections, density and explicit masks,
    E/I areas wired by routes)."""
    return st.one_of(
        network_specs(max_units=6, min_inputs=min_inputs),
        network_specs(min_regions=1, max_regions=3, max_units=120, max_inputs=1,
                      max_input_units=8, min_inputs=min_inputs),
        network_specs(max_units=8, min_inputs=min_inputs, beyond_mrnntorch=True),
    )


@st.composite
def cases(draw, kind=None, spectral_radius=True, min_inputs=0, max_steps=12):
    """A checkpoint with random raw weights and biases, and matching call arrays.

    Raw weights are drawn from a symmetric range, so Dale's law has negative
    raw entries to fold; the scale keeps trajectories bounded.
    """
    spec = draw(specs(min_inputs=min_inputs))
    dynamics = draw(dynamics_settings(kind=kind, spectral_radius=spectral_radius,
                                      balance_ei=True))
    seed = draw(st.integers(0, 2**31 - 1))
    try:
        ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    except mrnn_core.MRNNConfigError:
        assume(False)  # spectral radius asked of a loop-free network
    H, I = spec.hidden_size, spec.input_size
    gain = 1.5 / np.sqrt(max(H, 1))
    params = dict(ckpt.params)
    if draw(st.booleans()):
        params["W_rec"] = draw(arrays((H, H), -gain, gain))
        params["W_inp"] = draw(arrays((H, I), -1.0, 1.0))
    params["base_firing"] = draw(arrays((H,), -0.5, 0.5))
    if draw(st.booleans()):  # per-unit time constants, as a learnable tau may leave them
        params["tau"] = draw(arrays((H,), 20.0, 150.0))
    ckpt = mrnn_core.Checkpoint(spec, dynamics, params)
    B = draw(st.integers(1, 3))
    T = draw(st.integers(1, max_steps))
    layout = (lambda F: (B, T, F)) if dynamics.batch_first else (lambda F: (T, B, F))
    call = {
        "inp": draw(arrays(layout(I))),
        "x0": draw(arrays((B, H), -0.5, 0.5)),
        "h0": draw(arrays((B, H), 0.0, 0.5)) if draw(st.booleans()) else None,
        "stim_input": draw(arrays(layout(H), -0.3, 0.3)) if draw(st.booleans()) else None,
        "W_rec": draw(arrays((H, H), -gain, gain)) if draw(st.booleans()) else None,
    }
    if draw(st.booleans()):
        call["eps_x"] = draw(st.integers(0, 2**31).map(
            lambda s: np.random.default_rng(s).standard_normal(layout(H))))
        call["eps_u"] = draw(st.integers(0, 2**31).map(
            lambda s: np.random.default_rng(s).standard_normal(layout(I))))
    if dynamics.kind == "elman":
        del call["x0"]
        if call["h0"] is None:
            call["h0"] = draw(arrays((B, H), 0.0, 0.5))
    return ckpt, call


def reference(ckpt, call):
    return mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call)


def torch_model(ckpt, dtype=torch.float64):
    return TORCH_CLASSES[ckpt.dynamics.kind].from_checkpoint(ckpt, device="cpu", dtype=dtype)


def jax_model(ckpt, dtype=jnp.float64):
    model = JAX_CLASSES[ckpt.dynamics.kind].from_checkpoint(ckpt)
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating) else a,
        model)


def to_torch(call, dtype=torch.float64):
    return {k: (None if v is None else torch.tensor(v, dtype=dtype)) for k, v in call.items()}


def to_jax(call, dtype=jnp.float64):
    return {k: (None if v is None else jnp.asarray(v, dtype=dtype)) for k, v in call.items()}


def run_torch(model, call):
    """Forward through the torch module: positional state, keyword extras."""
    c = dict(to_torch(call, dtype=next(model.parameters()).dtype))
    inp = c.pop("inp")
    if "x0" in c:
        return model(inp, c.pop("x0"), c.pop("h0"), **c)
    return model(inp, c.pop("h0"), **c)


def run_jax(model, call, dtype=jnp.float64):
    c = dict(to_jax(call, dtype))
    inp = c.pop("inp")
    if "x0" in c:
        return model(inp, c.pop("x0"), c.pop("h0"), **c)
    return model(inp, c.pop("h0"), **c)


def as_numpy(out):
    if isinstance(out, tuple):
        return tuple(as_numpy(o) for o in out)
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    return np.asarray(out)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    actual, expected = as_numpy(actual), as_numpy(expected)
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), what
        for name, a, e in zip(("xs", "hs"), actual, expected):
            assert_close(a, e, rtol, atol, f"{what} {name}")
        return
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)

"""Shared pieces of the torch suite: devices, drawn cases, small networks.

Tolerance: float64 comparisons with the numpy reference use rtol = atol =
1e-10. Both evaluate the same arithmetic in a different order (the input drive
of all steps in one matmul, ``addmm``, ``lerp``), so they differ by rounding
only, about 1e-16 relative per operation; over at most a dozen steps of a
network with bounded weights that stays many orders below 1e-10, while any
wrong term (a missing alpha, a transposed block) is far above it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core.testing import arrays, dynamics_settings, network_specs

RTOL = ATOL = 1e-10

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device on this machine (torch.cuda.is_available() is False)")),
]

CLASSES = {"leaky": mrnn_torch.mRNN, "elman": mrnn_torch.ElmanmRNN}


@st.composite
def cases(draw, kind=None, max_steps=10, min_inputs=0, max_units=6):
    """A checkpoint with raw weights and biases drawn at random, and one call's arrays.

    Raw weights come from a symmetric range so Dale's law has negative entries
    to fold; the gain keeps trajectories bounded.
    """
    spec = draw(network_specs(max_units=max_units, min_inputs=min_inputs))
    dynamics = draw(dynamics_settings(kind=kind))
    seed = draw(st.integers(0, 2**31 - 1))
    H, I = spec.hidden_size, spec.input_size
    gain = 1.5 / np.sqrt(H)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    params = dict(ckpt.params)
    params["W_rec"] = draw(arrays((H, H), -gain, gain))
    params["W_inp"] = draw(arrays((H, I), -1.0, 1.0))
    params["base_firing"] = draw(arrays((H,), -0.5, 0.5))
    params["init"] = draw(arrays((H,), -0.5, 0.5))
    ckpt = mrnn_core.Checkpoint(spec, dynamics, params)

    B, T = draw(st.integers(1, 3)), draw(st.integers(1, max_steps))
    layout = (lambda F: (B, T, F)) if dynamics.batch_first else (lambda F: (T, B, F))
    maybe = lambda strategy: draw(st.one_of(st.none(), strategy))  # noqa: E731
    normal = lambda shape: st.integers(0, 2**31).map(  # noqa: E731
        lambda s: np.random.default_rng(s).standard_normal(shape))
    call = {
        "inp": draw(arrays(layout(I))),
        "stim_input": maybe(arrays(layout(H), -0.3, 0.3)),
        "W_rec": maybe(arrays((H, H), -gain, gain)),
        "eps_x": maybe(normal(layout(H))),
        "eps_u": maybe(normal(layout(I))),
    }
    if dynamics.kind == "leaky":
        call["x0"] = draw(arrays((B, H), -0.5, 0.5))
        call["h0"] = maybe(arrays((B, H), 0.0, 0.5))
    else:
        call["h0"] = draw(arrays((B, H), 0.0, 0.5))
    return ckpt, call


def model_from(ckpt, device="cpu", dtype=torch.float64):
    return CLASSES[ckpt.dynamics.kind].from_checkpoint(ckpt, device=device, dtype=dtype)


def torch_params(ckpt, dtype=torch.float64):
    """The checkpoint's arrays as tensors (copies: checkpoint arrays are read-only)."""
    return {k: torch.tensor(np.array(v), dtype=dtype) for k, v in ckpt.params.items()}


def tensors(call, device="cpu", dtype=torch.float64):
    return {k: None if v is None else torch.as_tensor(v, device=device, dtype=dtype)
            for k, v in call.items()}


def run(model, call):
    """``model(...)`` with the state positional and everything else by keyword."""
    c = dict(call)
    inp = c.pop("inp")
    if "x0" in c:
        return model(inp, c.pop("x0"), c.pop("h0"), **c)
    return model(inp, c.pop("h0"), **c)


def numpy(out):
    if isinstance(out, tuple):
        return tuple(numpy(o) for o in out)
    return out.detach().cpu().numpy()


def assert_close(actual, expected, rtol=RTOL, atol=ATOL):
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol, atol)
        return
    actual = numpy(actual) if isinstance(actual, torch.Tensor) else np.asarray(actual)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def two_region_spec(learnable_bias=False, inputs=True) -> mrnn_core.NetworkSpec:
    """An E/I pair ``e`` (3 units) and ``i`` (2 units) under parent ``ctx``,
    a thalamus ``thal`` (2 units), and an input region ``cue`` (2 channels)."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", 3, parent_region="ctx", base_firing=0.1,
                                   learnable_bias=learnable_bias)
            .with_recurrent_region("thal", 2, init=0.2)
            .with_recurrent_region("i", 2, sign="neg", parent_region="ctx"))
    for src in ("e", "thal", "i"):
        for dst in ("e", "thal", "i"):
            spec = spec.with_recurrent_connection(src, dst)
    if inputs:
        spec = (spec.with_input_region("cue", 2)
                .with_input_connection("cue", "e").with_input_connection("cue", "thal"))
    return spec


def assume_loop(spec, dynamics, seed):
    """Skip drawn cases whose spectral-radius target has no recurrent loop to scale."""
    try:
        return mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    except mrnn_core.MRNNConfigError:
        assume(False)

"""Drawing JAX test cases: a checkpoint plus the arrays of one forward call.

Sizes stay small (regions of at most 6 units, at most 5 steps, batch 1-2) so
that the jit compile each new shape costs keeps the folder fast.

Tolerance (float64): the JAX scan and the numpy reference evaluate the same
sums in a different order (one matmul for the whole input drive, fused
kernels), so they differ by rounding only: a few ulps per step, far below
1e-10 over a handful of steps with O(1) states, while any wrong term in the
update moves the result by far more. Hence ``rtol = atol = 1e-10``.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import mrnn_core
from mrnn_core.testing import arrays, dynamics_settings, network_specs

RTOL = ATOL = 1e-10

SMALL_SPEC = (mrnn_core.NetworkSpec()
              .with_recurrent_region("exc", 5, parent_region="ctx", learnable_bias=True, init=0.2)
              .with_recurrent_region("inh", 3, sign="neg", parent_region="ctx", init=-0.1)
              .with_recurrent_region("thal", 4, base_firing=0.1)
              .with_input_region("cue", 2)
              .with_recurrent_connection("exc", "exc", sparsity=0.4)
              .with_recurrent_connection("exc", "inh")
              .with_recurrent_connection("inh", "exc")
              .with_recurrent_connection("exc", "thal")
              .with_recurrent_connection("thal", "exc", sparsity=0.5)
              .with_input_connection("cue", "exc")
              .with_input_connection("cue", "thal"))
"""A fixed 12-unit network: a parent of two cell types (one with a learnable
bias), a third region, sparse and dense blocks, one 2-channel input."""


@st.composite
def checkpoints(draw, kind=None, spectral_radius=False, min_inputs=0, max_units=6):
    """A checkpoint whose raw weights and biases are redrawn from symmetric ranges.

    Symmetric raw weights give Dale's law negative entries to fold, and random
    biases keep every pre-activation away from relu's kink at exactly 0.
    """
    spec = draw(network_specs(max_units=max_units, min_inputs=min_inputs))
    dynamics = draw(dynamics_settings(kind=kind, spectral_radius=spectral_radius))
    try:
        ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=draw(st.integers(0, 2**31)))
    except mrnn_core.MRNNConfigError:
        assume(False)  # a spectral radius asked of a loop-free network
    H, I = spec.hidden_size, spec.input_size
    gain = 1.5 / np.sqrt(H)
    params = dict(ckpt.params)
    params["W_rec"] = draw(arrays((H, H), -gain, gain))
    params["W_inp"] = draw(arrays((H, I), -1.0, 1.0))
    params["base_firing"] = draw(arrays((H,), -0.5, 0.5))
    return mrnn_core.Checkpoint(spec, dynamics, params)


def _normal(shape):
    return st.integers(0, 2**31).map(lambda s: np.random.default_rng(s).standard_normal(shape))


@st.composite
def calls(draw, ckpt, max_steps=5, max_batch=2, optional=True):
    """Keyword arguments of one ``simulate`` call for ``ckpt``, in its layout.

    Covers unbatched ``[T, .]`` calls, a stimulus, a ``W_rec`` override,
    explicit noise arrays, a given ``h0`` and ``inp=None`` without inputs.
    With ``optional=False`` every optional argument is present.
    """
    d = ckpt.dynamics
    H, I = ckpt.spec.hidden_size, ckpt.spec.input_size
    maybe = (lambda: draw(st.booleans())) if optional else (lambda: True)
    B, T = draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps))
    batched = draw(st.booleans()) if optional else True
    seq = (lambda F: ((B, T, F) if d.batch_first else (T, B, F))) if batched else (lambda F: (T, F))
    vec = (lambda: (B, H)) if batched else (lambda: (H,))
    call = {"inp": draw(arrays(seq(I))),
            "stim_input": draw(arrays(seq(H), -0.3, 0.3)) if maybe() else None,
            "W_rec": draw(arrays((H, H), -1.5 / np.sqrt(H), 1.5 / np.sqrt(H))) if maybe() else None}
    if maybe():
        call["eps_x"], call["eps_u"] = draw(_normal(seq(H))), draw(_normal(seq(I)))
    if I == 0 and call["stim_input"] is not None and draw(st.booleans()):
        call["inp"] = None
    if d.kind == "leaky":
        call["x0"] = draw(arrays(vec(), -0.5, 0.5))
        call["h0"] = draw(arrays(vec(), 0.0, 0.5)) if maybe() else None
    else:
        call["h0"] = draw(arrays(vec(), 0.0, 0.5))
    return call


@st.composite
def cases(draw, kind=None, max_steps=5, optional=True):
    """``(checkpoint, call)`` pairs; see :func:`checkpoints` and :func:`calls`."""
    ckpt = draw(checkpoints(kind=kind))
    return ckpt, draw(calls(ckpt, max_steps=max_steps, optional=optional))


def to_jax(mapping):
    return {k: (None if v is None else jnp.asarray(v)) for k, v in mapping.items()}


def reference(ckpt, call):
    return mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call)


def assert_close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    """Equal shapes and values within tolerance, output by output."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), what
        for name, a, e in zip(("xs", "hs"), actual, expected):
            assert_close(a, e, rtol, atol, f"{what} {name}")
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def run_model(model, call):
    """``model(...)`` with the call's state positional, as a user writes it."""
    c = to_jax(call)
    inp = c.pop("inp")
    if "x0" in c:
        return model(inp, c.pop("x0"), c.pop("h0"), **c)
    return model(inp, c.pop("h0"), **c)


@contextlib.contextmanager
def count_traces():
    """Collect one entry per jaxpr JAX traces (any function) inside the block."""
    traces = []

    def listener(name, duration, **kwargs):
        if name == "/jax/core/compile/jaxpr_trace_duration":
            traces.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield traces
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)

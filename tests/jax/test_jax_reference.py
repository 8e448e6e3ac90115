"""Forward and gradients of mrnn_jax against mrnn_core.reference, the numpy oracle.

Drawn cases cover both dynamics, all activations, Dale's law on or off,
batch_first both ways, unbatched calls, a stimulus, a W_rec override,
explicit noise arrays and networks without inputs (see jax_cases).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
from .jax_cases import assert_close, cases, reference, run_model, to_jax


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
def test_activations_match_the_reference_everywhere(name):
    """Including far out, where a thresholded softplus would differ by ~1e-9 at x = 20.

    Absolute tolerance 1e-15: the reference's sigmoid ``0.5 (1 + tanh(x / 2))``
    rounds tiny values far below 0 to within ~1e-16 of zero, JAX keeps them exact.
    """
    x = np.concatenate([np.linspace(-60, 60, 2401), [-20.0, 19.99, 20.0, 20.01, 35.0]])
    np.testing.assert_allclose(mrnn_jax.get_activation(name)(jnp.asarray(x)),
                               mrnn_core.reference.activation_function(name)(x),
                               rtol=1e-15, atol=1e-15)


def test_unknown_activation_lists_the_allowed_ones():
    with pytest.raises(mrnn_core.MRNNConfigError,
                       match=r"unknown activation 'tahn'; allowed activations: 'relu', 'tanh'.*"
                             r"did you mean 'tanh'"):
        mrnn_jax.get_activation("tahn")


@given(cases())
def test_simulate_and_model_call_match_the_reference(case):
    ckpt, call = case
    expected = reference(ckpt, call)
    got = mrnn_jax.simulate(to_jax(ckpt.params), ckpt.dynamics, **to_jax(call))
    assert_close(got, expected, what="simulate")
    model = mrnn_jax.mRNNBase.from_checkpoint(ckpt)
    assert_close(run_model(model, call), expected, what="model call")


@given(cases(optional=False))
def test_input_drive_and_step_rebuild_simulate(case):
    """The documented pieces compose: scanning ``step`` over ``input_drive`` is ``simulate``."""
    ckpt, call = case
    d = ckpt.dynamics
    call = to_jax(call)
    params = to_jax(ckpt.params)
    drive = jax.jit(mrnn_jax.input_drive, static_argnums=1)(
        params, d, call["inp"], stim_input=call["stim_input"], eps_x=call["eps_x"],
        eps_u=call["eps_u"])
    step = jax.jit(mrnn_jax.step, static_argnums=0)
    state = (call.get("x0", call["h0"]), call["h0"])
    hs = []
    for t in range(drive.shape[0]):
        state = step(d, call["W_rec"], state, drive[t])
        hs.append(state[1])
    hs = np.stack(hs, axis=1 if d.batch_first else 0)
    expected = reference(ckpt, {k: (None if v is None else np.asarray(v)) for k, v in call.items()})
    assert_close(hs, expected[1] if d.kind == "leaky" else expected, what="step loop")


def _loss_weights(seed, out_shape):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(out_shape), rng.standard_normal(out_shape)


@given(cases(), st.integers(0, 2**31))
def test_gradients_match_finite_differences_of_the_reference(case, seed):
    """jax.grad of ``L = sum(A * hs) (+ sum(C * xs))``, checked per argument
    along a random direction ``v`` against the central difference
    ``(L(p + eps v) - L(p - eps v)) / (2 eps)`` of the numpy reference.

    Tolerance: with eps = 1e-6 in float64 the difference quotient carries a
    rounding error of about 1e-16 * |terms| / eps = 1e-10 * |terms| and a
    truncation error of order eps^2; we allow 1e-6 * (1 + sum |terms|), far
    below what a wrong or missing gradient term gives.
    """
    ckpt, call = case
    leaky = ckpt.dynamics.kind == "leaky"
    state = "x0" if leaky else "h0"
    wrt = ["W_rec", "W_inp", "base_firing", state, "inp", "stim_input"]
    if call["W_rec"] is not None:
        wrt[0] = "W_rec_override"
    wrt = [n for n in wrt if n != "inp" or call["inp"] is not None]
    wrt = [n for n in wrt if n != "stim_input" or call["stim_input"] is not None]
    example = reference(ckpt, call)
    A, C = _loss_weights(seed, (example[1] if leaky else example).shape)

    def split(values):
        params = dict(ckpt.params)
        c = dict(call)
        for name, v in values.items():
            if name in params:
                params[name] = v
            else:
                c["W_rec" if name == "W_rec_override" else name] = v
        return params, c

    def loss_terms(out):
        return A * out[1] + C * out[0] if leaky else A * out

    def jax_loss(values):
        params, c = split(values)
        out = mrnn_jax.simulate(params, ckpt.dynamics, **c)
        return jnp.sum(loss_terms(out))

    def ref_loss(values):
        params, c = split(values)
        return np.sum(loss_terms(mrnn_core.reference.simulate(params, ckpt.dynamics, **c)))

    base = {n: np.asarray(call["W_rec"] if n == "W_rec_override" else
                          ckpt.params[n] if n in ckpt.params else call[n]) for n in wrt}
    grads = jax.jit(jax.grad(jax_loss))(to_jax(base))
    scale = 1.0 + np.sum(np.abs(loss_terms(example)))
    rng = np.random.default_rng(seed + 1)
    eps = 1e-6
    for name in wrt:
        v = rng.standard_normal(base[name].shape)
        plus = {**base, name: base[name] + eps * v}
        minus = {**base, name: base[name] - eps * v}
        numeric = (ref_loss(plus) - ref_loss(minus)) / (2 * eps)
        analytic = float(np.sum(np.asarray(grads[name]) * v))
        assert abs(analytic - numeric) <= 1e-6 * scale, (name, analytic, numeric)

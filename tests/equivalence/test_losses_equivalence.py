"""Losses and regularisers: torch == JAX == the numpy definitions.

Tolerances (float64): values at ``rtol = atol = 1e-12`` (each is one sum of
at most a few hundred O(1) terms, evaluated in a different order per
library, so they differ by a few ulps); gradients, torch autograd against
``jax.grad``, at ``1e-10`` as in the rest of this suite.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core.losses as C
import mrnn_jax.losses as J
import mrnn_torch.losses as T
from mrnn_core.testing import arrays, network_specs

VALUE = dict(rtol=1e-12, atol=1e-12)
GRAD = dict(rtol=1e-10, atol=1e-10)
PUBLIC = ("mse", "weight_l2", "weight_l1", "projection_penalty", "weight_penalty",
          "rate_l2", "rate_std", "rate_cv")


def test_the_three_modules_offer_the_same_functions_and_signatures():
    for name in PUBLIC:
        want = inspect.signature(getattr(C, name))
        for module in (T, J):
            assert inspect.signature(getattr(module, name)) == want, f"{module.__name__}.{name}"
    assert T.KINDS == J.KINDS == C.KINDS and T.SIDES == J.SIDES == C.SIDES


def check(name, x, *args, **kwargs):
    """``name(x, *args, **kwargs)`` in all three; values agree, and the gradient
    in ``x`` of the (summed) result agrees between torch and JAX."""
    def total(r):
        return sum(r.values()) if isinstance(r, dict) else r

    want = getattr(C, name)(x, *args, **kwargs)
    xt = torch.tensor(x, requires_grad=True)
    got_t = getattr(T, name)(xt, *(torch.as_tensor(a) if isinstance(a, np.ndarray) else a
                                   for a in args), **kwargs)
    # one compiled program per example: cheaper than op-by-op eager dispatch
    got_j, grad_j = jax.jit(jax.value_and_grad(
        lambda xj: total(getattr(J, name)(xj, *args, **kwargs))))(jnp.asarray(x))
    if isinstance(want, dict):
        assert list(got_t) == list(want)
        for k in want:
            np.testing.assert_allclose(got_t[k].detach().numpy(), want[k], **VALUE)
        got_t = total(got_t)
        want = total(want)
    np.testing.assert_allclose(got_t.detach().numpy(), want, **VALUE)
    np.testing.assert_allclose(got_j, want, **VALUE)
    (grad_t,) = torch.autograd.grad(got_t, xt)
    np.testing.assert_allclose(grad_t.numpy(), grad_j, **GRAD)


shapes3 = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 3))


@st.composite
def masks(draw, shape):
    """None, or a 0/1, boolean or weighted mask lined up with ``shape``'s leading axes."""
    rank = draw(st.integers(0, len(shape)))
    mshape = tuple(draw(st.sampled_from([1, n])) for n in shape[:rank])
    kind = draw(st.sampled_from(["none", "01", "bool", "weights", "zeros"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {"none": None, "01": (rng.random(mshape) < 0.5).astype(float),
            "bool": rng.random(mshape) < 0.5, "weights": rng.uniform(0.0, 2.0, mshape),
            "zeros": np.zeros(mshape)}[kind]


@given(st.data(), shapes3)
def test_mse(data, shape):
    y, t = data.draw(arrays(shape)), data.draw(arrays(shape))
    check("mse", y, t, data.draw(masks(shape)))


@given(arrays((4, 5), -2.0, 2.0), st.sampled_from(["weight_l2", "weight_l1"]))
def test_weight_norms(W, name):
    check(name, W)


@given(st.data(), network_specs(max_units=5, min_inputs=1))
def test_projection_penalty(data, spec):
    side = data.draw(st.sampled_from(["recurrent", "input"]))
    targets = list(spec.recurrent_names) + list(spec.parents)
    src = data.draw(st.sampled_from(spec.input_names if side == "input" else targets))
    dst = data.draw(st.sampled_from(targets))
    cols = spec.input_size if side == "input" else spec.hidden_size
    W = data.draw(arrays((spec.hidden_size, cols), -2.0, 2.0))
    check("projection_penalty", W, spec, src, dst, data.draw(st.sampled_from(["l2", "l1"])), side)


@given(arrays((3, 4), -2.0, 2.0), arrays((3, 2)), arrays((1, 3)), st.sampled_from(["l2", "l1"]))
def test_weight_penalty(W_rec, W_inp, readout, kind):
    weights = {"W_rec": W_rec, "W_inp": W_inp, "readout": readout}
    for which in (None, ("W_rec", "readout")):
        want = C.weight_penalty(weights, kind, which)
        got_t = T.weight_penalty({k: torch.tensor(v) for k, v in weights.items()}, kind, which)
        got_j = J.weight_penalty({k: jnp.asarray(v) for k, v in weights.items()}, kind, which)
        np.testing.assert_allclose(got_t.numpy(), want, **VALUE)
        np.testing.assert_allclose(got_j, want, **VALUE)


@given(st.data(), network_specs(max_units=5), st.integers(1, 3), st.integers(1, 4))
def test_rate_l2(data, spec, B, steps):
    hs = data.draw(arrays((B, steps, spec.hidden_size), -2.0, 2.0))
    names = list(spec.recurrent_names) + list(spec.parents)
    regions = data.draw(st.one_of(st.none(), st.sampled_from(names),
                                  st.lists(st.sampled_from(names), min_size=1, max_size=3)))
    per_region = data.draw(st.booleans())
    check("rate_l2", hs, spec, regions, per_region)
    if regions is None and not per_region:
        check("rate_l2", hs)


@given(st.data(), shapes3, st.sampled_from(["rate_std", "rate_cv"]))
def test_rate_spread(data, shape, name):
    axis = data.draw(st.integers(-3, 2))
    low = 0.0 if name == "rate_cv" else -2.0
    hs = data.draw(arrays(shape, low, 2.0))
    if data.draw(st.booleans()):  # whole populations at one rate: zero spread
        hs[0] = hs[0].mean()
    check(name, hs, axis=axis)

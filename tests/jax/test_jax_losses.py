"""mrnn_jax.losses: pure functions that jit, grad and vmap, and train what they name.

Values are compared with the numpy definitions in
tests/equivalence/test_losses_equivalence.py; here, what JAX users rely on:
jitted results equal eager ones, ``jax.grad`` matches finite differences
(``check_grads``, float64), a projection penalty on a model's effective
weights moves only that block under an optax step, no NaN gradient at zero
spread, and bad input fails at trace time with the core's message.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import mrnn_core as mc
import mrnn_jax
import mrnn_jax.losses as L
from mrnn_core import losses as core

SPEC = (mc.NetworkSpec()
        .with_recurrent_region("exc", 3, parent_region="ctx")
        .with_recurrent_region("thal", 2)
        .with_recurrent_region("inh", 2, sign="neg", parent_region="ctx")
        .with_input_region("cue", 2)
        .with_recurrent_connection("exc", "exc")
        .with_recurrent_connection("exc", "thal")
        .with_recurrent_connection("thal", "exc")
        .with_recurrent_connection("inh", "exc")
        .with_recurrent_connection("exc", "inh")
        .with_input_connection("cue", "exc"))


def rand(*shape, low=-1.0, high=1.0, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, size=shape))


MASK = jnp.asarray([[1.0, 0.0, 0.5, 1.0]] * 2)
LOSSES = {  # name -> (loss of one float64 array, its shape)
    "mse": (lambda y: L.mse(y, jnp.zeros_like(y), MASK), (2, 4, 3)),
    "weight_l2": (L.weight_l2, (4, 6)),
    "weight_l1": (L.weight_l1, (4, 6)),
    "projection_l2": (lambda W: L.projection_penalty(W, SPEC, "ctx", "thal"), (7, 7)),
    "projection_l1_input": (lambda W: L.projection_penalty(W, SPEC, "cue", "ctx", "l1", "input"), (7, 2)),
    "rate_l2": (lambda h: L.rate_l2(h, SPEC, "ctx"), (2, 3, 7)),
    "rate_std": (lambda h: L.rate_std(h, axis=1), (2, 4, 3)),
    "rate_cv": (lambda h: L.rate_cv(jnp.abs(h) + 0.5), (2, 4, 3)),
}


@pytest.mark.parametrize("name", LOSSES)
def test_jit_equals_eager_and_grad_matches_finite_differences(name):
    f, shape = LOSSES[name]
    x = rand(*shape)
    np.testing.assert_allclose(jax.jit(f)(x), f(x), rtol=1e-12, atol=1e-12)
    check_grads(jax.jit(f), (x,), order=1, modes=["rev"])


def test_a_traced_mask_and_vmap_over_trials():
    y, t = rand(3, 5, 2, seed=1), rand(3, 5, 2, seed=2)
    keep = jnp.asarray(np.random.default_rng(3).random((3, 5)) < 0.5)
    np.testing.assert_allclose(jax.jit(L.mse)(y, t, keep), L.mse(y, t, keep), rtol=1e-12)
    per_trial = jax.vmap(L.mse)(y, t, keep)
    for b in range(3):
        np.testing.assert_allclose(per_trial[b], L.mse(y[b], t[b], keep[b]), rtol=1e-12)


def test_a_projection_penalty_on_a_models_effective_weights_trains_only_that_block():
    dynamics = mc.Dynamics(rec_constrained=True, inp_constrained=True)
    model = mrnn_jax.mRNN.from_checkpoint(mc.Checkpoint.initialise(SPEC, dynamics, seed=3))
    trainable, frozen = eqx.partition(model, mrnn_jax.trainable_filter(model))

    def penalty(trainable):
        W_rec_eff, _ = eqx.combine(trainable, frozen).effective_weights()
        return L.projection_penalty(W_rec_eff, SPEC, "thal", "ctx")

    opt = optax.sgd(0.1)
    grads = jax.grad(penalty)(trainable)
    updates, _ = opt.update(grads, opt.init(trainable))
    stepped = eqx.apply_updates(trainable, updates)
    rows, cols = core.projection_indices(SPEC, "thal", "ctx")
    inside = np.zeros((7, 7), dtype=bool)
    inside[np.ix_(rows, cols)] = True
    moved = np.asarray(stepped.W_rec != trainable.W_rec)
    assert moved[inside].any() and not moved[~inside].any()
    assert np.array_equal(stepped.W_inp, trainable.W_inp)
    assert penalty(stepped) < penalty(trainable)


def test_spread_penalties_have_zero_not_nan_gradient_when_all_units_agree():
    for rate in (0.0, 0.5):  # a silent network at initialisation, a uniform one
        h = jnp.full((3, 5), rate)
        for f in (L.rate_std, L.rate_cv):
            value, grad = jax.jit(jax.value_and_grad(f))(h)
            assert value == 0.0
            assert np.array_equal(grad, np.zeros((3, 5)))


def test_per_region_rates_under_jit_and_grad():
    h = rand(2, 3, 7)
    per = jax.jit(lambda h: L.rate_l2(h, SPEC, ["ctx", "thal"], per_region=True))(h)
    assert list(per) == ["ctx", "thal"]
    grad = np.asarray(jax.grad(lambda h: L.rate_l2(h, SPEC, ["ctx", "thal"], per_region=True)["thal"])(h))
    assert not grad[..., [0, 1, 2, 5, 6]].any() and grad[..., 3:5].all()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_results_keep_the_dtype_and_take_bool_masks(dtype):
    y = jnp.ones((2, 3, 4), dtype=dtype)
    keep = jnp.asarray([[True, False, False], [False, False, True]])
    out = jax.jit(L.mse)(y, jnp.zeros_like(y), keep)
    assert out.dtype == dtype and out == 1.0
    for f in (L.weight_l2, L.weight_l1, L.rate_std, L.rate_cv, L.rate_l2):
        assert jax.jit(f)(y[0]).dtype == dtype


@pytest.mark.parametrize("call, match", [
    (lambda: L.mse(jnp.zeros((2, 4, 3)), jnp.zeros((2, 4, 3)), jnp.ones(3)), r"mask: expected a shape matching"),
    (lambda: jax.jit(L.mse)(jnp.zeros((2, 4, 3)), jnp.zeros((2, 4))), r"targets: expected the shape of outputs"),
    (lambda: jax.jit(L.weight_l1)(jnp.zeros(3)), r"W: expected a 2-D weight matrix.*got 1-D"),
    (lambda: L.projection_penalty(jnp.zeros((7, 7)), SPEC, "ctz", "thal"), r"src: unknown region 'ctz'"),
    (lambda: L.projection_penalty(jnp.zeros((7, 2)), SPEC, "exc", "thal"), r"W: expected the recurrent matrix"),
    (lambda: L.rate_l2(jnp.zeros((2, 6)), SPEC, "exc"), r"hs: expected rates \[..., H\] with H = 7"),
    (lambda: L.rate_cv(jnp.zeros((2, 6)), axis=2), r"axis: expected an integer in \[-2, 1\]"),
    (lambda: L.weight_penalty({"W": jnp.zeros((2, 2))}, which="V"), r"which: unknown weight 'V'"),
])
def test_bad_input_fails_with_the_core_message(call, match):
    with pytest.raises(mc.MRNNConfigError, match=match):
        call()

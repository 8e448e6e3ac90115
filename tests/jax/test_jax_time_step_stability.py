"""JAX models: unsafe leaky time steps are refused at construction and from a
checkpoint, and the switch lets them run, also under jit (SEMANTICS.md section 5)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import mrnn_core
import mrnn_jax
from mrnn_core import MRNNConfigError

SPEC = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 3).with_recurrent_region("fast", 2, tau=4.0)
        .with_input_region("cue", 1).with_recurrent_connection("ctx", "fast")
        .with_input_connection("cue", "ctx"))
OVERSHOOT = r"> 1 for unit 3 \(region 'fast'\): the Euler step overshoots the leak"


def test_construction_refuses_a_step_longer_than_any_tau_unless_allowed():
    with pytest.raises(MRNNConfigError, match=r"^dynamics: alpha = dt / tau = 20\.0 / 10\.0 = 2\.0 > 1: "):
        mrnn_jax.mRNN(SPEC, dt=20.0, tau=10.0, seed=0)
    with pytest.raises(MRNNConfigError, match=r"^spec: alpha = dt / tau = 10\.0 / 4\.0 = 2\.5 " + OVERSHOOT):
        mrnn_jax.mRNN(SPEC, seed=0)
    with pytest.raises(MRNNConfigError, match=r"^spec: alpha = .* " + OVERSHOOT):
        mrnn_jax.mRNN(SPEC.to_dict(), seed=0)
    assert np.allclose(mrnn_jax.mRNN(SPEC, dt=4.0, seed=0).alpha, [0.04] * 3 + [1.0] * 2, rtol=1e-15)
    mrnn_jax.ElmanmRNN(SPEC, seed=0)  # no alpha, nothing to check


def test_from_checkpoint_refuses_a_tau_array_that_steps_too_far():
    ckpt = mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(dt=4.0), seed=0)
    params = {**ckpt.params, "tau": np.array([100.0, 100.0, 100.0, 3.0, 4.0])}
    bad = mrnn_core.Checkpoint(SPEC, ckpt.dynamics, params)
    with pytest.raises(MRNNConfigError, match=r"^checkpoint params\['tau'\]: alpha = dt / tau = 4\.0 / 3\.0 = "
                                              r"1\.33\d* " + OVERSHOOT):
        mrnn_jax.mRNN.from_checkpoint(bad)
    with pytest.raises(MRNNConfigError, match=OVERSHOOT):
        mrnn_jax.mRNNBase.from_checkpoint(bad)


def test_an_allowed_unstable_model_runs_under_jit_with_its_static_dynamics():
    spec = mrnn_core.NetworkSpec().with_recurrent_region("a", 1).with_input_region("u", 1) \
        .with_input_connection("u", "a")
    model = mrnn_jax.mRNN(spec, activation="linear", dt=30.0, tau=10.0, allow_unstable_alpha=True,
                          noise_level_act=0.0, noise_level_inp=0.0, seed=0)
    assert model.dynamics.allow_unstable_alpha is True
    xs, _ = eqx.filter_jit(lambda m, u, x0: m(u, x0))(model, jnp.zeros((1, 5, 1)), jnp.ones((1, 1)))
    assert np.allclose(np.asarray(xs)[0, :, 0], (-2.0) ** np.arange(1, 6), rtol=1e-12)
    back = mrnn_jax.mRNN.from_checkpoint(model.to_checkpoint())
    assert back.dynamics == model.dynamics

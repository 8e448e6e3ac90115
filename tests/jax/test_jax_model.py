"""The equinox Modules: construction, checkpoints, initial states, training."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
from .jax_cases import SMALL_SPEC, assert_close, checkpoints, run_model, to_jax
from mrnn_core.testing import dynamics_settings, invalid_configs, network_specs

CLASSES = {"leaky": mrnn_jax.mRNN, "elman": mrnn_jax.ElmanmRNN}
MASKS = ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix", "init")


def _settings(d: mrnn_core.Dynamics) -> dict:
    """The constructor keywords that rebuild ``d``."""
    kw = {k: v for k, v in d.to_dict().items() if k != "kind"}
    if d.kind == "elman":
        del kw["dt"], kw["tau"]
    return kw


def _assert_same_arrays(a: mrnn_core.Checkpoint, b: mrnn_core.Checkpoint):
    for name in mrnn_core.PARAM_NAMES:
        assert a.params[name].dtype == b.params[name].dtype == np.float64, name
        assert a.params[name].tobytes() == b.params[name].tobytes(), name


@given(spec=network_specs(max_units=6), dynamics=dynamics_settings(spectral_radius=True),
       seed=st.integers(0, 2**31))
def test_seeded_model_holds_the_cores_initial_arrays(spec, dynamics, seed):
    if dynamics.kind == "elman":  # Elman has no dt / tau: the defaults stand
        dynamics = dataclasses.replace(dynamics, dt=10.0, tau=100.0)
    cls = CLASSES[dynamics.kind]
    try:
        expected = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    except mrnn_core.MRNNConfigError as err:  # spectral radius of a loop-free network
        with pytest.raises(mrnn_core.MRNNConfigError, match="cannot be scaled"):
            cls(spec, **_settings(dynamics), seed=seed)
        assert "cannot be scaled" in str(err)
        return
    model = cls(spec.to_dict(), **_settings(dynamics), seed=seed)
    got = model.to_checkpoint()
    assert got.spec == spec and got.dynamics == dynamics
    _assert_same_arrays(got, expected)


def test_config_path_dict_and_spec_build_the_same_model(tmp_path):
    path = tmp_path / "net.json"
    SMALL_SPEC.save(path)
    models = [mrnn_jax.mRNN(c, seed=4) for c in (str(path), path, SMALL_SPEC.to_dict(), SMALL_SPEC)]
    for m in models[1:]:
        _assert_same_arrays(m.to_checkpoint(), models[0].to_checkpoint())


def test_key_fixes_the_draws():
    a = mrnn_jax.mRNN(SMALL_SPEC, key=jax.random.key(1))
    b = mrnn_jax.mRNN(SMALL_SPEC, key=jax.random.PRNGKey(1))  # legacy uint32 key, same bits
    c = mrnn_jax.mRNN(SMALL_SPEC, key=jax.random.key(2))
    _assert_same_arrays(a.to_checkpoint(), b.to_checkpoint())
    assert not np.array_equal(a.W_rec, c.W_rec)
    assert not np.array_equal(a.W_rec_mask, c.W_rec_mask)  # sparse blocks are redrawn too


@pytest.mark.parametrize("kwargs, match", [
    ({"key": jax.random.key(0), "seed": 0}, r"key, seed: pass one of them .* got both"),
    ({}, r"key: expected a PRNG key \(e\.g\. jax\.random\.key\(0\)\) or an integer seed=.* got neither"),
    ({"key": 3}, r"key: expected a PRNG key such as jax\.random\.key\(0\), got 3; pass an integer as seed="),
    ({"seed": 0, "activation": "relux"}, r"unknown activation 'relux'; allowed activations: 'relu'"),
    ({"seed": 0, "dt": 0}, r"dt must be a finite number > 0, got 0"),
    ({"seed": 0, "tau": -5}, r"tau must be a finite number > 0, got -5"),
    ({"seed": 0, "noise_level_act": -0.1}, r"noise_level_act must be a finite number >= 0, got -0\.1"),
])
def test_constructor_rejects_bad_settings(kwargs, match):
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        mrnn_jax.mRNN(SMALL_SPEC, **kwargs)


@given(invalid_configs())
def test_constructor_rejects_bad_configs(case):
    config, match = case
    for cls in CLASSES.values():
        with pytest.raises(mrnn_core.MRNNConfigError, match=match):
            cls(config, seed=0)


@given(checkpoints(), st.integers(0, 2**31))
def test_checkpoint_round_trip_is_bit_identical(ckpt, seed):
    model = CLASSES[ckpt.dynamics.kind].from_checkpoint(ckpt)
    assert type(mrnn_jax.mRNNBase.from_checkpoint(ckpt)) is type(model)
    back = model.to_checkpoint()
    assert back.spec == ckpt.spec and back.dynamics == ckpt.dynamics
    _assert_same_arrays(back, ckpt)
    again = mrnn_jax.mRNNBase.from_checkpoint(back)
    for a, b in zip(jax.tree.leaves(model), jax.tree.leaves(again)):
        assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_checkpoint_file_round_trip_after_training(tmp_path):
    """A trained model (learned bias included) survives save/load bit for bit."""
    model = mrnn_jax.mRNN(SMALL_SPEC, seed=0)
    inp = jnp.ones((2, 4, 2))
    x0, _ = model.batched_initial_condition(2)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(inp, x0)[1] ** 2)))(model)
    model = eqx.apply_updates(model, jax.tree.map(lambda g: -0.1 * g, grads))
    model.to_checkpoint().save(tmp_path / "m.npz")
    loaded = mrnn_jax.mRNN.from_checkpoint(mrnn_core.Checkpoint.load(tmp_path / "m.npz"))
    _assert_same_arrays(loaded.to_checkpoint(), model.to_checkpoint())
    assert_close(loaded(inp, x0), model(inp, x0), rtol=0, atol=0, what="after reload")


def test_from_checkpoint_rejects_the_other_kind():
    elman = mrnn_core.Checkpoint.initialise(SMALL_SPEC, mrnn_core.Dynamics(kind="elman"), seed=0)
    with pytest.raises(mrnn_core.MRNNConfigError,
                       match=r"checkpoint: it holds a 'elman' model, expected 'leaky' for mRNN; "
                             r"use ElmanmRNN\.from_checkpoint"):
        mrnn_jax.mRNN.from_checkpoint(elman)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"expected a mrnn_core\.Checkpoint, got dict"):
        mrnn_jax.ElmanmRNN.from_checkpoint(dict(elman.params))


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_unbatched_call(kind):
    ckpt = mrnn_core.Checkpoint.initialise(SMALL_SPEC, mrnn_core.Dynamics(kind=kind), seed=1)
    model = CLASSES[kind].from_checkpoint(ckpt)
    rng = np.random.default_rng(0)
    call = {"inp": rng.uniform(-1, 1, (7, 2)), ("x0" if kind == "leaky" else "h0"): rng.uniform(0, 1, 12)}
    if kind == "leaky":
        call["h0"] = None
    out = run_model(model, call)
    assert_close(out, mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call))
    assert (out[0] if kind == "leaky" else out).shape == (7, 12)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_noise_follows_the_key(kind):
    model = CLASSES[kind](SMALL_SPEC, noise_level_act=0.05, noise_level_inp=0.05, seed=0)
    inp = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 5, 2)))
    initial = model.batched_initial_condition(2)
    state = {"x0": initial[0]} if kind == "leaky" else {"h0": initial}
    run = eqx.filter_jit(lambda m, key: m(inp, **state, key=key))
    quiet = run(model, None)
    a, b = run(model, jax.random.key(1)), run(model, jax.random.key(1))
    c = run(model, jax.random.key(2))
    assert_close(a, b, 0, 0, "same key")
    for noisy in (a, c):
        assert not np.allclose(jax.tree.leaves(noisy)[-1], jax.tree.leaves(quiet)[-1])
    assert not np.allclose(jax.tree.leaves(a)[-1], jax.tree.leaves(c)[-1])
    ckpt = model.to_checkpoint()
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, np.asarray(inp),
                                            **{k: np.asarray(v) for k, v in state.items()})
    assert_close(quiet, expected, what="no key, no noise")


NO_INPUT = (mrnn_core.NetworkSpec()
            .with_recurrent_region("a", 3, base_firing=0.2)
            .with_recurrent_region("b", 2, sign="neg")
            .with_recurrent_connection("a", "b")
            .with_recurrent_connection("b", "a"))


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_network_without_input_regions(kind):
    ckpt = mrnn_core.Checkpoint.initialise(NO_INPUT, mrnn_core.Dynamics(kind=kind), seed=2)
    model = CLASSES[kind].from_checkpoint(ckpt)
    assert model.W_inp.shape == (5, 0)
    rng = np.random.default_rng(0)
    state = {("x0" if kind == "leaky" else "h0"): rng.uniform(0, 1, (2, 5))}
    stim = rng.uniform(-1, 1, (2, 6, 5))
    for call in ({"inp": None, "stim_input": stim, **state},
                 {"inp": np.zeros((2, 6, 0)), "stim_input": None, **state}):
        expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call)
        assert_close(run_model(model, {**call, "h0": call.get("h0")}), expected)
    with pytest.raises(mrnn_core.MRNNConfigError,
                       match=r"inp: this network has no input region, but the number of steps is unknown"):
        run_model(model, {"inp": None, "h0": None, **to_jax(state)})


def test_initial_conditions():
    spec_init = np.concatenate([np.full(r.num_units, r.init) for r in SMALL_SPEC.recurrent_regions])
    leaky = mrnn_jax.mRNN(SMALL_SPEC, activation="tanh", seed=0)
    np.testing.assert_array_equal(leaky.initial_condition, spec_init)
    np.testing.assert_array_equal(mrnn_jax.initial_condition(leaky.connectivity), spec_init)
    x0, h0 = leaky.batched_initial_condition(3)
    np.testing.assert_array_equal(x0, np.tile(spec_init, (3, 1)))
    np.testing.assert_allclose(h0, np.tanh(x0), rtol=1e-15)
    elman = mrnn_jax.ElmanmRNN(SMALL_SPEC, seed=0)
    np.testing.assert_array_equal(elman.batched_initial_condition(2), np.tile(spec_init, (2, 1)))


def _loss(model, inp):
    x0, h0 = model.batched_initial_condition(inp.shape[0])
    return jnp.sum(model(inp, x0, h0 + 0.1)[1] ** 2)


def _trained_bias_units():
    return np.concatenate([np.full(r.num_units, r.learnable_bias) for r in SMALL_SPEC.recurrent_regions])


def test_filter_grad_gives_structure_no_gradient():
    model = mrnn_jax.mRNN(SMALL_SPEC, activation="tanh", seed=0)  # no unit is silent
    inp = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 5, 2)))
    grads = eqx.filter_jit(eqx.filter_grad(_loss))(model, inp)
    for name in MASKS:
        assert not np.any(getattr(grads, name)), name
    mask = np.asarray(model.W_rec_mask) != 0
    assert np.all(np.asarray(grads.W_rec)[mask] != 0) and not np.any(np.asarray(grads.W_rec)[~mask])
    learnable = _trained_bias_units()
    assert np.all(np.asarray(grads.base_firing)[learnable] != 0)
    assert not np.any(np.asarray(grads.base_firing)[~learnable])


def test_adam_steps_leave_structure_and_fixed_biases_bit_identical():
    """Even when the optimiser is given every array (the naive filter), only
    W_rec, W_inp and learnable biases move."""
    model = mrnn_jax.mRNN(SMALL_SPEC, activation="tanh", seed=0)
    inp = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 5, 2)))
    optimiser = optax.adam(1e-2)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
    trained = model
    grad_fn = eqx.filter_jit(eqx.filter_grad(_loss))
    for _ in range(3):
        grads = grad_fn(trained, inp)
        updates, opt_state = optimiser.update(grads, opt_state, trained)
        trained = eqx.apply_updates(trained, updates)
    for name in MASKS:
        assert np.asarray(getattr(trained, name)).tobytes() == np.asarray(getattr(model, name)).tobytes()
    learnable = _trained_bias_units()
    before, after = np.asarray(model.base_firing), np.asarray(trained.base_firing)
    assert before[~learnable].tobytes() == after[~learnable].tobytes()
    assert np.all(before[learnable] != after[learnable])
    assert not np.array_equal(model.W_rec, trained.W_rec)
    assert not np.array_equal(model.W_inp, trained.W_inp)


class _WithReadout(eqx.Module):
    rnn: mrnn_jax.mRNN
    readout: jax.Array


def test_trainable_filter_selects_weights_and_learnable_bias():
    fixed_bias = SMALL_SPEC.to_dict()
    for region in fixed_bias["recurrent_regions"]:
        region["learnable_bias"] = False
    for spec, bias in ((SMALL_SPEC, True), (fixed_bias, False)):
        model = mrnn_jax.mRNN(spec, seed=0)
        flags = mrnn_jax.trainable_filter(model)
        assert (flags.W_rec, flags.W_inp, flags.base_firing) == (True, True, bias)
        assert not any(getattr(flags, name) for name in MASKS)
        trainable, _ = eqx.partition(model, flags)
        assert {n for n in mrnn_core.PARAM_NAMES if getattr(trainable, n) is not None} == \
            {"W_rec", "W_inp"} | ({"base_firing"} if bias else set())
    wrapped = mrnn_jax.trainable_filter(_WithReadout(model, jnp.ones((3, 12))))
    assert wrapped.readout is True and wrapped.rnn.W_rec is True and wrapped.rnn.W_rec_mask is False


def test_an_ensemble_of_stacked_models_runs_under_filter_vmap():
    """Models of one spec and dynamics stack into one pytree (train many at once)."""
    models = [mrnn_jax.ElmanmRNN(SMALL_SPEC, seed=s) for s in range(4)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *models)
    inp = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 5, 2)))
    h0 = models[0].batched_initial_condition(2)
    together = eqx.filter_vmap(lambda m: m(inp, h0))(stacked)
    for i, m in enumerate(models):
        assert_close(together[i], m(inp, h0), 1e-12, 1e-12, f"member {i}")


def test_connectivity_is_the_cores():
    model = mrnn_jax.mRNN(SMALL_SPEC, seed=9)
    core = mrnn_core.build_connectivity(SMALL_SPEC, seed=9)
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix",
                 "base_firing", "init", "bias_trainable"):
        np.testing.assert_array_equal(getattr(model.connectivity, name), getattr(core, name), name)

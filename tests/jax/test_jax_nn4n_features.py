"""nn4n-style features in the JAX backend (issue 9): per-unit time constants, learnable tau and
initial state, frozen projections, E/I areas and the new config keys.

Values are checked in float64 against ``mrnn_core.reference.simulate`` at
``rtol = atol = 1e-10`` (see jax_cases: the same sums in another order differ
by a few ulps per step, any wrong term by far more). Training switches are
checked bit for bit: an entry that must not train keeps its exact bytes.
"""

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
from .jax_cases import (SMALL_SPEC, assert_close, calls, checkpoints, count_traces, reference,
                        run_model, to_jax)
from mrnn_core.testing import arrays, dynamics_settings, network_specs
from mrnn_jax import _simulate

SPEC9 = (mrnn_core.NetworkSpec()
         .with_ei_area("a", 5, exc_pct=0.6, tau=40.0, learnable_tau=True, init=0.2)
         .with_recurrent_region("b", 4, tau=120.0, learnable_init=True, init=0.1,
                                learnable_bias=True, base_firing=0.05)
         .with_input_region("cue", 2)
         .with_recurrent_connection("a", "a")
         .with_recurrent_connection("a_exc", "b", density=0.7)
         .with_recurrent_connection("b", "a", routes=["E->E"])
         .with_recurrent_connection("b", "b", mask=[[1, 0, 1, 1], [0, 1, 1, 0],
                                                    [1, 1, 0, 1], [1, 0, 0, 1]])
         .with_input_connection("cue", "a")
         .with_input_connection("cue", "b", trainable=False))
"""9 units: an E/I area ``a`` (3 excitatory, 2 inhibitory; learnable tau 40)
and a region ``b`` (tau 120, learnable init and bias), wired by parent
expansion, a route filter, density and an explicit mask; cue -> b frozen."""

H9, I9 = SPEC9.hidden_size, SPEC9.input_size
A_UNITS, B_UNITS = slice(0, 5), slice(5, 9)


def _regions_with(spec, **fields):
    """``spec`` with ``fields`` set on every recurrent region."""
    return dataclasses.replace(spec, recurrent_regions=tuple(
        dataclasses.replace(r, **fields) for r in spec.recurrent_regions))


def _call(seed=0, B=2, T=4, H=H9, I=I9, noise=True):
    rng = np.random.default_rng(seed)
    call = {"inp": rng.uniform(-1, 1, (B, T, I)), "stim_input": rng.uniform(-0.3, 0.3, (B, T, H))}
    if noise:
        call["eps_x"] = rng.standard_normal((B, T, H))
        call["eps_u"] = rng.standard_normal((B, T, I))
    return call


def _loss(model, call):
    """A scalar of every output, differentiable in every trained array."""
    out = run_model(model, {"x0": None, "h0": None, **call} if model.dynamics.kind == "leaky"
                    else {"h0": None, **call})
    hs = out[1] if isinstance(out, tuple) else out
    return jnp.sum(jnp.sin(3.0 * hs))


# 1. per-unit alpha ----------------------------------------------------------------


def test_equal_region_taus_give_the_scalar_tau_numbers_bit_for_bit():
    per_region = mrnn_jax.mRNN(_regions_with(SMALL_SPEC, tau=50.0), tau=100.0, seed=3,
                               activation="tanh")
    scalar = mrnn_jax.mRNN(SMALL_SPEC, tau=50.0, seed=3, activation="tanh")
    assert per_region.alpha == scalar.alpha == 0.2
    # No input noise: its constant c_u stays dynamics.inp_noise_const (input
    # space has no per-unit tau), so it follows dynamics.tau, which differs here.
    call = to_jax({**_call(H=12, I=2), "x0": np.full((2, 12), 0.1)})
    for recurrence in ("dense", "blocks"):
        a, b = (model(call["inp"], call["x0"], stim_input=call["stim_input"], eps_x=call["eps_x"],
                      recurrence=recurrence) for model in (per_region, scalar))
        for u, v in zip(a, b):
            assert np.array_equal(u, v), recurrence


@given(checkpoints(), st.data())
def test_per_unit_tau_matches_the_reference(ckpt, data):
    """Random per-unit time constants: forward pass, the model and noise scaled per unit."""
    params = dict(ckpt.params)
    H = ckpt.spec.hidden_size  # tau >= dt: alpha > 1 is refused (time-step rule)
    params["tau"] = data.draw(st.lists(st.floats(ckpt.dynamics.dt, 300.0), min_size=H,
                                       max_size=H).map(np.array))
    ckpt = mrnn_core.Checkpoint(ckpt.spec, ckpt.dynamics, params)
    call = data.draw(calls(ckpt))
    expected = reference(ckpt, call)
    assert_close(mrnn_jax.simulate(to_jax(params), ckpt.dynamics, **to_jax(call)), expected,
                 what="simulate")
    assert_close(run_model(mrnn_jax.mRNNBase.from_checkpoint(ckpt), call), expected, what="model")


@given(network_specs(max_units=6, beyond_mrnntorch=True), dynamics_settings(balance_ei=True),
       st.integers(0, 2**31), st.data())
def test_drawn_nn4n_style_networks_match_the_reference(spec, dynamics, seed, data):
    """E/I areas, routes, density, masks, per-region and learned tau, learned
    init, frozen projections and balanced init, from the core's strategies;
    the call starts from the model's (perturbed) default state."""
    model = mrnn_jax.mRNNBase.from_checkpoint(
        mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed))
    H = spec.hidden_size
    model = eqx.tree_at(lambda m: (m.log_tau, m.init), model,
                        (model.log_tau + data.draw(arrays((H,), -0.3, 0.3)),
                         model.init + data.draw(arrays((H,), -0.3, 0.3))))
    ckpt = model.to_checkpoint()
    call = data.draw(calls(ckpt, optional=False))
    if dynamics.kind == "leaky":
        call["x0"], call["h0"] = np.broadcast_to(ckpt.params["init"], call["x0"].shape), None
    else:
        call["h0"] = np.broadcast_to(ckpt.params["init"], call["h0"].shape)
    got = model(call["inp"], stim_input=call["stim_input"], W_rec=call["W_rec"],
                eps_x=call["eps_x"], eps_u=call["eps_u"])
    assert_close(got, reference(ckpt, call), what="default state")


def test_vector_alpha_on_every_code_path_matches_the_reference():
    """Blocks, the input term inside the step, and traced (jitted) time constants."""
    ckpt = mrnn_jax.mRNN(SPEC9, seed=1, activation="softplus").to_checkpoint()
    call = {**_call(), "x0": np.random.default_rng(1).uniform(-0.5, 0.5, (2, H9))}
    expected = reference(ckpt, call)
    params, jcall = to_jax(ckpt.params), to_jax(call)
    saved = _simulate._INPUT_IN_STEP_MIN
    try:
        for in_step in (False, True):
            _simulate._INPUT_IN_STEP_MIN = 0 if in_step else saved
            for recurrence in ("dense", "blocks"):
                got = mrnn_jax.simulate(params, ckpt.dynamics, **jcall, recurrence=recurrence)
                assert_close(got, expected, what=f"{recurrence}, input in step: {in_step}")
    finally:
        _simulate._INPUT_IN_STEP_MIN = saved
    jitted = jax.jit(mrnn_jax.simulate, static_argnums=1)(params, ckpt.dynamics, **jcall)
    assert_close(jitted, expected, what="traced tau")


def test_traced_equal_taus_take_the_vector_path_with_the_same_numbers():
    ckpt = mrnn_core.Checkpoint.initialise(SMALL_SPEC, mrnn_core.Dynamics(tau=50.0), seed=2)
    call = to_jax({**_call(H=12, I=2), "x0": np.full((2, 12), 0.1)})
    params = to_jax(ckpt.params)
    eager = mrnn_jax.simulate(params, ckpt.dynamics, **call)
    jitted = jax.jit(mrnn_jax.simulate, static_argnums=1)(params, ckpt.dynamics, **call)
    assert_close(jitted, eager, 1e-13, 1e-13, "scalar vs vector path")


def test_step_and_input_drive_use_per_unit_tau():
    ckpt = mrnn_jax.mRNN(SPEC9, seed=4).to_checkpoint()
    call = _call(T=1)
    x0 = np.random.default_rng(2).uniform(-0.5, 0.5, (2, H9))
    params = to_jax(ckpt.params)
    drive = mrnn_jax.input_drive(params, ckpt.dynamics, call["inp"],
                                 stim_input=call["stim_input"], eps_x=call["eps_x"],
                                 eps_u=call["eps_u"])
    W_rec_eff, _ = mrnn_jax.effective_weights(params, ckpt.dynamics)
    x0 = jnp.asarray(x0)
    x, h = mrnn_jax.step(ckpt.dynamics, W_rec_eff, (x0, jax.nn.relu(x0)), drive[0],
                         tau=params["tau"])
    xs, hs = reference(ckpt, {**call, "x0": np.asarray(x0)})
    assert_close((x, h), (xs[:, 0], hs[:, 0]), what="step")


def test_a_bad_tau_is_rejected_naming_it():
    ckpt = mrnn_core.Checkpoint.initialise(SPEC9, mrnn_core.Dynamics(), seed=0)
    params = to_jax(ckpt.params)
    call = to_jax({**_call(), "x0": np.zeros((2, H9))})
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"params\['tau'\]: expected shape \(9,\)"):
        mrnn_jax.simulate({**params, "tau": params["tau"][:3]}, ckpt.dynamics, **call)
    bad = dict(ckpt.params)
    bad["tau"] = np.where(np.arange(H9) == 6, -1.0, bad["tau"])
    with pytest.raises(mrnn_core.MRNNConfigError,
                       match=r"params\['tau'\]: expected finite time constants > 0, got -1.0 "
                             r"for unit 6 \(region 'b'\)"):
        mrnn_jax.mRNN.from_checkpoint(mrnn_core.Checkpoint(SPEC9, ckpt.dynamics, bad))


# 2-3. learnable tau and initial state --------------------------------------------


def test_learnable_tau_trains_log_tau_of_its_regions_only():
    model = mrnn_jax.mRNN(SPEC9, seed=5, activation="tanh")
    np.testing.assert_array_equal(model.tau[B_UNITS], 120.0)
    np.testing.assert_array_equal(model.tau[A_UNITS], 40.0)  # exact until trained
    assert model.alpha.shape == (H9,)
    assert mrnn_jax.trainable_filter(model).log_tau
    assert not mrnn_jax.trainable_filter(mrnn_jax.ElmanmRNN(SPEC9, seed=5)).log_tau

    call = _call(noise=False)
    grads = eqx.filter_grad(_loss)(model, call)
    assert np.all(np.asarray(grads.log_tau[A_UNITS]) != 0)
    assert np.all(np.asarray(grads.log_tau[B_UNITS]) == 0)
    assert np.all(np.asarray(grads.tau_ref) == 0) and np.all(np.asarray(grads.log_tau_ref) == 0)

    # d loss / d log_tau by central differences of the numpy reference
    ckpt = model.to_checkpoint()
    x0 = np.broadcast_to(ckpt.params["init"], (2, H9))

    def ref_loss(log_tau_unit, unit):
        params = dict(ckpt.params)
        params["tau"] = params["tau"].copy()
        params["tau"][unit] = np.exp(log_tau_unit)
        hs = mrnn_core.reference.simulate(params, ckpt.dynamics, x0=x0, **call)[1]
        return np.sum(np.sin(3.0 * hs))

    for unit in (0, 4):
        base, step = float(model.log_tau[unit]), 1e-5
        fd = (ref_loss(base + step, unit) - ref_loss(base - step, unit)) / (2 * step)
        np.testing.assert_allclose(grads.log_tau[unit], fd, rtol=1e-6)


def test_a_learned_tau_runs_as_the_reference_with_the_exported_tau():
    model = mrnn_jax.mRNN(SPEC9, seed=6)
    model = eqx.tree_at(lambda m: m.log_tau, model, model.log_tau + jnp.linspace(-0.5, 0.5, H9))
    ckpt = model.to_checkpoint()
    np.testing.assert_array_equal(ckpt.params["tau"][B_UNITS], 120.0)  # fixed units unchanged
    assert not np.allclose(ckpt.params["tau"][A_UNITS], 40.0)
    call = {**_call(), "x0": np.full((2, H9), 0.1)}
    assert_close(run_model(model, {**call, "h0": None}), reference(ckpt, call), what="learned tau")


@pytest.mark.parametrize("cls", [mrnn_jax.mRNN, mrnn_jax.ElmanmRNN])
def test_without_a_state_the_call_starts_from_the_learnable_init(cls):
    model = cls(SPEC9, seed=7)
    model = eqx.tree_at(lambda m: m.init, model, model.init + jnp.linspace(0.0, 0.3, H9))
    leaky = cls is mrnn_jax.mRNN
    call = _call()
    state = np.broadcast_to(np.asarray(model.init), (2, H9))
    expected = reference(model.to_checkpoint(), {**call, ("x0" if leaky else "h0"): state})
    assert_close(model(call["inp"], stim_input=call["stim_input"], eps_x=call["eps_x"],
                       eps_u=call["eps_u"]), expected, what="default state")
    unbatched = {k: v[0] for k, v in call.items()}
    first = model(call["inp"][:1], stim_input=call["stim_input"][:1])
    assert_close(model(unbatched["inp"], stim_input=unbatched["stim_input"]),
                 jax.tree.map(lambda a: a[0], first), what="unbatched default state")

    grads = eqx.filter_grad(_loss)(model, _call(noise=False))
    assert np.all(np.asarray(grads.init[B_UNITS]) != 0)
    assert np.all(np.asarray(grads.init[A_UNITS]) == 0)
    assert mrnn_jax.trainable_filter(model).init
    assert not mrnn_jax.trainable_filter(mrnn_jax.mRNN(SMALL_SPEC, seed=0)).init


# 4. freezing ----------------------------------------------------------------------


def _frozen_entries(model):
    """Boolean masks of the entries that must not move, read from the numpy core."""
    rec, inp = mrnn_core.trainable_masks(model.spec)
    learn = mrnn_core.learnable_masks(model.spec)
    return {"W_rec": rec == 0, "W_inp": inp == 0, "base_firing": learn["base_firing"] == 0,
            "init": learn["init"] == 0, "log_tau": learn["tau"] == 0}


@pytest.mark.parametrize("optimiser", [optax.adam(0.05), optax.sgd(0.05, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
def test_optax_steps_leave_frozen_and_fixed_entries_bit_identical(optimiser):
    model = mrnn_jax.mRNN(SPEC9, seed=8, activation="tanh").freeze(("a_exc", "b"))
    frozen = _frozen_entries(model)
    assert frozen["W_rec"][B_UNITS, 0:3].all() and frozen["W_inp"][B_UNITS].all()
    call = _call(noise=False)
    params, static = eqx.partition(model, mrnn_jax.trainable_filter(model))
    state = optimiser.init(params)

    @jax.jit
    def update(params, state):
        grads = jax.grad(lambda p: _loss(eqx.combine(p, static), call))(params)
        updates, state = optimiser.update(grads, state, params)
        return eqx.apply_updates(params, updates), state

    for _ in range(3):
        params, state = update(params, state)
    trained = eqx.combine(params, static)
    mask = {"W_rec": np.asarray(model.W_rec_mask) != 0, "W_inp": np.asarray(model.W_inp_mask) != 0}
    for name, still in frozen.items():
        before, after = np.asarray(getattr(model, name)), np.asarray(getattr(trained, name))
        assert np.array_equal(before[still], after[still]), name
        moving = ~still & mask.get(name, True)
        assert np.all(before[moving] != after[moving]), name
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix", "tau_ref",
                 "log_tau_ref"):
        assert np.array_equal(getattr(model, name), getattr(trained, name)), name


def test_freeze_and_unfreeze_return_new_models():
    model = mrnn_jax.mRNN(SPEC9, seed=9)
    frozen = model.freeze("a")
    assert all(c.trainable for c in model.spec.recurrent_connections if c.dst_region != "b")
    grads = eqx.filter_grad(_loss)(frozen, _call(noise=False))
    assert np.all(np.asarray(grads.W_rec[A_UNITS]) == 0)
    assert np.all(np.asarray(grads.W_inp[A_UNITS]) == 0)
    assert np.any(np.asarray(grads.W_rec[B_UNITS]) != 0)

    thawed = frozen.unfreeze("a").unfreeze("b")
    grads = eqx.filter_grad(_loss)(thawed, _call(noise=False))
    assert np.all((np.asarray(grads.W_inp) != 0) == (np.asarray(model.W_inp_mask) != 0))
    assert_close(run_model(thawed, {**_call(), "x0": None, "h0": None}),
                 run_model(model, {**_call(), "x0": None, "h0": None}), 0, 0, "same numbers")

    with pytest.raises(mrnn_core.MRNNConfigError, match=r"unknown region 'c'"):
        model.freeze("c")
    with pytest.raises(mrnn_core.MRNNConfigError,
                       match=r"no declared connection from 'b' to 'a_inh'"):
        model.freeze(("b", "a_inh"))


def test_a_region_declared_untrainable_freezes_its_rows():
    spec = dataclasses.replace(SPEC9, recurrent_regions=tuple(
        dataclasses.replace(r, trainable=r.name != "a_inh") for r in SPEC9.recurrent_regions))
    grads = eqx.filter_grad(_loss)(mrnn_jax.mRNN(spec, seed=10), _call(noise=False))
    assert np.all(np.asarray(grads.W_rec[3:5]) == 0) and np.all(np.asarray(grads.W_inp[3:5]) == 0)
    assert np.any(np.asarray(grads.W_rec[0:3]) != 0)


# 5. building ----------------------------------------------------------------------


def test_balance_ei_and_json_keys_reach_the_model():
    model = mrnn_jax.mRNN(SPEC9, seed=11, balance_ei=True)
    ckpt = mrnn_core.Checkpoint.initialise(SPEC9, mrnn_core.Dynamics(balance_ei=True), seed=11)
    for name in mrnn_core.PARAM_NAMES:
        assert np.array_equal(model.to_checkpoint().params[name], ckpt.params[name]), name
    W_eff = np.asarray(model.effective_weights()[0])
    mixed = (W_eff > 0).any(axis=1) & (W_eff < 0).any(axis=1)
    assert mixed.any()
    np.testing.assert_allclose(W_eff[mixed].sum(axis=1), 0.0, atol=1e-12)
    assert mrnn_jax.ElmanmRNN(SPEC9, seed=11, balance_ei=True).dynamics.balance_ei

    config = {"recurrent_regions": [{"name": "m", "num_units": 5, "exc_pct": 0.8, "tau": 30.0,
                                     "learnable_tau": True},
                                    {"name": "s", "num_units": 2, "learnable_init": True}],
              "input_regions": [{"name": "in", "num_units": 1}],
              "recurrent_connections": [{"src_region": "m", "dst_region": "m",
                                         "routes": ["E->E", "E->I", "I->E"]},
                                        {"src_region": "m", "dst_region": "s", "density": 0.5,
                                         "trainable": False}],
              "input_connections": [{"src_region": "in", "dst_region": "m"}]}
    model = mrnn_jax.mRNN(config, seed=12)
    assert model.spec == mrnn_core.load_config(config)
    assert model.hid_regions == ["m_exc", "m_inh", "s"]
    np.testing.assert_allclose(model.tau, [30.0] * 5 + [100.0] * 2, rtol=1e-15)
    block = model.get_projection("m_inh", "m_inh", W=model.W_rec_mask)
    assert np.all(np.asarray(block) == 0)  # the I->I route was left out
    expected = reference(model.to_checkpoint(), {"inp": np.ones((1, 3, 1)),
                                                 "x0": np.zeros((1, 7))})
    assert_close(model(jnp.ones((1, 3, 1))), expected, what="json model")


# 6-7. checkpoints and transforms --------------------------------------------------


def _trained(seed=13):
    """A model whose learnable tau, init and bias moved, as after training."""
    model = mrnn_jax.mRNN(SPEC9, seed=seed, activation="tanh")
    params, static = eqx.partition(model, mrnn_jax.trainable_filter(model))
    grads = jax.grad(lambda p: _loss(eqx.combine(p, static), _call(noise=False)))(params)
    return eqx.combine(jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), static)


def test_checkpoint_round_trip_carries_learned_tau_and_init(tmp_path):
    model = _trained()
    ckpt = model.to_checkpoint()
    assert not np.allclose(ckpt.params["tau"][A_UNITS], 40.0)
    assert not np.allclose(ckpt.params["init"][B_UNITS], 0.1)
    ckpt.save(tmp_path / "m.npz")
    loaded = mrnn_jax.mRNN.from_checkpoint(mrnn_core.Checkpoint.load(tmp_path / "m.npz"))
    again = loaded.to_checkpoint()
    for name in (*mrnn_core.PARAM_NAMES, "log_tau"):
        assert again.params[name].tobytes() == ckpt.params[name].tobytes(), name
    assert np.array_equal(loaded.log_tau, model.log_tau)  # the parameter itself, not only tau
    call = {**_call(), "x0": None, "h0": None}
    for a, b in zip(run_model(loaded, call), run_model(model, call)):
        assert np.array_equal(a, b)


def test_jit_once_per_shape_vmap_over_models_and_grad():
    models = [_trained(seed) for seed in (14, 15, 16)]
    call = _call(noise=False)
    loss = eqx.filter_jit(_loss)
    loss(models[0], call)
    with count_traces() as traces:
        values = [loss(m, call) for m in models]
    assert traces == []

    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *models)
    batched = eqx.filter_vmap(_loss, in_axes=(eqx.if_array(0), None))(stacked, call)
    np.testing.assert_allclose(batched, values, rtol=1e-12)

    eager = eqx.filter_grad(_loss)(models[0], call)
    jitted = eqx.filter_jit(eqx.filter_grad(_loss))(models[0], call)
    for name in ("W_rec", "W_inp", "base_firing", "init", "log_tau"):
        np.testing.assert_allclose(getattr(jitted, name), getattr(eager, name), rtol=1e-12,
                                   atol=1e-14, err_msg=name)

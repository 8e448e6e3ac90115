"""mrnn_jax.Ensemble: every member equals the same network run alone (float64,
1e-12, forward and gradients), members split back bit for bit, one optimiser
state per member, and bad input is refused before any work."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_core
import mrnn_jax
from mrnn_core import MRNNConfigError
from mrnn_jax import Ensemble
from mrnn_jax.ensemble import ensemble_simulate, member_optimiser

TOL = dict(rtol=1e-12, atol=1e-12)

# Two cell types with their own time constants (per-unit alpha), a learnable
# bias, init and tau, a frozen projection, sparse and dense blocks.
SPEC = (mrnn_core.NetworkSpec()
        .with_recurrent_region("exc", 5, learnable_bias=True, learnable_init=True, init=0.2)
        .with_recurrent_region("inh", 3, sign="neg", tau=40.0, learnable_tau=True)
        .with_input_region("cue", 2)
        .with_recurrent_connection("exc", "exc", sparsity=0.5)
        .with_recurrent_connection("exc", "inh")
        .with_recurrent_connection("inh", "exc", trainable=False)
        .with_recurrent_connection("inh", "inh")
        .with_input_connection("cue", "exc"))
PLAIN = (mrnn_core.NetworkSpec()
         .with_recurrent_region("a", 4).with_recurrent_region("b", 3, sign="neg")
         .with_input_region("u", 3)
         .with_recurrent_connection("a", "a").with_recurrent_connection("a", "b")
         .with_recurrent_connection("b", "a").with_input_connection("u", "a")
         .with_input_connection("u", "b"))
SEEDS = [3, 1, 4]
PAIR = [3, 1]  # the slower tests: two members show as much as three


def _normal(seed, *shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _assert_tree_close(got, expected, what):
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), err_msg=what, **TOL)


def _hs(out, kind):
    return out[1] if kind == "leaky" else out


# ----------------------------------------------------------------- building


def test_from_seeds_draws_each_member_as_checkpoint_initialise():
    values = {"tau": [50.0, 80.0, 120.0], "noise_level_act": [0.0, 0.05, 0.1],
              "spectral_radius": [0.5, 0.9, 1.2]}
    ens = Ensemble.from_seeds(PLAIN, SEEDS, activation="tanh", member_values=values)
    assert len(ens) == 3
    for e, (seed, ckpt) in enumerate(zip(SEEDS, ens.to_checkpoints())):
        dyn = mrnn_core.Dynamics(activation="tanh", **{k: v[e] for k, v in values.items()})
        assert ckpt.dynamics == dyn
        expected = mrnn_core.Checkpoint.initialise(PLAIN, dyn, seed=seed)
        assert ckpt.params.keys() == expected.params.keys()
        for name, a in expected.params.items():
            np.testing.assert_array_equal(ckpt.params[name], a, err_msg=name)
    # the spectral radius scales each member's own draw
    radii = [mrnn_core.init.spectral_radius(np.asarray(m.effective_weights()[0]))
             for m in ens.members()]
    np.testing.assert_allclose(radii, values["spectral_radius"], rtol=1e-9)


def test_members_and_checkpoints_round_trip_bit_for_bit(tmp_path):
    models = [mrnn_jax.mRNN(SPEC, tau=60, seed=s) for s in SEEDS]
    ens = Ensemble.from_models(models)
    for m, member, ckpt in zip(models, ens.members(), ens.to_checkpoints()):
        expected = m.to_checkpoint()
        for name, a in expected.params.items():
            np.testing.assert_array_equal(ckpt.params[name], a, err_msg=name)
        for f in dataclasses.fields(m):
            a, b = getattr(member, f.name), getattr(m, f.name)
            if eqx.is_array(b):
                np.testing.assert_array_equal(a, b, err_msg=f.name)
            else:
                assert a == b, f.name
    paths = []
    for e, ckpt in enumerate(ens.to_checkpoints()):
        paths.append(tmp_path / f"m{e}.npz")
        ckpt.save(paths[-1])
    again = Ensemble.from_checkpoints(paths)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(ens), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batched_initial_condition_stacks_the_members():
    for cls in (mrnn_jax.mRNN, mrnn_jax.ElmanmRNN):
        models = [cls(SPEC, seed=s) for s in SEEDS]
        got = Ensemble.from_models(models).batched_initial_condition(2)
        expected = [m.batched_initial_condition(2) for m in models]
        if cls is mrnn_jax.mRNN:
            for k in range(2):
                np.testing.assert_array_equal(got[k], jnp.stack([x[k] for x in expected]))
        else:
            np.testing.assert_array_equal(got, jnp.stack(expected))


# ----------------------------------------------------------------- forward


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-input", "per-member-input"])
def test_every_member_equals_the_network_run_alone(kind, shared):
    values = {"noise_level_act": [0.0, 0.3], "noise_level_inp": [0.2, 0.05]}
    if kind == "leaky":
        values["tau"] = [60.0, 150.0]
    ens = Ensemble.from_seeds(SPEC, PAIR, model=kind, activation="tanh", member_values=values)
    E, B, T, H, I = 2, 2, 6, 8, 2
    inp = _normal(0, B, T, I) if shared else _normal(0, E, B, T, I)
    stim = _normal(1, E, B, T, H)
    keys = jax.random.split(jax.random.key(5), E)
    state = _normal(2, E, B, H)
    call = dict(x0=state) if kind == "leaky" else dict(h0=state)
    out = ens(inp, stim_input=stim, key=keys, **call)
    for e, m in enumerate(ens.members()):
        alone_call = {k: v[e] for k, v in call.items()}
        alone = m(inp if shared else inp[e], **alone_call, stim_input=stim[e], key=keys[e])
        _assert_tree_close(jax.tree.map(lambda a, e=e: a[e], out), alone, f"member {e}")


def test_explicit_noise_default_state_and_time_major_layout():
    models = [mrnn_jax.mRNN(SPEC, batch_first=False, noise_level_act=0.2, seed=s) for s in SEEDS]
    ens = Ensemble.from_models(models)
    T, B = 5, 2
    inp = _normal(0, T, B, 2)
    eps_x, eps_u = _normal(1, 3, T, B, 8), _normal(2, 3, T, B, 2)
    xs, hs = ens(inp, eps_x=eps_x, eps_u=eps_u)
    assert xs.shape == (3, T, B, 8)
    for e, m in enumerate(models):
        _assert_tree_close((xs[e], hs[e]), m(inp, eps_x=eps_x[e], eps_u=eps_u[e]), f"member {e}")


def test_one_key_is_split_per_member():
    ens = Ensemble.from_seeds(PLAIN, PAIR, dynamics=mrnn_core.Dynamics(noise_level_act=0.3))
    inp, key = _normal(0, 2, 4, 3), jax.random.key(9)
    _assert_tree_close(ens(inp, key=key), ens(inp, key=jax.random.split(key, 2)), "one key")


def test_pure_function_under_jit_matches_simulate():
    models = [mrnn_jax.ElmanmRNN(PLAIN, activation="softplus", seed=s) for s in SEEDS]
    params = {k: jnp.stack([m.params()[k] for m in models]) for k in models[0].params()}
    dyn = models[0].dynamics
    inp, h0 = _normal(0, 3, 2, 4, 3), _normal(1, 2, 7)
    hs = jax.jit(ensemble_simulate, static_argnums=1)(params, dyn, inp, None, h0)
    for e, m in enumerate(models):
        expected = mrnn_jax.simulate({k: v[e] for k, v in params.items()}, dyn, inp[e], h0=h0)
        np.testing.assert_allclose(hs[e], expected, **TOL)


# ----------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind, reverse", [("leaky", "gemm"), ("leaky", "accumulate"),
                                           ("elman", "accumulate")])
def test_gradients_equal_each_member_alone(kind, reverse, monkeypatch):
    """Every trained array (weights, learnable bias, init and tau) and the input, with
    either reverse pass (small outputs: one GEMM after the loop; large: per step)."""
    if reverse == "accumulate":
        monkeypatch.setattr(mrnn_jax.ensemble, "_GEMM_MAX_ELEMENTS", 0)
    values = {"tau": [50.0, 90.0]} if kind == "leaky" else None
    ens = Ensemble.from_seeds(SPEC, PAIR, model=kind, activation="tanh", member_values=values)
    B, T = 2, 7
    inp, target = _normal(0, B, T, 2), _normal(1, 2, B, T, 8)
    keys = jax.random.split(jax.random.key(2), 2)

    def loss_ens(ens, inp):
        hs = _hs(ens(inp, key=keys), kind)
        return jnp.sum(jnp.mean((hs - target) ** 2, axis=(1, 2, 3)))

    def loss_one(m, inp, e):
        return jnp.mean((_hs(m(inp, key=keys[e]), kind) - target[e]) ** 2)

    trainable, frozen = eqx.partition(ens, mrnn_jax.trainable_filter(ens))
    g_ens, g_inp = jax.grad(lambda t, u: loss_ens(eqx.combine(t, frozen), u),
                            argnums=(0, 1))(trainable, inp)
    g_inp_alone = 0.0
    for e, m in enumerate(ens.members()):
        t, f = eqx.partition(m, mrnn_jax.trainable_filter(m))
        g, gi = jax.grad(lambda t, u, f=f, e=e: loss_one(eqx.combine(t, f), u, e),
                         argnums=(0, 1))(t, inp)
        g_inp_alone = g_inp_alone + gi
        names = ("W_rec", "W_inp", "base_firing", "init") + (("log_tau",) if kind == "leaky"
                                                             else ())
        for name in names:
            got, expected = getattr(g_ens.model, name)[e], getattr(g, name)
            assert np.any(np.asarray(expected) != 0), name
            np.testing.assert_allclose(got, expected, err_msg=f"member {e} d{name}", **TOL)
    np.testing.assert_allclose(g_inp, g_inp_alone, **TOL)
    # the frozen projection and the masks get nothing
    rec_trains = mrnn_core.trainable_masks(SPEC)[0] != 0
    assert np.all(np.asarray(g_ens.model.W_rec)[:, ~rec_trains] == 0)


def test_initial_state_gradients_per_member_and_shared():
    ens = Ensemble.from_seeds(PLAIN, PAIR, activation="tanh")
    inp, x0 = _normal(0, 2, 5, 3), _normal(1, 2, 2, 7)

    def loss(x0, h0):
        return jnp.sum(ens(inp, x0, h0)[1] ** 2)

    gx, gh = jax.grad(loss, argnums=(0, 1))(x0, jnp.tanh(x0))
    for e, m in enumerate(ens.members()):
        ex, eh = jax.grad(lambda x, h, m=m: jnp.sum(m(inp, x, h)[1] ** 2),
                          argnums=(0, 1))(x0[e], jnp.tanh(x0[e]))
        np.testing.assert_allclose(gx[e], ex, **TOL)
        np.testing.assert_allclose(gh[e], eh, **TOL)
    g_shared = jax.grad(lambda x: jnp.sum(ens(inp, x)[1] ** 2))(x0[0])
    np.testing.assert_allclose(g_shared, jax.grad(lambda x: jnp.sum(
        ens(inp, jnp.broadcast_to(x, x0.shape))[1] ** 2))(x0[0]), **TOL)


# ----------------------------------------------------------------- training


def test_training_steps_equal_each_member_trained_alone():
    """Clipped Adam, each member its own state: two jitted steps, compiled once."""
    optimiser = optax.chain(optax.clip_by_global_norm(0.05), optax.adam(1e-2))
    ens = Ensemble.from_seeds(SPEC, PAIR, activation="tanh",
                              member_values={"noise_level_act": [0.05, 0.0]})
    traces = []

    def loss(t, f, inp, target, keys):
        return jnp.sum(jnp.mean((eqx.combine(t, f)(inp, key=keys)[1] - target) ** 2,
                                axis=(1, 2, 3)))

    per_member = member_optimiser(optimiser)

    @eqx.filter_jit
    def step(t, f, state, inp, target, keys):
        traces.append(1)
        grads = jax.grad(loss)(t, f, inp, target, keys)
        updates, state = per_member.update(grads, state, t)
        return eqx.apply_updates(t, updates), state

    @eqx.filter_jit
    def step_alone(t, f, state, inp, target, key):
        grads = jax.grad(lambda t: jnp.mean(
            (eqx.combine(t, f)(inp, key=key)[1] - target) ** 2))(t)
        updates, state = optimiser.update(grads, state, t)
        return eqx.apply_updates(t, updates), state

    t, f = eqx.partition(ens, mrnn_jax.trainable_filter(ens))
    state = per_member.init(t)
    alone = []
    for m in ens.members():
        tm, fm = eqx.partition(m, mrnn_jax.trainable_filter(m))
        alone.append([tm, fm, optimiser.init(tm)])
    for i in range(2):
        inp, target = _normal(10 + i, 2, 6, 2), _normal(20 + i, 2, 2, 6, 8)
        keys = jax.random.split(jax.random.key(i), 2)
        t, state = step(t, f, state, inp, target, keys)
        for e, a in enumerate(alone):
            a[0], a[2] = step_alone(a[0], a[1], a[2], inp, target[e], keys[e])
    assert len(traces) == 1
    trained = eqx.combine(t, f)
    for e, (member, (tm, fm, _)) in enumerate(zip(trained.members(), alone)):
        _assert_tree_close(member, eqx.combine(tm, fm), f"member {e}")
    # the members moved, and apart from each other
    assert not np.allclose(trained.model.W_rec, ens.model.W_rec)
    np.testing.assert_array_equal(trained.model.W_rec_mask, ens.model.W_rec_mask)


# ----------------------------------------------------------------- bad input


def test_members_must_share_spec_kind_activation_and_dtype():
    a = mrnn_jax.mRNN(PLAIN, seed=0)
    with pytest.raises(MRNNConfigError, match=r"models\[1\] has a different network spec.*H = 7"):
        Ensemble.from_models([a, mrnn_jax.mRNN(SPEC, seed=1)])
    with pytest.raises(MRNNConfigError, match=r"models\[1\] is a ElmanmRNN, expected a mRNN"):
        Ensemble.from_models([a, mrnn_jax.ElmanmRNN(PLAIN, seed=1)])
    with pytest.raises(MRNNConfigError, match=r"models\[1\] has activation='tanh', expected 'relu'"):
        Ensemble.from_models([a, mrnn_jax.mRNN(PLAIN, activation="tanh", seed=1)])
    f32 = jax.tree.map(lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x,
                       mrnn_jax.mRNN(PLAIN, seed=1))
    with pytest.raises(MRNNConfigError, match=r"models\[1\]\.W_rec: expected .*float64.*float32"):
        Ensemble.from_models([a, f32])
    with pytest.raises(MRNNConfigError, match="at least one model"):
        Ensemble.from_models([])
    with pytest.raises(MRNNConfigError, match=r"models\[0\]: expected an mRNN or ElmanmRNN"):
        Ensemble.from_models(["net"])


def test_from_seeds_refuses_bad_seeds_and_member_values():
    with pytest.raises(MRNNConfigError, match=r"member_values\['tau'\]: expected 3 values.*length 2"):
        Ensemble.from_seeds(PLAIN, SEEDS, member_values={"tau": [1.0, 2.0]})
    with pytest.raises(MRNNConfigError, match="unknown key 'dt'"):
        Ensemble.from_seeds(PLAIN, SEEDS, member_values={"dt": [1, 2, 3]})
    with pytest.raises(MRNNConfigError, match=r"seeds\[1\]: expected a non-negative integer"):
        Ensemble.from_seeds(PLAIN, [0, -1])
    with pytest.raises(MRNNConfigError, match="seeds: expected a non-empty sequence"):
        Ensemble.from_seeds(PLAIN, [])


def test_call_shapes_are_checked_before_any_work():
    ens = Ensemble.from_seeds(PLAIN, SEEDS)
    inp = _normal(0, 2, 4, 3)
    with pytest.raises(MRNNConfigError, match=r"inp: a leading member axis must have E = 3.*\(2, 2, 4, 3\)"):
        ens(_normal(0, 2, 2, 4, 3))
    with pytest.raises(MRNNConfigError, match=r"inp"):
        ens(_normal(0, 2, 4, 5))
    with pytest.raises(MRNNConfigError, match=r"x0: expected \[E, B, H\] .*got 4-D shape \(3, 2, 2, 7\)"):
        ens(inp, _normal(1, 3, 2, 2, 7))
    with pytest.raises(MRNNConfigError, match=r"x0"):
        ens(inp, _normal(1, 3, 5, 7))
    with pytest.raises(MRNNConfigError, match=r"key: expected one PRNG key or E = 3.*\(2,\)"):
        ens(inp, key=jax.random.split(jax.random.key(0), 2))
    with pytest.raises(MRNNConfigError, match="key: noise is drawn from key or given"):
        ens(inp, key=jax.random.key(0), eps_x=_normal(2, 3, 2, 4, 7))
    elman = Ensemble.from_seeds(PLAIN, SEEDS, model="elman")
    with pytest.raises(MRNNConfigError, match="initial state is h0"):
        elman(inp, x0=_normal(1, 3, 2, 7))


def test_pure_function_refuses_unstacked_params_and_mixed_dynamics():
    m = mrnn_jax.mRNN(PLAIN, seed=0)
    params = m.params()
    with pytest.raises(MRNNConfigError, match=r"params\['W_rec'\]: expected the stacked weights \[E, H, H\]"):
        ensemble_simulate(params, m.dynamics, _normal(0, 2, 4, 3), _normal(1, 2, 7))
    stacked = {k: jnp.stack([v, v]) for k, v in params.items()}
    stacked["base_firing"] = stacked["base_firing"][:1]
    with pytest.raises(MRNNConfigError, match=r"params\['base_firing'\]: expected a leading member axis of E = 2"):
        ensemble_simulate(stacked, m.dynamics, _normal(0, 2, 4, 3), _normal(1, 2, 7))
    stacked = {k: jnp.stack([v, v]) for k, v in params.items()}
    mixed = [m.dynamics, dataclasses.replace(m.dynamics, batch_first=False)]
    with pytest.raises(MRNNConfigError, match=r"dynamics\[1\] has batch_first=False, expected True"):
        ensemble_simulate(stacked, mixed, _normal(0, 2, 4, 3), _normal(1, 2, 7))
    with pytest.raises(MRNNConfigError, match="expected 2 Dynamics, one per member"):
        ensemble_simulate(stacked, [m.dynamics] * 3, _normal(0, 2, 4, 3), _normal(1, 2, 7))

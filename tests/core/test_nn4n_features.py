"""Core parts of the nn4n-style features (issue 9): per-region tau, E/I areas
and routes, density and explicit masks, frozen projections, learnable flags,
balanced E/I initialisation, and the reference with a per-unit alpha."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core import reference
from mrnn_core.testing import arrays, dynamics_settings, network_specs

Error = mc.MRNNConfigError


def two_areas():
    return (mc.NetworkSpec()
            .with_ei_area("v1", 10, exc_pct=0.8, tau=50.0)
            .with_ei_area("v2", 5, exc_pct=0.6)
            .with_input_region("cue", 2))


# ---------------------------------------------------------------- E/I areas


def test_ei_area_makes_an_excitatory_and_an_inhibitory_child_under_the_area():
    spec = two_areas()
    regions = {r.name: r for r in spec.recurrent_regions}
    assert [(n, r.num_units, r.sign, r.parent_region) for n, r in regions.items()] == [
        ("v1_exc", 8, "pos", "v1"), ("v1_inh", 2, "neg", "v1"),
        ("v2_exc", 3, "pos", "v2"), ("v2_inh", 2, "neg", "v2")]
    assert regions["v1_inh"].tau == 50.0 and regions["v2_exc"].tau is None
    assert spec.expand("v1") == ("v1_exc", "v1_inh")


def test_ei_area_splits_per_unit_fields_between_its_children():
    spec = mc.NetworkSpec().with_ei_area("a", 5, exc_pct=0.6, base_firing=[1, 2, 3, 4, 5])
    assert [r.base_firing for r in spec.recurrent_regions] == [(1.0, 2.0, 3.0), (4.0, 5.0)]


@pytest.mark.parametrize("n, pct, got", [(4, 0.9, "4 excitatory and 0 inhibitory"),
                                         (4, 0.1, "0 excitatory and 4 inhibitory"),
                                         (10, 1.5, "15 excitatory and -5 inhibitory")])
def test_ei_area_needs_a_unit_in_each_population(n, pct, got):
    spec = mc.NetworkSpec()
    with pytest.raises(Error, match=rf"E/I area 'a': exc_pct={pct} of num_units={n} gives {got}"):
        spec.with_ei_area("a", n, exc_pct=pct)
    assert spec == mc.NetworkSpec()


def test_ei_area_rejects_fields_the_area_fixes():
    with pytest.raises(Error, match=r"'sign' cannot be set on an E/I area"):
        mc.NetworkSpec().with_ei_area("a", 5, sign="neg")


def test_routes_select_population_pairs_between_areas():
    spec = two_areas().with_recurrent_connection("v1", "v2", routes=["E->E", "EI"])
    assert [(c.src_region, c.dst_region) for c in spec.recurrent_connections] == [
        ("v1_exc", "v2_exc"), ("v1_exc", "v2_inh")]
    local = two_areas().with_recurrent_connection("v1", "v1")
    assert len(local.recurrent_connections) == 4
    inputs = two_areas().with_input_connection("cue", "v2", routes="E->E", density=0.5)
    assert [(c.src_region, c.dst_region, c.density) for c in inputs.input_connections] == [
        ("cue", "v2_exc", 0.5)]


def test_bad_routes_are_named():
    with pytest.raises(Error, match=r"unknown route 'E-I'.*'E->E', 'E->I', 'I->E', 'I->I'"):
        two_areas().with_recurrent_connection("v1", "v2", routes=["E-I"])
    with pytest.raises(Error, match=r"routes \['I->I'\] match no pair"):
        two_areas().with_input_connection("cue", "v1", routes=["I->I"])
    with pytest.raises(Error, match=r"mask= needs a single source and destination region"):
        two_areas().with_recurrent_connection("v1", "v2", mask=np.ones((5, 10)))


def test_json_area_and_routes_expand_like_the_builders(tmp_path):
    config = {
        "recurrent_regions": [{"name": "v1", "num_units": 10, "exc_pct": 0.8, "tau": 50.0},
                              {"name": "v2", "num_units": 5, "exc_pct": 0.6}],
        "input_regions": [{"name": "cue", "num_units": 2}],
        "recurrent_connections": [{"src_region": "v1", "dst_region": "v2",
                                   "routes": ["E->E", "E->I"], "density": 0.3}],
        "input_connections": [{"src_region": "cue", "dst_region": "v1_exc",
                               "mask": np.eye(8, 2, dtype=int).tolist(), "trainable": False}],
    }
    path = tmp_path / "areas.json"
    path.write_text(json.dumps(config))
    spec = mc.load_config(str(path))
    built = (two_areas()
             .with_recurrent_connection("v1", "v2", routes=["E->E", "E->I"], density=0.3)
             .with_input_connection("cue", "v1_exc", mask=np.eye(8, 2), trainable=False))
    assert spec == built
    assert mc.spec_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_json_area_errors_name_the_entry():
    config = {"recurrent_regions": [{"name": "v1", "num_units": 2, "exc_pct": 0.8}]}
    with pytest.raises(Error, match=r"config\.recurrent_regions\[0\]: E/I area 'v1': exc_pct=0\.8"):
        mc.spec_from_dict(config)


def test_plain_mrnntorch_networks_write_only_mrnntorch_keys():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2).with_recurrent_connection("a", "a", 0.5)
    d = spec.to_dict()
    assert set(d["recurrent_regions"][0]) == {"name", "num_units", "sign", "base_firing", "init",
                                              "parent_region", "learnable_bias"}
    assert set(d["recurrent_connections"][0]) == {"src_region", "dst_region", "sparsity",
                                                  "zero_connection"}


# ------------------------------------------------------- density and masks


def test_density_keeps_each_entry_with_probability_p():
    spec = (mc.NetworkSpec().with_recurrent_region("a", 200).with_recurrent_region("b", 100)
            .with_recurrent_connection("a", "b", density=0.3))
    mask = mc.build_connectivity(spec, seed=1).W_rec_mask[200:, :200]
    # 20000 Bernoulli(0.3) draws: the kept fraction is within 5 standard errors.
    assert abs(mask.mean() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / mask.size)
    per_column = mask.sum(axis=0)
    assert per_column.min() < per_column.max()  # unlike sparsity, counts vary per column


def test_sparsity_removes_a_fixed_count_per_column_density_does_not():
    spec = (mc.NetworkSpec().with_recurrent_region("a", 20)
            .with_recurrent_connection("a", "a", sparsity=0.25))
    mask = mc.build_connectivity(spec, seed=0).W_rec_mask
    assert set(mask.sum(axis=0)) == {15.0}


@pytest.mark.parametrize("p, expected", [(0.0, 0.0), (1.0, 1.0)])
def test_density_edges(p, expected):
    spec = (mc.NetworkSpec().with_recurrent_region("a", 6)
            .with_recurrent_connection("a", "a", density=p))
    assert np.all(mc.build_connectivity(spec, seed=0).W_rec_mask == expected)
    assert spec.recurrent_connections[0].is_empty == (p == 0.0)


def test_explicit_mask_is_used_as_given_and_signs_follow_the_source():
    block = np.array([[1, 0, 1], [0, 1, 0]])
    spec = (mc.NetworkSpec().with_recurrent_region("a", 3, sign="neg")
            .with_recurrent_region("b", 2)
            .with_recurrent_connection("a", "b", mask=block))
    c = mc.build_connectivity(spec, seed=0)
    np.testing.assert_array_equal(c.W_rec_mask[3:, :3], block)
    np.testing.assert_array_equal(c.W_rec_sign_matrix[3:, :3], -block)
    assert c.W_rec_mask.sum() == block.sum()


def test_a_mask_draws_nothing_so_later_blocks_keep_their_draws():
    base = (mc.NetworkSpec().with_recurrent_region("a", 4).with_recurrent_region("b", 4))
    with_mask = base.with_recurrent_connection("a", "b", mask=np.ones((4, 4)))
    plain = base.with_recurrent_connection("a", "b")
    a = mc.build_connectivity(with_mask.with_recurrent_connection("b", "a", sparsity=0.5), seed=3)
    b = mc.build_connectivity(plain.with_recurrent_connection("b", "a", sparsity=0.5), seed=3)
    np.testing.assert_array_equal(a.W_rec_mask, b.W_rec_mask)


@pytest.mark.parametrize("fields, message", [
    (dict(sparsity=0.5, density=0.5), r"give at most one of sparsity, density and mask, got sparsity and density"),
    (dict(density=0.5, mask=np.ones((2, 3))), r"got density and mask"),
    (dict(density=1.5), r"density must be between 0 and 1 \(or None for dense\), got 1\.5"),
    (dict(mask=np.ones((3, 3))), r"mask must have shape \[n_dst, n_src\] = \[2, 3\], got \[3, 3\]"),
    (dict(mask=np.full((2, 3), 0.5)), r"mask entries must be 0 or 1, got 0\.5"),
    (dict(mask=np.ones(3)), r"mask must be a 2-D array \[n_dst, n_src\] of 0/1, got 1 dimensions"),
])
def test_bad_thinning_is_rejected_and_the_spec_is_unchanged(fields, message):
    spec = mc.NetworkSpec().with_recurrent_region("a", 3).with_recurrent_region("b", 2)
    with pytest.raises(Error, match=message):
        spec.with_recurrent_connection("a", "b", **fields)
    assert spec.recurrent_connections == ()


# ------------------------------------------------------------------ freezing


def test_frozen_projections_have_zero_trainable_blocks():
    spec = (two_areas().with_recurrent_connection("v1", "v1")
            .with_recurrent_connection("v1", "v2")
            .with_input_connection("cue", "v1", routes="EE"))
    rec, inp = mc.trainable_masks(spec.with_frozen(("v1", "v2"), "v1_inh"))
    H = spec.hidden_size
    expected = np.ones((H, H))
    expected[10:15, 0:10] = 0.0    # v1 -> v2, all four pairs
    expected[8:10, 0:10] = 0.0     # into v1_inh (from v1_exc and v1_inh)
    np.testing.assert_array_equal(rec, expected)
    np.testing.assert_array_equal(inp, np.ones((H, 2)))  # cue only reaches v1_exc


def test_a_frozen_region_freezes_inputs_and_later_connections_too():
    spec = two_areas().with_input_connection("cue", "v2").with_frozen("v2")
    spec = spec.with_recurrent_connection("v1_exc", "v2_exc")  # added after freezing
    rec, inp = mc.trainable_masks(spec)
    assert np.all(inp[10:] == 0) and np.all(rec[10:13, 0:8] == 0)
    thawed = spec.with_trainable("v2", trainable=True)
    assert all(np.all(m == 1) for m in mc.trainable_masks(thawed))


def test_freeze_errors_name_the_target():
    spec = two_areas().with_recurrent_connection("v1", "v2")
    with pytest.raises(Error, match=r"target \('v2', 'v1'\).*no declared connection from 'v2' to 'v1'"):
        spec.with_frozen(("v2", "v1"))
    with pytest.raises(Error, match=r"unknown region 'v3'"):
        spec.with_frozen("v3")
    with pytest.raises(Error, match=r"cannot unfreeze a projection into frozen region 'v2_exc'"):
        spec.with_frozen("v2").with_trainable(("v1", "v2_exc"), trainable=True)


def test_learnable_masks_mark_the_flagged_regions():
    spec = (mc.NetworkSpec().with_recurrent_region("a", 2, learnable_tau=True)
            .with_recurrent_region("b", 3, learnable_init=True, learnable_bias=True))
    m = mc.learnable_masks(spec)
    np.testing.assert_array_equal(m["tau"], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(m["init"], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(m["base_firing"], [0, 0, 1, 1, 1])


# --------------------------------------------------------------- time constants


@pytest.mark.parametrize("tau, message", [(0.0, r"tau must be > 0 \(ms\), got 0\.0"),
                                          (-5, r"tau must be > 0"),
                                          ("50", r"tau must be a number, got '50'")])
def test_bad_region_tau_is_rejected(tau, message):
    with pytest.raises(Error, match=rf"recurrent region 'a': {message}"):
        mc.RecurrentRegionSpec("a", 2, tau=tau)


def test_unit_tau_and_uniform_alpha():
    spec = (mc.NetworkSpec().with_recurrent_region("a", 2, tau=50.0)
            .with_recurrent_region("b", 1))
    d = mc.Dynamics(dt=10.0, tau=100.0)
    np.testing.assert_array_equal(mc.unit_tau(spec, d), [50.0, 50.0, 100.0])
    np.testing.assert_array_equal(mc.uniform_alpha(mc.unit_tau(spec, d), d), [0.2, 0.2, 0.1])
    same = mc.uniform_alpha(np.full(3, 50.0), d)
    assert isinstance(same, float) and same == mc.Dynamics(dt=10.0, tau=50.0).alpha
    assert mc.uniform_alpha(np.array([1.0, 2.0]), mc.Dynamics(kind="elman")) == 1.0
    with pytest.raises(Error, match=r"tau: every time constant must be finite and > 0, got -1\.0"):
        mc.uniform_alpha(np.array([1.0, -1.0]), d)


def small_params(tau):
    return {"W_rec": np.array([[0.5, -0.25], [-0.5, 0.75]]), "W_rec_mask": np.ones((2, 2)),
            "W_rec_sign_matrix": np.array([[1.0, -1.0], [1.0, -1.0]]),
            "W_inp": np.array([[1.0], [0.5]]), "W_inp_mask": np.ones((2, 1)),
            "W_inp_sign_matrix": np.ones((2, 1)), "base_firing": np.array([0.1, -0.2]),
            "init": np.zeros(2), "tau": np.asarray(tau, dtype=float)}


def test_reference_step_with_per_unit_alpha_by_hand():
    d = mc.Dynamics(dt=10.0, tau=100.0, activation="tanh", noise_level_act=0.1)
    x0, u, eps = np.array([[0.3, -0.4]]), np.array([[[0.7]]]), np.array([[[0.5, -1.0]]])
    xs, hs = reference.simulate(small_params([20.0, 40.0]), d, u, x0, eps_x=eps)
    h0 = np.tanh(x0[0])
    # W_eff = [[0.5, -0.25], [0.5, -0.75]], W_inp_eff = [1, 0.5]; alpha = [0.5, 0.25]
    for i, (alpha, row, w_in, b) in enumerate([(0.5, (0.5, -0.25), 1.0, 0.1),
                                               (0.25, (0.5, -0.75), 0.5, -0.2)]):
        c_x = math.sqrt(2 * alpha * 0.1**2) / alpha
        drive = row[0] * h0[0] + row[1] * h0[1] + w_in * 0.7 + b + c_x * eps[0, 0, i]
        x1 = x0[0, i] + alpha * (-x0[0, i] + drive)
        assert xs[0, 0, i] == pytest.approx(x1, rel=1e-14)
        assert hs[0, 0, i] == pytest.approx(math.tanh(x1), rel=1e-14)


@given(spec=network_specs(min_inputs=1), dynamics=dynamics_settings(kind="leaky"),
       tau=st.sampled_from([20.0, 37.0, 150.0]), seed=st.integers(0, 2**16))
def test_equal_per_region_tau_gives_exactly_the_scalar_tau_numbers(spec, dynamics, tau, seed):
    regions = tuple(r.__class__(**{**r.__dict__, "tau": tau}) for r in spec.recurrent_regions)
    per_region = mc.NetworkSpec(regions, spec.input_regions, spec.recurrent_connections,
                                spec.input_connections)
    scalar = dynamics.__class__(**{**dynamics.__dict__, "tau": tau})
    a = mc.Checkpoint.initialise(per_region, dynamics, seed=seed).params
    b = mc.Checkpoint.initialise(spec, scalar, seed=seed).params
    rng = np.random.default_rng(seed)
    inp = rng.normal(size=(2, 5, spec.input_size))
    x0 = rng.normal(size=(2, spec.hidden_size))
    eps = rng.normal(size=(2, 5, spec.hidden_size))
    eps_u = rng.normal(size=(2, 5, spec.input_size))  # input noise too: c_u follows the shared tau
    if not dynamics.batch_first:
        inp, eps, eps_u = (a_.transpose(1, 0, 2) for a_ in (inp, eps, eps_u))
    for got, want in zip(reference.simulate(a, dynamics, inp, x0, eps_x=eps, eps_u=eps_u),
                         reference.simulate(b, scalar, inp, x0, eps_x=eps, eps_u=eps_u)):
        np.testing.assert_array_equal(got, want)


def test_params_and_checkpoints_carry_tau_and_old_mappings_get_it_filled(tmp_path):
    spec = (mc.NetworkSpec().with_recurrent_region("a", 2, tau=30.0)
            .with_recurrent_region("b", 1).with_recurrent_connection("a", "b"))
    d = mc.Dynamics(tau=70.0)
    ckpt = mc.Checkpoint.initialise(spec, d, seed=0)
    np.testing.assert_array_equal(ckpt.params["tau"], [30.0, 30.0, 70.0])
    old = {k: v for k, v in ckpt.params.items() if k != "tau"}
    np.testing.assert_array_equal(mc.Checkpoint(spec, d, old).params["tau"], [30.0, 30.0, 70.0])
    path = tmp_path / "old.npz"
    meta = {"__format_version__": np.array(1),
            "__spec__": np.array(json.dumps(spec.to_dict())),
            "__dynamics__": np.array(json.dumps({k: v for k, v in d.to_dict().items()
                                                 if k != "balance_ei"}))}
    np.savez(path, **meta, **old)  # a file written before tau and balance_ei existed
    loaded = mc.Checkpoint.load(path)
    np.testing.assert_array_equal(loaded.params["tau"], [30.0, 30.0, 70.0])
    assert loaded.dynamics.balance_ei is False
    with pytest.raises(Error, match=r"params\['tau'\]: expected shape \(3,\) for this network, got \(2,\)"):
        mc.Checkpoint(spec, d, {**old, "tau": np.ones(2)})


# --------------------------------------------------------------- balanced E/I


@given(spec=network_specs(beyond_mrnntorch=True), constrained=st.booleans(),
       seed=st.integers(0, 2**16))
def test_balance_ei_cancels_each_units_recurrent_input(spec, constrained, seed):
    d = mc.Dynamics(balance_ei=True, rec_constrained=constrained)
    p = mc.Checkpoint.initialise(spec, d, seed=seed).params
    W_eff = mc.effective_weight(p["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"], constrained)
    plain = mc.Checkpoint.initialise(spec, mc.Dynamics(rec_constrained=constrained), seed=seed).params
    W_plain = mc.effective_weight(plain["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"], constrained)
    mixed = (W_plain > 0).any(axis=1) & (W_plain < 0).any(axis=1)
    np.testing.assert_allclose(W_eff[mixed].sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_array_equal(np.sign(W_eff), np.sign(W_plain))  # Dale's signs kept
    np.testing.assert_array_equal(W_eff[~mixed], W_plain[~mixed])    # one-signed rows untouched
    np.testing.assert_array_equal(W_eff[W_plain > 0], W_plain[W_plain > 0])  # E entries untouched


def test_balance_then_spectral_radius_keeps_the_balance():
    spec = (mc.NetworkSpec().with_ei_area("a", 20).with_recurrent_connection("a", "a"))
    d = mc.Dynamics(balance_ei=True, spectral_radius=0.9)
    p = mc.Checkpoint.initialise(spec, d, seed=0).params
    W = mc.effective_weight(p["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"], True)
    np.testing.assert_allclose(W.sum(axis=1), 0.0, atol=1e-12)
    assert mc.spectral_radius(W) == pytest.approx(0.9, rel=1e-9)


def test_balance_ei_by_hand():
    W_eff = np.array([[0.2, -0.1, -0.3], [0.4, 0.1, 0.0], [0.0, -0.5, 0.0]])
    out = mc.balance_ei(np.abs(W_eff), W_eff)
    # row 0: E = 0.2, I = 0.4 -> inhibitory entries x 0.5; rows 1 and 2 are one-signed
    np.testing.assert_allclose(out, [[0.2, 0.05, 0.15], [0.4, 0.1, 0.0], [0.0, 0.5, 0.0]],
                               rtol=1e-15)


def test_reference_rejects_nothing_new_for_arrays_drawn_with_every_feature():
    # every drawn nn4n-style spec initialises and runs through the reference
    @given(spec=network_specs(beyond_mrnntorch=True, min_inputs=1),
           dynamics=dynamics_settings(balance_ei=True), inp=arrays((2, 3, 8)))
    def run(spec, dynamics, inp):
        p = mc.Checkpoint.initialise(spec, dynamics, seed=0).params
        u = inp[..., :spec.input_size] if dynamics.batch_first else inp.transpose(1, 0, 2)[..., :spec.input_size]
        state = np.zeros((2, spec.hidden_size))
        out = reference.simulate(p, dynamics, u, state, h0=state)
        hs = out[1] if dynamics.kind == "leaky" else out
        assert np.all(np.isfinite(hs))
    run()


def test_describe_names_the_nn4n_style_settings():
    spec = (mc.NetworkSpec()
            .with_ei_area("v1", 10, tau=30.0, learnable_tau=True, learnable_init=True)
            .with_ei_area("v2", 5, trainable=False).with_input_region("u", 2)
            .with_recurrent_connection("v1", "v2", routes=["EE"], density=0.3)
            .with_recurrent_connection("v2", "v1", routes=["EE"], trainable=False)
            .with_input_connection("u", "v1_exc", mask=[[1, 0]] * 8))
    text = mc.describe(spec, mc.Dynamics(balance_ei=True))
    assert "balance_ei=True" in text
    assert "v1_exc 8 pos [v1] x0 learnable tau=30 learnable" in text
    assert "v2_inh 1 neg [v2] frozen" in text
    assert "2 recurrent (1 by density, 1 frozen), 1 input (1 masked)" in text


def test_input_noise_constant_of_fixed_time_constants_is_that_of_their_common_alpha():
    """An [H] alpha of fixed time constants gives the shared-alpha constant when
    every entry is equal and Dynamics.tau's when they differ; a 0-d array acts as the float."""
    d = mc.Dynamics(kind="leaky", dt=1.0, tau=50.0, noise_level_inp=0.3)
    shared = d.inp_noise_for(1 / 20)
    assert shared == pytest.approx(np.sqrt(2 * 0.3**2 * 20)) and shared != d.inp_noise_const
    assert float(d.inp_noise_for(np.full(4, 1 / 20))) == pytest.approx(shared, rel=1e-15)
    assert float(d.inp_noise_for(np.array([1 / 20, 1 / 20, 1 / 30]))) == d.inp_noise_const
    assert float(d.inp_noise_for(np.asarray(1 / 20))) == pytest.approx(shared, rel=1e-15)
    for alpha in (np.full(3, 0.05, np.float32), np.array([0.05, 0.1], np.float32)):
        assert d.inp_noise_for(alpha).dtype == np.float32  # the array's own precision
    elman = mc.Dynamics(kind="elman", noise_level_inp=0.3)
    assert elman.inp_noise_for(np.full(4, 0.1)) == elman.inp_noise_const


def test_a_learned_time_constant_never_moves_the_input_noise_constant():
    """docs/semantics.md: a learned tau gives Dynamics.tau's c_u whatever its
    values, equal or not; pure functions learn it from params holding log_tau."""
    d = mc.Dynamics(kind="leaky", dt=1.0, tau=50.0, noise_level_inp=0.3)
    for alpha in (1 / 20, np.full(4, 1 / 20), np.array([1 / 20, 1 / 30])):
        assert float(d.inp_noise_for(alpha, learned_tau=True)) == d.inp_noise_const
    fixed = {"tau": np.full(4, 20.0)}
    assert mc.input_noise_constant(fixed, d, 1 / 20) == d.inp_noise_for(1 / 20)
    assert mc.input_noise_constant({**fixed, "log_tau": np.log(fixed["tau"])}, d,
                                   1 / 20) == d.inp_noise_const


@pytest.mark.parametrize("learn", [False, True])
def test_a_checkpoint_holds_log_tau_exactly_when_some_region_learns_its_tau(learn):
    spec = mc.NetworkSpec().with_recurrent_region("a", 3, tau=20.0, learnable_tau=learn)
    d = mc.Dynamics(kind="leaky", dt=1.0, tau=50.0)
    ckpt = mc.Checkpoint.initialise(spec, d, seed=0)
    assert ("log_tau" in ckpt.params) is learn
    if learn:
        np.testing.assert_array_equal(ckpt.params["log_tau"], np.log(ckpt.params["tau"]))
    # a stray log_tau of a network whose tau is fixed is dropped, a missing one is added
    params = {**ckpt.params, "log_tau": np.zeros(3)} if not learn else {
        k: v for k, v in ckpt.params.items() if k != "log_tau"}
    again = mc.Checkpoint(spec, d, params)
    assert ("log_tau" in again.params) is learn
    assert mc.learns_tau(spec, d) is learn
    assert not mc.learns_tau(spec, mc.Dynamics(kind="elman"))

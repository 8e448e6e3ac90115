"""Region helpers: pure functions of the connectivity, and the model's methods.

Expected values are built from each region's ``num_units`` and the order of
the spec, not from the helpers' own index arithmetic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
from .jax_cases import SMALL_SPEC
from mrnn_core.testing import network_specs


def _units(spec):
    """Region name -> its unit indices, from the sizes in insertion order."""
    out, start = {}, 0
    for r in spec.recurrent_regions:
        out[r.name] = np.arange(start, start + r.num_units)
        start += r.num_units
    start = 0
    for r in spec.input_regions:
        out[r.name] = np.arange(start, start + r.num_units)
        start += r.num_units
    return out


def _children(spec, name):
    kids = [r.name for r in spec.recurrent_regions if r.parent_region == name]
    return kids or [name]


def _indices(spec, names):
    units, seen, out = _units(spec), set(), []
    for name in names:
        for child in _children(spec, name):
            if child not in seen:
                seen.add(child)
                out.append(units[child])
    return np.concatenate(out)


@st.composite
def specs_and_names(draw):
    spec = draw(network_specs(max_units=6))
    choices = list(spec.recurrent_names) + list(spec.parents)
    names = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=4, unique=True))
    return spec, names


@given(specs_and_names(), st.integers(0, 2**31))
def test_region_activity_keeps_the_callers_order(case, seed):
    spec, names = case
    connectivity = mrnn_core.build_connectivity(spec, seed=0)
    act = np.random.default_rng(seed).standard_normal((2, 3, spec.hidden_size))
    got = mrnn_jax.region_activity(connectivity, jnp.asarray(act), *names)
    np.testing.assert_array_equal(got, act[..., _indices(spec, names)])
    np.testing.assert_array_equal(mrnn_jax.region_activity(connectivity, act), act)


@given(specs_and_names(), st.data())
def test_projection_and_weight_subset(case, data):
    spec, names = case
    connectivity = mrnn_core.build_connectivity(spec, seed=0)
    H, I = spec.hidden_size, spec.input_size
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    W_rec, W_inp = rng.standard_normal((H, H)), rng.standard_normal((H, I))
    to = names[0]
    from_ = data.draw(st.sampled_from(list(spec.recurrent_names) + list(spec.parents)
                                      + list(spec.input_names)))
    W = W_inp if from_ in spec.input_names else W_rec
    rows, cols = _indices(spec, [to]), _indices(spec, [from_])
    np.testing.assert_array_equal(mrnn_jax.projection(connectivity, W, to, from_),
                                  W[np.ix_(rows, cols)])
    network_order = np.unique(_indices(spec, names))
    np.testing.assert_array_equal(mrnn_jax.weight_subset(connectivity, W_rec, *names),
                                  W_rec[np.ix_(network_order, network_order)])


def test_region_indices_tonic_input_and_initial_condition():
    c = mrnn_core.build_connectivity(SMALL_SPEC, seed=0)
    assert [mrnn_jax.region_indices(c, n) for n in ("exc", "inh", "thal", "cue")] == \
        [(0, 5), (5, 8), (8, 12), (0, 2)]
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"'ctx' is a parent region"):
        mrnn_jax.region_indices(c, "ctx")
    params = mrnn_core.Checkpoint.initialise(SMALL_SPEC, seed=0).params
    np.testing.assert_array_equal(mrnn_jax.tonic_input(params), [0.0] * 8 + [0.1] * 4)
    np.testing.assert_array_equal(mrnn_jax.initial_condition(c), [0.2] * 5 + [-0.1] * 3 + [0.0] * 4)
    np.testing.assert_array_equal(mrnn_jax.initial_condition(SMALL_SPEC), mrnn_jax.initial_condition(c))


def test_model_methods_use_the_effective_weights():
    model = mrnn_jax.mRNN(SMALL_SPEC, rec_constrained=False, seed=3)
    p = model.to_checkpoint().params
    W_rec = mrnn_core.effective_weight(p["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"], False)
    W_inp = mrnn_core.effective_weight(p["W_inp"], p["W_inp_mask"], p["W_inp_sign_matrix"], True)
    u = _units(SMALL_SPEC)
    ctx = np.concatenate([u["exc"], u["inh"]])
    np.testing.assert_array_equal(model.get_projection("ctx", "thal"), W_rec[np.ix_(ctx, u["thal"])])
    np.testing.assert_array_equal(model.get_projection("thal", "cue"), W_inp[u["thal"]])
    np.testing.assert_array_equal(model.get_weight_subset("thal", "inh"),
                                  W_rec[np.ix_(np.r_[u["inh"], u["thal"]], np.r_[u["inh"], u["thal"]])])
    own = np.eye(12)
    np.testing.assert_array_equal(model.get_weight_subset("exc", W=own), np.eye(5))
    hs = np.random.default_rng(0).standard_normal((2, 4, 12))
    np.testing.assert_array_equal(model.get_region_activity(hs, "thal", "ctx"),
                                  hs[..., np.r_[u["thal"], ctx]])
    assert model.get_region_indices("thal") == (8, 12)
    assert (model.get_region_size("ctx"), model.get_region_size("cue")) == (8, 2)
    assert model.hid_regions == ["exc", "inh", "thal"] and model.inp_regions == ["cue"]
    assert (model.total_num_units, model.total_num_inputs) == (12, 2)
    np.testing.assert_array_equal(model.tonic_inp, p["base_firing"])


def test_helpers_work_inside_jit():
    model = mrnn_jax.mRNN(SMALL_SPEC, seed=3)
    hs = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 12)))

    @jax.jit
    def readout(model, hs):
        return (model.get_region_activity(hs, "thal", "exc").sum()
                + model.get_projection("ctx", "cue").sum() + model.get_weight_subset("ctx").sum())

    eager = (model.get_region_activity(hs, "thal", "exc").sum()
             + model.get_projection("ctx", "cue").sum() + model.get_weight_subset("ctx").sum())
    np.testing.assert_allclose(readout(model, hs), eager, rtol=1e-14)


@pytest.mark.parametrize("call, match", [
    (lambda c: mrnn_jax.region_activity(c, np.zeros((2, 12)), "nope"),
     r"unknown region 'nope'; known regions and parents: 'exc', 'inh', 'thal', 'ctx'"),
    (lambda c: mrnn_jax.region_activity(c, np.zeros((2, 12)), "cue"),
     r"'cue' is an input region, expected a recurrent region or parent"),
    (lambda c: mrnn_jax.region_activity(c, np.zeros((2, 11)), "exc"),
     r"act: expected activity with H = 12 units in the last axis, got shape \(2, 11\)"),
    (lambda c: mrnn_jax.projection(c, np.zeros((12, 12)), "exc", "cue"),
     r"W: expected the input matrix \[H, I\] \(from_='cue' is an input region\) of shape "
     r"\(12, 2\), got \(12, 12\)"),
    (lambda c: mrnn_jax.weight_subset(c, np.zeros((12, 2)), "exc"),
     r"W: expected a recurrent matrix \[H, H\] of shape \(12, 12\), got \(12, 2\)"),
    (lambda c: mrnn_jax.projection(c, np.zeros((12, 12)), "cue", "exc"),
     r"unknown region 'cue'; 'cue' is an input region"),
    (lambda c: mrnn_jax.region_indices({"spec": c.spec}, "exc"),
     r"connectivity: expected a mrnn_core\.Connectivity or NetworkSpec, got dict"),
])
def test_bad_region_requests_name_the_culprit(call, match):
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        call(mrnn_core.build_connectivity(SMALL_SPEC, seed=0))


@given(specs_and_names(), st.integers(0, 2**31))
def test_combine_states_inverts_a_split(case, seed):
    spec, names = case
    model = mrnn_jax.mRNN(spec, seed=0)
    part_a = list(dict.fromkeys(model._structure.expand(*names)))
    part_b = model.get_excluded_hid_regions(*names)
    assert sorted(part_a + part_b) == sorted(spec.recurrent_names)
    assert part_b == [r for r in spec.recurrent_names if r not in part_a]  # network order
    h = np.random.default_rng(seed).standard_normal((2, 3, spec.hidden_size))
    if not part_b:  # every region named: nothing to combine with
        return
    a, b = model.get_region_activity(h, *part_a), model.get_region_activity(h, *part_b)
    np.testing.assert_array_equal(model.combine_states(a, b, part_a, part_b), h)
    np.testing.assert_array_equal(model.combine_states(b, a, part_b, part_a, keep_dims=False),
                                  h.reshape(-1, spec.hidden_size))


def test_combine_states_is_differentiable_and_jits():
    model = mrnn_jax.mRNN(SMALL_SPEC, seed=0)
    a, b = jnp.arange(4.0), jnp.arange(8.0) + 10  # thal (4 units), then ctx (exc, inh)

    def f(a, b):
        return jnp.sum(jnp.arange(12.0) * model.combine_states(a, b, ["thal"], ["ctx"]))

    np.testing.assert_array_equal(jax.jit(lambda a, b: model.combine_states(a, b, ["thal"], ["ctx"]))(a, b),
                                  np.r_[np.arange(10.0, 18.0), np.arange(4.0)])
    ga, gb = jax.grad(f, argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, np.arange(8.0, 12.0))  # thal sits at units 8..11
    np.testing.assert_array_equal(gb, np.arange(8.0))


def test_named_and_excluded_regions():
    model = mrnn_jax.mRNN(SMALL_SPEC, seed=0)
    named = list(model.named_rec_regions("m."))
    assert [n for n, _ in named] == ["m.exc", "m.inh", "m.thal"]
    assert [r.num_units for _, r in named] == [5, 3, 4]
    assert [(n, r.num_units) for n, r in model.named_inp_regions()] == [("cue", 2)]
    assert model.get_excluded_hid_regions("ctx") == ["thal"]
    assert model.get_excluded_hid_regions("thal", "exc") == ["inh"]
    assert model.get_excluded_inp_regions("cue") == [] and model.get_excluded_inp_regions() == ["cue"]


@pytest.mark.parametrize("call, match", [
    (lambda m: m.combine_states(jnp.zeros(8), jnp.zeros(7), ["ctx"], ["exc", "thal"]),
     r"combine_states: region lists must be disjoint; both name \['exc'\]"),
    (lambda m: m.combine_states(jnp.zeros(5), jnp.zeros(4), ["exc"], ["thal"]),
     r"combine_states: regions \['inh'\] are in neither list"),
    (lambda m: m.combine_states(jnp.zeros(7), jnp.zeros(4), ["ctx"], ["thal"]),
     r"combine_states: states_a should hold 8 units for regions \['exc', 'inh'\], got last dimension 7"),
    (lambda m: m.combine_states(jnp.zeros((2, 8)), jnp.zeros((3, 4)), ["ctx"], ["thal"]),
     r"states_a and states_b must agree on every dimension but the last, got \(2, 8\) and \(3, 4\)"),
    (lambda m: m.get_excluded_inp_regions("thal"),
     r"get_excluded_inp_regions: 'thal' is not an input region; known input regions: 'cue'"),
    (lambda m: m.get_excluded_hid_regions("cortex"), r"unknown region 'cortex'"),
])
def test_bad_combine_and_exclude_requests_name_the_culprit(call, match):
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        call(mrnn_jax.mRNN(SMALL_SPEC, seed=0))

"""NetworkSpec: building in code, defaults, layout sizes, parents, immutability."""

import dataclasses

import pytest
from hypothesis import given

import mrnn_core as mc
from mrnn_core.testing import network_specs


def small_network_in_code():
    return (mc.NetworkSpec()
            .with_recurrent_region("ctx_exc", 4, sign="exc", parent_region="ctx")
            .with_recurrent_region("ctx_inh", 2, sign="inhib", parent_region="ctx",
                                   base_firing=0.5)
            .with_recurrent_region("thal", 3, init=[0.1, 0.2, 0.3], learnable_bias=True)
            .with_input_region("cue", 2)
            .with_recurrent_connection("ctx_exc", "thal", sparsity=0.5)
            .with_recurrent_connection("thal", "ctx_exc")
            .with_recurrent_connection("ctx_inh", "ctx_exc", zero_connection=True)
            .with_input_connection("cue", "ctx_exc"))


SMALL_NETWORK_JSON = {
    "recurrent_regions": [
        {"name": "ctx_exc", "num_units": 4, "sign": "exc", "parent_region": "ctx"},
        {"name": "ctx_inh", "num_units": 2, "sign": "inhib", "parent_region": "ctx",
         "base_firing": 0.5},
        {"name": "thal", "num_units": 3, "init": [0.1, 0.2, 0.3], "learnable_bias": True},
    ],
    "input_regions": [{"name": "cue", "num_units": 2}],
    "recurrent_connections": [
        {"src_region": "ctx_exc", "dst_region": "thal", "sparsity": 0.5},
        {"src_region": "thal", "dst_region": "ctx_exc"},
        {"src_region": "ctx_inh", "dst_region": "ctx_exc", "zero_connection": True},
    ],
    "input_connections": [{"src_region": "cue", "dst_region": "ctx_exc"}],
}


def test_building_in_code_equals_loading_the_same_json():
    assert small_network_in_code() == mc.load_config(SMALL_NETWORK_JSON)


def test_json_and_code_can_be_mixed():
    regions_only = {key: SMALL_NETWORK_JSON[key]
                    for key in ("recurrent_regions", "input_regions")}
    mixed = (mc.load_config(regions_only)
             .with_recurrent_connection("ctx_exc", "thal", sparsity=0.5)
             .with_recurrent_connection("thal", "ctx_exc")
             .with_recurrent_connection("ctx_inh", "ctx_exc", zero_connection=True)
             .with_input_connection("cue", "ctx_exc"))
    assert mixed == small_network_in_code()


def test_sizes_count_units_in_insertion_order():
    spec = small_network_in_code()
    assert spec.hidden_size == 4 + 2 + 3
    assert spec.input_size == 2
    assert spec.recurrent_names == ("ctx_exc", "ctx_inh", "thal")
    assert spec.input_names == ("cue",)


def test_sign_aliases_are_stored_canonically():
    spec = small_network_in_code()
    assert spec.region("ctx_exc").sign == "pos"
    assert spec.region("ctx_inh").sign == "neg"
    assert mc.load_config({"input_regions": [{"name": "u", "num_units": 1,
                                              "sign": "inhib"}]}).region("u").sign == "neg"


def test_defaults_follow_the_semantics():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2).with_input_region("u", 1)
    a, u = spec.region("a"), spec.region("u")
    assert (a.sign, a.base_firing, a.init, a.parent_region, a.learnable_bias) == \
        ("pos", 0.0, 0.0, None, False)
    assert u.sign == "pos"
    c = mc.ConnectionSpec("a", "a")
    assert (c.sparsity, c.zero_connection) == (None, False)


def test_per_unit_values_are_kept_per_unit():
    thal = small_network_in_code().region("thal")
    assert thal.init == (0.1, 0.2, 0.3)
    assert thal.base_firing == 0.0


def test_parents_group_children_in_insertion_order():
    spec = small_network_in_code()
    assert spec.parents == {"ctx": ("ctx_exc", "ctx_inh")}
    assert spec.expand("thal", "ctx") == ("thal", "ctx_exc", "ctx_inh")
    assert spec.expand("ctx_inh", "ctx") == ("ctx_inh", "ctx_exc")


def test_with_methods_return_a_new_spec_and_leave_the_original():
    before = mc.NetworkSpec().with_recurrent_region("a", 2)
    snapshot = before.to_dict()
    after = before.with_recurrent_region("b", 3).with_recurrent_connection("a", "b")
    assert after is not before
    assert before.to_dict() == snapshot
    assert before.hidden_size == 2 and after.hidden_size == 5


def test_specs_are_frozen():
    spec = small_network_in_code()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.recurrent_regions = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.recurrent_regions[0].num_units = 7


@given(network_specs())
def test_rebuilding_a_spec_through_the_with_methods_gives_an_equal_spec(spec):
    rebuilt = mc.NetworkSpec()
    for r in spec.recurrent_regions:
        rebuilt = rebuilt.with_recurrent_region(
            r.name, r.num_units, sign=r.sign, base_firing=r.base_firing, init=r.init,
            parent_region=r.parent_region, learnable_bias=r.learnable_bias)
    for r in spec.input_regions:
        rebuilt = rebuilt.with_input_region(r.name, r.num_units, sign=r.sign)
    for c in spec.recurrent_connections:
        rebuilt = rebuilt.with_recurrent_connection(c.src_region, c.dst_region,
                                                    c.sparsity, c.zero_connection)
    for c in spec.input_connections:
        rebuilt = rebuilt.with_input_connection(c.src_region, c.dst_region,
                                                c.sparsity, c.zero_connection)
    assert rebuilt == spec
    assert rebuilt.hidden_size == sum(r.num_units for r in spec.recurrent_regions)
    assert rebuilt.input_size == sum(r.num_units for r in spec.input_regions)


def test_numpy_scalars_and_arrays_are_accepted_per_unit():
    import numpy as np

    from mrnn_core import RecurrentRegionSpec

    assert RecurrentRegionSpec("a", 2, base_firing=np.float64(0.5)).base_firing == 0.5
    assert RecurrentRegionSpec("a", 2, init=np.array(0.25)).init == 0.25
    assert RecurrentRegionSpec("a", 2, base_firing=np.array([0.1, 0.2])).base_firing == (0.1, 0.2)

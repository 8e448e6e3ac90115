"""Region, parent and input-region names form one namespace (SEMANTICS.md sections 1 and 5).

A name that meant two things made lookups silently pick the wrong units:
with regions ``a`` (parent ``b``) and ``b``, ``"b"`` selected region a's
units. Such specs are refused on every route; valid ones resolve every name
to exactly its own units.
"""

import json

import numpy as np
import pytest
from hypothesis import given

import mrnn_core as mc
from mrnn_core.testing import network_specs

RULE = r"expected a group name that no region uses \(region, parent and input-region names form one namespace\)"


def regions_json(*regions, inputs=()):
    return {"recurrent_regions": [{"name": n, "num_units": k, **({"parent_region": p} if p else {})}
                                  for n, k, p in regions],
            "input_regions": [{"name": n, "num_units": k} for n, k in inputs]}


# (config, the message that names both culprits)
ALIASES = [
    (regions_json(("a", 2, "b"), ("b", 3, None)),
     r"recurrent region 'a': parent_region 'b' is the name of recurrent region 'b'; " + RULE),
    (regions_json(("a", 2, None), ("b", 3, "a")),
     r"recurrent region 'b': parent_region 'a' is the name of recurrent region 'a'"),
    (regions_json(("a", 2, "a")),
     r"recurrent region 'a': parent_region 'a' is the region's own name; " + RULE),
    (regions_json(("a", 2, "cue"), inputs=[("cue", 1)]),
     r"recurrent region 'a': parent_region 'cue' is the name of input region 'cue'"),
    (regions_json(("a", 2, "b"), ("b", 3, "a")),
     r"recurrent region 'a': parent_region 'b': parent regions form a cycle \('a' -> 'b' -> 'a'\)"),
    (regions_json(("a", 1, "b"), ("b", 1, "c"), ("c", 1, "a")),
     r"recurrent region .a.: parent_region .b.: parent regions form a cycle \(.a. -> .b. -> .c. -> .a.\)"),
    # an E/I area creates the parent 'alm' and children 'alm_exc' / 'alm_inh'
    ({"recurrent_regions": [{"name": "alm", "num_units": 2},
                            {"name": "alm", "num_units": 5, "exc_pct": 0.8}]},
     r"recurrent region 'alm_exc': parent_region 'alm' is the name of recurrent region 'alm'"),
    ({"recurrent_regions": [{"name": "alm", "num_units": 5, "exc_pct": 0.8},
                            {"name": "x", "num_units": 1, "parent_region": "alm_inh"}]},
     r"recurrent region 'x': parent_region 'alm_inh' is the name of recurrent region 'alm_inh'"),
    ({"recurrent_regions": [{"name": "cue", "num_units": 5, "exc_pct": 0.8}],
      "input_regions": [{"name": "cue", "num_units": 1}]},
     r"recurrent region 'cue_exc': parent_region 'cue' is the name of input region 'cue'"),
]


@pytest.mark.parametrize("config, message", ALIASES)
def test_a_name_meaning_two_things_is_refused_from_a_dict_and_a_file(config, message, tmp_path):
    with pytest.raises(mc.MRNNConfigError, match=r"^net: " + message):
        mc.spec_from_dict(config, source="net")
    path = tmp_path / "net.json"
    path.write_text(json.dumps(config))
    with pytest.raises(mc.MRNNConfigError, match=message) as err:
        mc.load_config(path)
    assert str(path) in str(err.value)


def test_the_builder_refuses_the_name_whichever_comes_first():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2, parent_region="b")
    with pytest.raises(mc.MRNNConfigError, match="parent_region 'b' is the name of recurrent region 'b'"):
        spec.with_recurrent_region("b", 3)
    with pytest.raises(mc.MRNNConfigError, match="parent_region 'b' is the name of input region 'b'"):
        spec.with_input_region("b", 3)
    grouped = mc.NetworkSpec().with_recurrent_region("ctx", 2)
    with pytest.raises(mc.MRNNConfigError, match="parent_region 'ctx' is the name of recurrent region 'ctx'"):
        grouped.with_recurrent_region("x", 1, parent_region="ctx")
    with pytest.raises(mc.MRNNConfigError, match="parent_region 'ctx' is the name of recurrent region 'ctx'"):
        grouped.with_ei_area("ctx", 4, exc_pct=0.5)
    assert spec.recurrent_names == ("a",) and grouped.recurrent_names == ("ctx",)


def test_regions_may_share_a_parent_and_a_parent_may_be_any_unused_name():
    spec = mc.spec_from_dict(regions_json(("exc", 3, "ctx"), ("thal", 2, None), ("inh", 2, "ctx"),
                                          inputs=[("cue", 1)]))
    assert spec.parents == {"ctx": ("exc", "inh")}


def test_the_name_that_aliased_now_selects_its_own_units():
    # The old failure: region 'b' looked up through a parent of the same name
    # returned region a's units. With a distinct parent name every lookup is exact.
    spec = mc.spec_from_dict(regions_json(("a", 2, "grp"), ("b", 3, None), ("c", 1, "grp")))
    conn = mc.build_connectivity(spec, seed=0)
    hs = np.arange(6.0)
    assert list(hs[conn.unit_indices("b")]) == [2.0, 3.0, 4.0]
    assert list(hs[conn.unit_indices("a")]) == [0.0, 1.0]
    assert list(hs[conn.unit_indices("grp")]) == [0.0, 1.0, 5.0]


@given(network_specs(beyond_mrnntorch=True, min_inputs=1))
def test_every_name_of_a_valid_spec_means_one_set_of_units(spec):
    regions, parents, inputs = set(spec.recurrent_names), set(spec.parents), set(spec.input_names)
    assert not regions & parents and not regions & inputs and not parents & inputs
    conn = mc.build_connectivity(spec, seed=0)
    start = 0
    for r in spec.recurrent_regions:
        assert list(conn.unit_indices(r.name)) == list(range(start, start + r.num_units))
        start += r.num_units
    for parent, children in spec.parents.items():
        expected = [i for r in spec.recurrent_regions if r.parent_region == parent
                    for i in conn.unit_indices(r.name)]
        assert sorted(conn.unit_indices(parent)) == expected

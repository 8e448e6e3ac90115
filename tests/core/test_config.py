"""mRNNTorch's JSON format: reading it as is, writing it back, and the example config."""

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given

import mrnn_core as mc
from mrnn_core.testing import network_specs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "configs" / "cbgt_loop.json"


@given(network_specs())
def test_to_dict_then_load_gives_an_equal_spec(spec):
    as_json_text = json.dumps(spec.to_dict())
    assert mc.load_config(json.loads(as_json_text)) == spec


@given(network_specs())
def test_save_then_load_gives_an_equal_spec(spec):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.json"
        spec.save(path)
        assert mc.load_config(path) == spec
        assert mc.load_config(str(path)) == spec


def test_a_spec_passes_through_load_config_unchanged():
    spec = mc.NetworkSpec().with_recurrent_region("a", 1)
    assert mc.load_config(spec) is spec


def test_missing_fields_take_the_documented_defaults():
    spec = mc.load_config({
        "recurrent_regions": [{"num_units": 2}, {"num_units": 1, "sign": "neg"}],
        "input_regions": [{"name": "u", "num_units": 1}],
        "recurrent_connections": [{"src_region": "region_0", "dst_region": "region_1",
                                   "sparsity": None}],
    })
    assert spec.recurrent_names == ("region_0", "region_1")
    assert spec.region("region_0").sign == "pos"
    assert spec.region("u").sign == "pos"
    assert spec.recurrent_connections[0].sparsity is None
    assert spec.input_connections == ()


def test_device_keys_are_accepted_and_ignored():
    with_device = mc.load_config({
        "recurrent_regions": [{"name": "a", "num_units": 2, "device": "cuda"}],
        "input_regions": [{"name": "u", "num_units": 1, "device": "cpu"}],
    })
    without = mc.NetworkSpec().with_recurrent_region("a", 2).with_input_region("u", 1)
    assert with_device == without


def test_keys_starting_with_two_underscores_are_comments_everywhere():
    config = {
        "__comment": "top-level note",
        "recurrent_regions": [{"name": "a", "num_units": 2, "__why": "a note"}],
        "input_regions": [{"name": "u", "num_units": 1, "__": "empty comment key"}],
        "recurrent_connections": [{"src_region": "a", "dst_region": "a", "__n": 1}],
        "input_connections": [{"src_region": "u", "dst_region": "a", "__n": [1, 2]}],
    }
    expected = (mc.NetworkSpec().with_recurrent_region("a", 2).with_input_region("u", 1)
                .with_recurrent_connection("a", "a").with_input_connection("u", "a"))
    assert mc.load_config(config) == expected


def test_the_example_loop_has_the_documented_regions_and_parents():
    spec = mc.load_config(EXAMPLE)
    assert set(spec.recurrent_names) == {"d1", "d2", "gpe", "stn", "snr", "thal",
                                         "alm_exc", "alm_inhib"}
    assert spec.input_names == ("cue",)
    assert spec.parents == {"striatum": ("d1", "d2"), "alm": ("alm_exc", "alm_inhib")}
    signs = {r.name: r.sign for r in spec.recurrent_regions}
    assert {name for name, sign in signs.items() if sign == "pos"} == {"stn", "thal", "alm_exc"}


def test_the_example_loop_has_sparse_and_dense_blocks():
    spec = mc.load_config(EXAMPLE)
    connectivity = mc.build_connectivity(spec, seed=0)
    M = connectivity.W_rec_mask
    sparse = dense = 0
    for c in spec.recurrent_connections:
        block = M[connectivity.region_slice(c.dst_region), connectivity.region_slice(c.src_region)]
        if c.sparsity is None:
            assert block.all()
            dense += 1
        else:
            assert 0 < block.sum() < block.size
            sparse += 1
    assert sparse > 0 and dense > 0
    # The input stream has both kinds too.
    sparsities = {c.dst_region: c.sparsity for c in spec.input_connections}
    assert None in sparsities.values() and any(s for s in sparsities.values())
    assert np.isin(connectivity.W_inp_mask, (0.0, 1.0)).all()

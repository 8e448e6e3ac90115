"""Building networks as mRNNTorch users do: config, by hand, or mixed.

Covers the region classes, finalising the recurrent and input sides
independently, and every building error (with the network left unchanged).
"""

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core.testing import dynamics_settings, network_specs
from mrnn_torch import ElmanmRNN, MRNNConfigError, mRNN
from mrnn_torch.region import Connection, InputRegion, RecurrentRegion, Region
from .torch_helpers import CLASSES, assume_loop, two_region_spec


def _replay(model, spec, rec_first: bool):
    """Build ``spec`` by hand; with ``rec_first`` the recurrent side is
    finalised before any input region exists (mRNNTorch allows this order)."""
    for r in spec.recurrent_regions:
        model.add_recurrent_region(r.name, r.num_units, r.sign, r.base_firing, r.init,
                                   parent_region=r.parent_region, learnable_bias=r.learnable_bias)
    for c in spec.recurrent_connections:
        model.add_recurrent_connection(c.src_region, c.dst_region, c.sparsity, c.zero_connection)
    if rec_first:
        model.finalize_rec_connectivity()
    for r in spec.input_regions:
        model.add_input_region(r.name, r.num_units, r.sign)
    for c in spec.input_connections:
        model.add_input_connection(c.src_region, c.dst_region, c.sparsity, c.zero_connection)
    model.finalize_connectivity()


@given(spec=network_specs(), dynamics=dynamics_settings(spectral_radius=True),
       seed=st.integers(0, 2**31 - 1), rec_first=st.booleans())
def test_manual_building_in_any_order_draws_what_the_core_draws(spec, dynamics, seed, rec_first):
    ckpt = assume_loop(spec, dynamics, seed)
    model = CLASSES[dynamics.kind](device="cpu", seed=seed, dtype=torch.float64)
    model.dynamics = dynamics
    _replay(model, spec, rec_first)
    got = model.to_checkpoint()
    for key in mrnn_core.PARAM_NAMES:
        np.testing.assert_array_equal(got.params[key], ckpt.params[key], err_msg=key)


def test_region_bookkeeping_is_live_before_finalising():
    model = mRNN(device="cpu")
    model.add_recurrent_region(name="r1", num_units=2, sign="pos", base_firing=0.5, init=0.1,
                               device="cpu")
    assert model.region_mask_dict["r1"].tolist() == [1, 1]
    model.add_recurrent_region(name="r2", num_units=3, sign="neg", base_firing=1.5, init=0,
                               device="cpu", parent_region="grp", learnable_bias=True)
    model.add_input_region(name="i1", num_units=4, sign="pos", device="cpu")
    assert (model.total_num_units, model.total_num_inputs) == (5, 4)
    assert model.region_mask_dict["r1"].tolist() == [1, 1, 0, 0, 0]
    assert model.region_mask_dict["r2"].tolist() == [0, 0, 1, 1, 1]
    assert model.tonic_inp.tolist() == pytest.approx([0.5, 0.5, 1.5, 1.5, 1.5])
    assert model.initial_condition.tolist() == pytest.approx([0.1, 0.1, 0, 0, 0])
    assert model.get_region_indices("i1") == (0, 4) and model.get_region_size("i1") == 4
    model.add_recurrent_connection("r1", "r2")
    model.add_input_connection("i1", "r1")
    assert model.region_dict["r1"]["r2"].parameter.shape == (3, 2)
    assert model.inp_dict["i1"]["r1"].parameter.shape == (2, 4)
    assert model["r1"] is model.region_dict["r1"] and model["i1"] is model.inp_dict["i1"]
    assert model.W_rec is None and model.W_inp is None


def test_finalising_fills_every_block_and_connections_follow_the_weights():
    model = mRNN(two_region_spec(), device="cpu", seed=1, rec_constrained=False)
    for src, region in model.named_rec_regions():
        assert list(region.connections) == ["e", "thal", "i"]
        for dst in ("e", "thal", "i"):
            c = region[dst]
            rows, cols = slice(*model.get_region_indices(dst)), slice(*model.get_region_indices(src))
            assert torch.equal(c.parameter, model.W_rec[rows, cols].detach())
            assert torch.equal(c.weight_mask, model.W_rec_mask[rows, cols])
            assert torch.equal(c.sign_matrix, model.W_rec_sign_matrix[rows, cols])
    assert model["cue"]["i"].zero_connection and not model["cue"]["e"].zero_connection
    assert torch.equal(model["cue"][0].parameter, model.W_inp[0:3, :].detach())

    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.ones(1, 3, 2), torch.zeros(1, 7))[1].sum().backward()
    optimiser.step()
    assert torch.equal(model["e"]["thal"].parameter, model.W_rec[3:5, 0:3].detach())
    model.double()
    assert model["e"]["thal"].parameter.dtype == torch.float64
    assert torch.equal(model["e"]["thal"].parameter, model.W_rec[3:5, 0:3].detach())


def test_finalising_twice_changes_nothing():
    model = ElmanmRNN(two_region_spec(), device="cpu", seed=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.finalize_connectivity()
    model.finalize_rec_connectivity()
    model.finalize_inp_connectivity()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_json_path_dict_and_spec_build_the_same_model(tmp_path):
    spec = two_region_spec(learnable_bias=True)
    path = tmp_path / "net.json"
    config = spec.to_dict()
    config["recurrent_regions"][0]["__note"] = "comments are ignored"
    config["input_regions"][0]["device"] = "cuda"  # mRNNTorch files carry it; ignored
    path.write_text(json.dumps(config))
    models = [mRNN(source, device="cpu", seed=5) for source in (str(path), path, config, spec)]
    for other in models[1:]:
        assert models[0].state_dict().keys() == other.state_dict().keys()
        for key, value in models[0].state_dict().items():
            assert torch.equal(value, other.state_dict()[key]), key


_REGIONS_AND_INPUT_WIRING = {
    "recurrent_regions": [{"name": "r1", "num_units": 2},
                          {"name": "r2", "num_units": 2, "sign": "inhib"}],
    "input_regions": [{"name": "inp", "num_units": 1}],
    "input_connections": [{"src_region": "inp", "dst_region": "r1"}],
}


@pytest.mark.parametrize("config_finalize", [True, False])
def test_mixed_building_wires_the_recurrent_side_by_hand(config_finalize):
    """mRNNTorch's README: a config of regions and input wiring, recurrent
    wiring added by hand, then finalised. With the default config_finalize the
    config finalises the input side it wires; the recurrent side stays open."""
    model = mRNN(_REGIONS_AND_INPUT_WIRING, device="cpu", seed=0, config_finalize=config_finalize)
    assert model.inp_finalized == config_finalize and not model.rec_finalized
    still_open = "recurrent" if config_finalize else "recurrent and input"
    with pytest.raises(MRNNConfigError, match=rf"{still_open} connectivity is still open"):
        model(torch.ones(3, 4, 1), torch.zeros(3, 4))
    for src in ("r1", "r2"):
        for dst in ("r1", "r2"):
            model.add_recurrent_connection(src, dst)
    model.finalize_connectivity()
    xs, hs = model(torch.ones(3, 4, 1), torch.zeros(3, 4))
    assert xs.shape == hs.shape == (3, 4, 4)
    assert torch.all(model.W_rec_mask == 1)
    assert torch.equal(model.W_rec_sign_matrix[:, 2:], -torch.ones(4, 2))


def test_a_config_without_connections_builds_its_regions_only():
    config = {"recurrent_regions": [{"name": "r1", "num_units": 2}, {"name": "r2", "num_units": 1}],
              "input_regions": [{"name": "i1", "num_units": 3}],
              "recurrent_connections": [], "input_connections": []}
    model = mRNN(config, device="cpu")
    assert set(model.region_dict) == {"r1", "r2"} and set(model.inp_dict) == {"i1"}
    assert not model.rec_finalized and not model.inp_finalized
    model.add_recurrent_connection("r1", "r2")
    model.add_input_connection("i1", "r1")
    model.finalize_connectivity()
    assert model.W_rec.shape == (3, 3) and model.W_inp.shape == (3, 3)


def test_region_classes_standalone():
    region = RecurrentRegion(num_units=2, base_firing=0.5, learnable_bias=True, device="cpu")
    assert isinstance(region.base_firing, torch.nn.Parameter) and region.base_firing.shape == (2,)
    plain = RecurrentRegion(num_units=3, base_firing=[0.1, 0.2, 0.3], init=0.4, sign="inhib",
                            parent_region="p", device="cpu")
    assert not isinstance(plain.base_firing, torch.nn.Parameter)
    assert plain.base_firing.tolist() == pytest.approx([0.1, 0.2, 0.3]) and plain.sign == "neg"
    assert plain.init.tolist() == pytest.approx([0.4] * 3) and plain.parent_region == "p"

    src = InputRegion(num_units=2, sign="pos", device="cpu")
    src.add_connection(dst_region_name="dst", dst_region_units=3, sparsity=None,
                       zero_connection=True)
    assert torch.all(src.connections["dst"].weight_mask == 0)
    assert torch.all(src.connections["dst"].sign_matrix == 0)
    neg = InputRegion(num_units=2, sign="neg", device="cpu")
    neg.add_connection(dst_region_name="dst", dst_region_units=3, sparsity=None)
    assert torch.all(neg.connections["dst"].weight_mask == 1)
    assert torch.all(neg.connections["dst"].sign_matrix == -1)
    assert neg.has_connection_to("dst") and not neg.has_connection_to("other")
    assert neg["dst"] is neg[0] and neg[0].parameter.shape == (3, 2)
    assert neg.masks["ones"].tolist() == [1, 1] and neg.masks["zeros"].tolist() == [0, 0]

    torch.manual_seed(0)
    sparse = Region(num_units=5, device="cpu")
    sparse.add_connection("dst", 4, sparsity=0.5)
    assert sparse["dst"].weight_mask.sum(dim=0).tolist() == [2.0] * 5  # ceil(0.5 * 4) removed
    sparse["dst"] = Connection(torch.ones(4, 5), torch.ones(4, 5), torch.ones(4, 5), False)
    assert torch.all(sparse[0].weight_mask == 1)


def test_model_accepts_a_replacement_region_of_the_same_kind_and_size():
    model = mRNN(two_region_spec(), device="cpu", seed=0)
    before = model.W_rec.detach().clone()
    model["thal"] = RecurrentRegion(2, base_firing=0.3, init=-0.1, learnable_bias=True,
                                    device="cpu")
    assert model.tonic_inp.tolist()[3:5] == pytest.approx([0.3, 0.3])
    assert model.initial_condition.tolist()[3:5] == pytest.approx([-0.1, -0.1])
    assert "base_firing_thal" in dict(model.named_parameters())
    assert torch.equal(model["thal"]["e"].parameter, before[0:3, 3:5])
    assert model.to_checkpoint().spec.region("thal").learnable_bias
    with pytest.raises(MRNNConfigError, match=r"model\['thal'\] = \.\.\.: expected a region of 2 units, got 3"):
        model["thal"] = RecurrentRegion(3, device="cpu")
    with pytest.raises(MRNNConfigError, match=r"'cue' is an input region; expected InputRegion, got RecurrentRegion"):
        model["cue"] = RecurrentRegion(2, device="cpu")
    with pytest.raises(MRNNConfigError, match=r"sign matrix is finalised with sign 'pos', got a region of sign 'neg'"):
        model["thal"] = RecurrentRegion(2, sign="neg", device="cpu")


def _built():
    model = mRNN(device="cpu", seed=0)
    model.add_recurrent_region("a", 2)
    model.add_recurrent_region("b", 2, sign="neg")
    model.add_input_region("u", 1)
    model.add_recurrent_connection("a", "b")
    return model


@pytest.mark.parametrize("call, match", [
    (lambda m: m.add_recurrent_region("a", 3), r"duplicate region name 'a'"),
    (lambda m: m.add_input_region("b", 1), r"duplicate region name 'b'"),
    (lambda m: m.add_recurrent_region("c", 0), r"num_units must be an integer >= 1, got 0"),
    (lambda m: m.add_recurrent_region("c", 2.5), r"num_units must be an integer >= 1, got 2\.5"),
    (lambda m: m.add_recurrent_region("c", 2, sign="excitatory"), r"unknown sign 'excitatory'; allowed signs"),
    (lambda m: m.add_recurrent_region("c", 2, base_firing=[1.0]), r"base_firing must be one number or 2 numbers"),
    (lambda m: m.add_recurrent_connection("a", "b"), r"duplicate connection"),
    (lambda m: m.add_recurrent_connection("a", "bb"), r"unknown destination region 'bb'.*did you mean 'b'"),
    (lambda m: m.add_recurrent_connection("x", "a"), r"unknown source region 'x'"),
    (lambda m: m.add_recurrent_connection("a", "u"), r"'u' is an input region and cannot receive"),
    (lambda m: m.add_recurrent_connection("b", "a", sparsity=1.5), r"sparsity must be between 0 and 1.*1\.5"),
    (lambda m: m.add_input_connection("a", "b"), r"unknown source region 'a'; known input source regions: 'u'"),
    (lambda m: m.add_input_connection("u", "u"), r"'u' is an input region and cannot receive"),
    (lambda m: m(torch.zeros(1, 2, 1), torch.zeros(1, 4)),
     r"mRNN: cannot compute a forward pass before finalising: recurrent and input connectivity is still open"),
    (lambda m: m.to_checkpoint(), r"cannot compute a checkpoint before finalising"),
    (lambda m: m.get_projection("a", "b"), r"cannot compute effective recurrent weights before finalising"),
])
def test_building_errors_leave_the_model_unchanged(call, match):
    model = _built()
    before = (model._spec, dict(model.region_dict), dict(model.inp_dict),
              {k: list(r.connections) for k, r in model.region_dict.items()})
    with pytest.raises(MRNNConfigError, match=match):
        call(model)
    after = (model._spec, dict(model.region_dict), dict(model.inp_dict),
             {k: list(r.connections) for k, r in model.region_dict.items()})
    assert after == before


@pytest.mark.parametrize("step, call, match", [
    ("rec", lambda m: m.add_recurrent_region("c", 1),
     r"add_recurrent_region\('c'\): recurrent connectivity is already finalised"),
    ("rec", lambda m: m.add_recurrent_connection("b", "a"),
     r"add_recurrent_connection\('b', 'a'\): recurrent connectivity is already finalised"),
    ("inp", lambda m: m.add_recurrent_region("c", 1),
     r"input connectivity is already finalised; W_inp has one row per recurrent unit"),
    ("inp", lambda m: m.add_input_region("v", 1),
     r"add_input_region\('v'\): input connectivity is already finalised"),
    ("inp", lambda m: m.add_input_connection("u", "a"),
     r"add_input_connection\('u', 'a'\): input connectivity is already finalised"),
])
def test_adding_to_a_finalised_side_is_an_error(step, call, match):
    model = _built()
    getattr(model, f"finalize_{step}_connectivity")()
    with pytest.raises(MRNNConfigError, match=match):
        call(model)


def test_a_config_finalises_both_sides():
    model = mRNN(two_region_spec(), device="cpu", seed=0)
    assert model.rec_finalized and model.inp_finalized
    with pytest.raises(MRNNConfigError, match=r"unless config_finalize=False"):
        model.add_recurrent_connection("e", "e", zero_connection=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"dt": 0}, r"dt must be a finite number > 0, got 0"),
    ({"tau": -1.0}, r"tau must be a finite number > 0, got -1\.0"),
    ({"device": "tpu:7"}, r"device: expected a torch device such as 'cpu' or 'cuda', got 'tpu:7'"),
    ({"dtype": torch.int32}, r"dtype: expected a floating-point torch dtype"),
    ({"seed": -3}, r"seed: expected a non-negative integer or None, got -3"),
    ({"config": {"recurrent_regions": [{"name": "a", "num_untis": 2}]}},
     r"unknown key 'num_untis'.*did you mean 'num_units'"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(MRNNConfigError, match=match):
        mRNN(**{"device": "cpu", **kwargs})


def test_bad_json_file_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(MRNNConfigError, match=r"config file .*broken\.json' is not valid JSON"):
        mrnn_torch.mRNN(str(path), device="cpu")

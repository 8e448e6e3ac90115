"""Torch building routes keep region, parent and input names in one namespace,
and a refused call leaves the model unchanged; a name selects its own units."""

import pytest
import torch

from mrnn_core import MRNNConfigError
from mrnn_torch import ElmanmRNN, RecurrentRegion, mRNN

F64 = torch.float64
SAME_NAME = "parent_region '{}' is the name of {} region '{}'"


def snapshot(model):
    return (model._spec, list(model.region_dict), list(model.inp_dict), sorted(model.state_dict()))


def building():
    model = mRNN(device="cpu", seed=0, dtype=F64)
    model.add_recurrent_region("a", 2, parent_region="grp")
    model.add_input_region("cue", 1)
    return model


@pytest.mark.parametrize("call, message", [
    (lambda m: m.add_recurrent_region("grp", 2), SAME_NAME.format("grp", "recurrent", "grp")),
    (lambda m: m.add_recurrent_region("b", 2, parent_region="a"), SAME_NAME.format("a", "recurrent", "a")),
    (lambda m: m.add_recurrent_region("b", 2, parent_region="b"), "parent_region 'b' is the region's own name"),
    (lambda m: m.add_recurrent_region("b", 2, parent_region="cue"), SAME_NAME.format("cue", "input", "cue")),
    (lambda m: m.add_ei_area("a", 4, exc_pct=0.5), SAME_NAME.format("a", "recurrent", "a")),
    (lambda m: m.add_ei_area("cue", 4, exc_pct=0.5), SAME_NAME.format("cue", "input", "cue")),
])
def test_add_calls_refuse_a_name_with_two_meanings_and_change_nothing(call, message):
    model = building()
    before = snapshot(model)
    with pytest.raises(MRNNConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(model)
    assert snapshot(model) == before


def test_an_input_region_named_like_a_parent_is_refused():
    model = building()
    before = snapshot(model)
    with pytest.raises(MRNNConfigError, match=SAME_NAME.format("grp", "input", "grp")):
        model.add_input_region("grp", 1)
    assert snapshot(model) == before


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
def test_a_config_then_add_calls_are_held_to_the_same_rule(cls):
    config = {"recurrent_regions": [{"name": "v1", "num_units": 5, "exc_pct": 0.8}],
              "input_regions": [{"name": "cue", "num_units": 1}]}
    model = cls(config, device="cpu", seed=0, config_finalize=False)
    before = snapshot(model)
    with pytest.raises(MRNNConfigError, match=SAME_NAME.format("v1", "recurrent", "v1")):
        model.add_recurrent_region("v1", 2)
    with pytest.raises(MRNNConfigError, match=SAME_NAME.format("v1_exc", "recurrent", "v1_exc")):
        model.add_recurrent_region("x", 2, parent_region="v1_exc")
    assert snapshot(model) == before
    bad = {"recurrent_regions": [{"name": "a", "num_units": 2, "parent_region": "b"},
                                 {"name": "b", "num_units": 2, "parent_region": "a"}]}
    with pytest.raises(MRNNConfigError, match=r"parent regions form a cycle \('a' -> 'b' -> 'a'\)"):
        cls(bad, device="cpu", seed=0)


def test_replacing_a_region_cannot_give_it_a_parent_that_is_a_region():
    model = building()
    model.add_recurrent_region("b", 3)
    before = snapshot(model)
    with pytest.raises(MRNNConfigError, match=SAME_NAME.format("b", "recurrent", "b")):
        model["a"] = RecurrentRegion(2, parent_region="b", device="cpu", dtype=F64)
    assert snapshot(model) == before and model["a"].parent_region == "grp"


def test_each_name_selects_its_own_units_and_block():
    # Regions a and c share the parent 'grp'; b stands alone between them.
    model = mRNN(device="cpu", seed=1, dtype=F64, rec_constrained=False)
    model.add_recurrent_region("a", 2, parent_region="grp")
    model.add_recurrent_region("b", 3)
    model.add_recurrent_region("c", 1, parent_region="grp")
    model.add_input_region("cue", 1)
    for src in ("a", "b", "c"):
        for dst in ("a", "b", "c"):
            model.add_recurrent_connection(src, dst)
    model.add_input_connection("cue", "grp")
    model.finalize_connectivity()
    hs = torch.arange(6, dtype=F64).expand(2, 4, 6)
    assert model.get_region_activity(hs, "b")[0, 0].tolist() == [2.0, 3.0, 4.0]
    assert model.get_region_activity(hs, "grp")[0, 0].tolist() == [0.0, 1.0, 5.0]
    W = model.W_rec.detach() * model.W_rec_mask
    assert torch.equal(model.get_projection("b", "a"), W[2:5, 0:2])
    assert torch.equal(model.get_projection("grp", "b"), W[[0, 1, 5]][:, 2:5])

"""Region names whose parameter names collide ('.' becomes '_') are refused, leaving the model as it was."""

import pytest
import torch

from mrnn_core import MRNNConfigError
from mrnn_torch import mRNN


def _model():
    model = mRNN(None, dtype=torch.float64, device="cpu", seed=0)
    model.add_recurrent_region("a.b", 2, learnable_bias=True, learnable_tau=True)
    return model


def _snapshot(model):
    return (model.total_num_units, list(model.region_dict), len(model._spec.recurrent_regions),
            [name for name, _ in model.named_parameters()], list(model.state_dict()))


def test_a_second_region_with_the_same_parameter_name_is_refused():
    model = _model()
    before = _snapshot(model)
    with pytest.raises(MRNNConfigError, match=r"'a_b'.*'base_firing_a_b', which another region"):
        model.add_recurrent_region("a_b", 3, learnable_bias=True)
    assert _snapshot(model) == before
    with pytest.raises(MRNNConfigError, match=r"learnable_tau parameter would be stored as "
                                              r"'log_tau_a_b'"):
        model.add_recurrent_region("a_b", 3, learnable_tau=True)
    assert _snapshot(model) == before


def test_the_same_name_without_learnable_vectors_is_accepted():
    model = _model()
    model.add_recurrent_region("a_b", 3)
    assert list(model.region_dict) == ["a.b", "a_b"]
    assert model.total_num_units == 5


def test_an_ei_area_clashing_with_an_existing_region_adds_neither_population():
    model = mRNN(None, dtype=torch.float64, device="cpu", seed=0)
    model.add_recurrent_region("x.exc", 2, learnable_init=True)
    before = _snapshot(model)
    with pytest.raises(MRNNConfigError, match=r"'x_exc'.*'init_x_exc'"):
        model.add_ei_area("x", 5, learnable_init=True)
    assert _snapshot(model) == before


def test_a_config_whose_regions_clash_is_refused():
    config = {"recurrent_regions": [{"name": "a.b", "num_units": 2, "learnable_bias": True},
                                    {"name": "a_b", "num_units": 2, "learnable_bias": True}]}
    with pytest.raises(MRNNConfigError, match=r"'a_b'.*'base_firing_a_b'"):
        mRNN(config, dtype=torch.float64, device="cpu", seed=0)

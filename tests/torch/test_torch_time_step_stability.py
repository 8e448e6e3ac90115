"""Torch models refuse an unsafe leaky time step on every route, and a refused
call leaves the model as it was (SEMANTICS.md section 5)."""

import copy

import numpy as np
import pytest
import torch

import mrnn_core
from mrnn_core import MRNNConfigError
from mrnn_torch import ElmanmRNN, mRNN

F64 = torch.float64
OVERSHOOT = r"> 1 for unit {} \(region '{}'\): the Euler step overshoots the leak"


def small(**kwargs):
    model = mRNN(device="cpu", seed=0, dtype=F64, **kwargs)
    model.add_recurrent_region("ctx", 3)
    model.add_input_region("cue", 1)
    return model


def snapshot(model):
    return (model._spec, model.dynamics, model.total_num_units, sorted(model.state_dict()),
            sorted(n for n, _ in model.named_parameters()))


def test_the_constructor_refuses_a_step_longer_than_tau_unless_allowed():
    with pytest.raises(MRNNConfigError, match=r"dynamics: alpha = dt / tau = 20\.0 / 10\.0 = 2\.0 > 1: "):
        mRNN(dt=20.0, tau=10.0, device="cpu", seed=0)
    model = mRNN(dt=20.0, tau=10.0, allow_unstable_alpha=True, device="cpu", seed=0)
    assert model.allow_unstable_alpha is True and model.alpha == 2.0


def test_a_config_region_tau_is_checked_at_construction():
    config = {"recurrent_regions": [{"name": "ctx", "num_units": 2},
                                    {"name": "fast", "num_units": 2, "tau": 5.0}],
              "recurrent_connections": [{"src_region": "ctx", "dst_region": "fast"}]}
    with pytest.raises(MRNNConfigError, match=r"^spec: alpha = dt / tau = 10\.0 / 5\.0 = 2\.0 "
                                              + OVERSHOOT.format(2, "fast")):
        mRNN(config, device="cpu", seed=0)
    assert mRNN(config, device="cpu", seed=0, dt=5.0, dtype=F64).alpha.tolist() == [0.05, 0.05, 1.0, 1.0]
    assert mRNN(config, device="cpu", seed=0, allow_unstable_alpha=True).rec_finalized
    ElmanmRNN(config, device="cpu", seed=0)  # no alpha, nothing to check


@pytest.mark.parametrize("add", [
    lambda m: m.add_recurrent_region("fast", 2, tau=4.0),
    lambda m: m.add_recurrent_region("fast", 2, tau=4.0, learnable_tau=True),
    lambda m: m.add_ei_area("fast", 4, exc_pct=0.5, tau=4.0),
])
def test_adding_a_region_with_a_short_tau_is_refused_and_changes_nothing(add):
    model = small()
    before = snapshot(model)
    with pytest.raises(MRNNConfigError, match=r"^add_(recurrent_region|ei_area)\('fast'\): alpha = dt / tau = "
                                              r"10\.0 / 4\.0 = 2\.5 > 1 for unit 3 \(region 'fast(_exc)?'\)"):
        add(model)
    assert snapshot(model) == before
    allowed = small(allow_unstable_alpha=True)
    add(allowed)
    assert allowed.total_num_units > 3


def test_assigning_tau_or_dt_that_breaks_the_rule_raises_and_leaves_the_model_unchanged():
    model = small()
    model.add_recurrent_region("fast", 2, tau=20.0)
    model.add_recurrent_connection("ctx", "fast")
    model.finalize_connectivity()
    before, alpha = snapshot(model), model.alpha.clone()
    with pytest.raises(MRNNConfigError, match=r"^model\.tau = 5\.0: dynamics: alpha = dt / tau = 10\.0 / 5\.0"):
        model.tau = 5.0
    with pytest.raises(MRNNConfigError, match=r"^model\.dt = 30\.0: alpha = dt / tau = 30\.0 / 20\.0 = 1\.5 "
                                              + OVERSHOOT.format(3, "fast")):
        model.dt = 30.0  # the global tau (100) would allow it, region 'fast' does not
    with pytest.raises(MRNNConfigError, match=r"^model\.tau = -1\.0: tau must be a finite number > 0, got -1\.0$"):
        model.tau = -1.0
    assert snapshot(model) == before and torch.equal(model.alpha, alpha)
    model.tau = 10.0  # alpha = 1 is allowed
    model.allow_unstable_alpha = True
    model.dt = 30.0
    assert model.alpha.tolist() == [3.0, 3.0, 3.0, 1.5, 1.5]
    with pytest.raises(MRNNConfigError, match=r"^model\.allow_unstable_alpha = False: dynamics: alpha = dt / tau = "
                                              r"30\.0 / 10\.0 = 3\.0 > 1: "):
        model.allow_unstable_alpha = False
    assert model.allow_unstable_alpha is True


def test_a_learned_tau_is_checked_at_its_current_value():
    model = small()
    model.add_recurrent_region("slow", 2, tau=50.0, learnable_tau=True)
    model.finalize_connectivity()
    with torch.no_grad():
        model.log_tau_slow.fill_(np.log(15.0))  # as if training had shortened it
    model.dt = 12.0
    with pytest.raises(MRNNConfigError, match=r"model\.dt = 16\.0: alpha = dt / tau = 16\.0 / 1[45]\.\d+ = 1\.06\d* "
                                              + OVERSHOOT.format(3, "slow")):
        model.dt = 16.0
    assert model.dt == 12.0


def test_from_checkpoint_refuses_a_tau_array_that_steps_too_far():
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 3).with_recurrent_region("b", 2)
            .with_recurrent_connection("ctx", "b"))
    ckpt = mrnn_core.Checkpoint.initialise(spec, seed=0)
    params = dict(ckpt.params)
    params["tau"] = np.array([100.0, 100.0, 100.0, 100.0, 7.0])
    bad = mrnn_core.Checkpoint(spec, ckpt.dynamics, params)
    with pytest.raises(MRNNConfigError, match=r"^checkpoint params\['tau'\]: alpha = dt / tau = 10\.0 / 7\.0 = "
                                              r"1\.4\d* " + OVERSHOOT.format(4, "b")):
        mRNN.from_checkpoint(bad, device="cpu")
    params["tau"] = np.array([100.0, 100.0, 100.0, 100.0, np.inf])
    with pytest.raises(MRNNConfigError, match=r"params\['tau'\]: expected finite values, got inf at index \[4\]"):
        mrnn_core.Checkpoint(spec, ckpt.dynamics, params)  # every route in validates the arrays
    allowed = mrnn_core.Checkpoint(spec, mrnn_core.Dynamics(allow_unstable_alpha=True),
                                   {**params, "tau": np.array([100.0] * 4 + [7.0])})
    model = mRNN.from_checkpoint(allowed, device="cpu", dtype=F64)
    assert model.alpha[-1].item() == pytest.approx(10.0 / 7.0, rel=1e-15)
    assert model.to_checkpoint().dynamics.allow_unstable_alpha is True


def test_an_allowed_unstable_model_runs_forward_and_deep_copies():
    model = small(dt=30.0, tau=10.0, allow_unstable_alpha=True, activation="linear",
                  noise_level_act=0.0, noise_level_inp=0.0)
    model.finalize_connectivity()
    x0 = torch.ones(1, 3, dtype=F64)
    xs, _ = model(torch.zeros(1, 6, 1, dtype=F64), x0)
    assert torch.allclose(xs[0, :, 0], (-2.0) ** torch.arange(1, 7, dtype=F64))
    assert copy.deepcopy(model).allow_unstable_alpha is True

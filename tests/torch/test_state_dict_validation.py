"""torch load_state_dict holds a state_dict to the checkpoint rules before it
copies anything: a refused state_dict raises MRNNStateDictError (an
MRNNConfigError and a RuntimeError) naming the key, and the model is left
exactly as it was. mRNNTorch's state_dicts keep loading strictly."""

import re

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import mrnn_core as mc
from mrnn_core.testing import corrupted_checkpoints, network_specs
from mrnn_torch import mRNN

STATE_KEYS = ("W_rec", "W_inp", "W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")


def build():
    model = mRNN(activation="tanh", device="cpu", dtype=torch.float64, seed=1)
    model.add_recurrent_region("exc", 4, "pos", learnable_bias=True, tau=50.0, learnable_tau=True)
    model.add_recurrent_region("inh", 2, "neg")
    model.add_input_region("cue", 3)
    model.add_recurrent_connection("exc", "inh")
    model.add_recurrent_connection("inh", "exc", sparsity=0.5)
    model.add_recurrent_connection("exc", "exc", mask=np.eye(4))
    model.add_input_connection("cue", "exc")
    model.finalize_connectivity()
    return model


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.mrnn = build()
        self.out = nn.Linear(6, 2, dtype=torch.float64)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_unchanged(module, before):
    after = module.state_dict()
    assert set(after) == set(before)
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def refused(module, state_dict, match, strict=True):
    before = snapshot(module)
    with pytest.raises(mc.MRNNStateDictError, match=match) as info:
        module.load_state_dict(state_dict, strict=strict)
    assert isinstance(info.value, mc.MRNNConfigError) and isinstance(info.value, RuntimeError)
    assert_unchanged(module, before)
    return info.value


def edited(module, key, index, value):
    sd = snapshot(module)
    sd[key][index] = value
    return sd


@pytest.mark.parametrize("value", [2.0, -1.0, 0.5])
def test_a_mask_that_is_not_0_or_1_is_refused(value):
    model = Wrapped()
    refused(model, edited(model, "mrnn.W_rec_mask", (0, 4), value),
            r"load_state_dict: state_dict\['mrnn.W_rec_mask'\]\[0, 4\] \(block 'inh' -> 'exc'\): "
            r"expected 0 or 1")


def test_a_mask_outside_the_declared_blocks_or_against_an_explicit_mask_is_refused():
    model = build()
    refused(model, edited(model, "W_rec_mask", (5, 5), 1.0),
            r"state_dict\['W_rec_mask'\]\[5, 5\] \(block 'inh' -> 'inh'\): expected 0, since the "
            r"spec does not connect")
    refused(model, edited(model, "W_inp_mask", (4, 0), 1.0),
            r"state_dict\['W_inp_mask'\]\[4, 0\] \(block 'cue' -> 'inh'\): expected 0")
    refused(model, edited(model, "W_rec_mask", (0, 1), 1.0),
            r"state_dict\['W_rec_mask'\]\[0, 1\] \(block 'exc' -> 'exc'\): expected 0, the value "
            r"of the connection's explicit mask")


def test_a_sign_matrix_breaking_dales_law_is_refused():
    model = build()
    sd = snapshot(model)
    rows = sd["W_rec_mask"][:4, 4:] != 0
    sd["W_rec_sign_matrix"][:4, 4:][rows] = 1.0  # inhibitory 'inh' sending positive weights
    refused(model, sd, r"state_dict\['W_rec_sign_matrix'\]\[\d, [45]\] \(block 'inh' -> 'exc'\): "
                       r"expected -1 \(mask \* the sign -1 of source region 'inh'\), got")


@pytest.mark.parametrize("key", ["W_rec", "W_inp", "base_firing_exc", "log_tau_exc"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_and_region_parameters_are_finite(key, value):
    model = build()
    refused(model, edited(model, key, 0, value),
            rf"state_dict\['{key}'\]: expected finite values, got")


def test_a_log_tau_whose_tau_overflows_is_refused():
    model = build()
    refused(model, edited(model, "log_tau_exc", 2, 1000.0),
            r"state_dict\['log_tau_exc'\]: expected log time constants whose exp is finite and "
            r"> 0, got 1000.0 at index 2")


@pytest.mark.parametrize("dtype, shown", [(torch.complex128, "complex dtype complex128"),
                                          (torch.int64, "dtype int64")])
def test_weights_are_real_floating_point(dtype, shown):
    model = build()
    sd = snapshot(model)
    sd["W_rec"] = sd["W_rec"].to(dtype)
    refused(model, sd, rf"state_dict\['W_rec'\]: expected a real floating-point array "
                       rf"\(float16, float32 or float64\), got {shown}")


def test_a_wrong_shape_is_refused_before_torch_copies_the_rest():
    model = build()
    sd = snapshot(model)
    sd["W_rec"] = sd["W_rec"] + 1.0  # valid: would be copied first by torch alone
    sd["W_inp"] = torch.zeros(6, 4, dtype=torch.float64)
    refused(model, sd, r"state_dict\['W_inp'\]: expected shape \(6, 3\) for this network, "
                       r"got \(6, 4\)")


def test_unknown_and_missing_keys_are_refused_before_anything_is_copied():
    model = build()
    sd = snapshot(model)
    sd["W_rec"] = sd["W_rec"] + 1.0  # valid: torch alone would copy it, then complain
    refused(model, {**sd, "W_bogus": torch.zeros(1)},
            r"load_state_dict: Unexpected key\(s\) 'W_bogus'; expected only 'W_rec'")
    del sd["W_inp_mask"]
    refused(model, sd, r"load_state_dict: Missing key\(s\) 'W_inp_mask' in state_dict")


def test_inside_a_larger_module_the_arrays_are_checked_and_torch_reports_keys():
    model = Wrapped()
    refused(model, edited(model, "mrnn.W_rec_sign_matrix", (0, 4), 1.0),
            r"state_dict\['mrnn.W_rec_sign_matrix'\]\[0, 4\] \(block 'inh' -> 'exc'\)")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict({**snapshot(model), "mrnn.W_bogus": torch.zeros(1)})


def test_strict_false_checks_what_is_given_against_the_model_own_arrays():
    model = build()
    sd = {"W_rec": snapshot(model)["W_rec"] * 2.0}
    result = model.load_state_dict({**sd, "extra": torch.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["extra"]
    assert torch.equal(model.W_rec, sd["W_rec"])
    sign = snapshot(model)["W_rec_sign_matrix"]
    sign[4, 0] = -1.0  # 'exc' is excitatory: its mask (the model's own) implies +1 here
    refused(model, {"W_rec_sign_matrix": sign},
            r"state_dict\['W_rec_sign_matrix'\]\[4, 0\] \(block 'exc' -> 'inh'\): expected 1",
            strict=False)


def test_an_mrnntorch_style_state_dict_with_bool_masks_and_no_region_keys_loads():
    model = build()
    sd = snapshot(model)
    for key in ("base_firing_exc", "log_tau_exc"):
        del sd[key]  # mRNNTorch never saved them: they keep their values
    sd["W_rec_mask"] = sd["W_rec_mask"].bool()
    sd["W_rec"] = sd["W_rec"] * 0.5
    model.load_state_dict(sd)
    assert torch.equal(model.W_rec, sd["W_rec"])
    assert torch.equal(model.W_rec_mask, sd["W_rec_mask"].double())


def test_the_checkpoint_and_state_dict_routes_accept_the_same_arrays():
    """A state_dict whose arrays a Checkpoint rejects is rejected by load_state_dict, and
    one a Checkpoint accepts loads."""
    model = build()
    ckpt = model.to_checkpoint()
    mask = np.array(ckpt.params["W_rec_mask"])
    mask[5, 5] = 1.0
    with pytest.raises(mc.MRNNConfigError, match=r"\['W_rec_mask'\]\[5, 5\] \(block 'inh' -> 'inh'\)"):
        mc.Checkpoint(ckpt.spec, ckpt.dynamics, {**ckpt.params, "W_rec_mask": mask})
    refused(model, {**snapshot(model), "W_rec_mask": torch.tensor(mask)},
            r"\['W_rec_mask'\]\[5, 5\] \(block 'inh' -> 'inh'\)")
    fresh = build()
    fresh.load_state_dict(mRNN.from_checkpoint(ckpt, dtype=torch.float64).state_dict())
    assert_unchanged(fresh, snapshot(model))


def test_loading_into_an_unfinalised_model_says_so():
    saved = build().state_dict()
    model = mRNN(activation="tanh", device="cpu", dtype=torch.float64, seed=1)
    model.add_recurrent_region("exc", 4, "pos", learnable_bias=True, tau=50.0, learnable_tau=True)
    with pytest.raises(mc.MRNNStateDictError,
                       match=r"Unexpected key\(s\) 'W_rec', 'W_inp', .*; this model's recurrent and "
                             r"input connectivity is not finalised yet"):
        model.load_state_dict(saved)


@given(network_specs(beyond_mrnntorch=True), st.integers(0, 2**32 - 1), st.data())
def test_load_state_dict_and_checkpoint_refuse_the_same_arrays(spec, seed, data):
    """One array of W_rec, W_inp, their masks or sign matrices corrupted: the
    state_dict route refuses it exactly when the checkpoint route does, and a
    refused load leaves the model as it was."""
    ckpt = mc.Checkpoint.initialise(spec, mc.Dynamics(), seed=seed)
    params, message = data.draw(corrupted_checkpoints(ckpt))
    changed = [k for k in STATE_KEYS if k not in params
               or (params[k].dtype, params[k].shape, params[k].tobytes())
               != (ckpt.params[k].dtype, ckpt.params[k].shape, ckpt.params[k].tobytes())]
    assume(len(changed) == 1 and changed[0] in params and params[changed[0]].dtype.kind != "U")
    key = changed[0]
    try:
        mc.Checkpoint(spec, ckpt.dynamics, params)
        accepted = True
    except mc.MRNNConfigError:
        accepted = False
    model = mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    state = {**snapshot(model), key: torch.tensor(params[key])}
    if accepted:
        model.load_state_dict(state)
        assert torch.equal(getattr(model, key), torch.tensor(params[key], dtype=torch.float64))
    else:
        refused(model, state, re.escape(f"state_dict['{key}']"))

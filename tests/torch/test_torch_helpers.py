"""mRNNTorch's helpers against plain numpy indexing of the reference weights.

The oracle below recomputes region offsets from the spec by hand, so it shares
no code with the helpers. Region order: ``get_region_activity`` keeps the
caller's order; ``get_weight_subset`` and parents inside ``get_projection``
use network order.
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core.testing import arrays
from .torch_helpers import DEVICES, cases, model_from, torch_params, two_region_spec


def _offsets(regions):
    out, start = {}, 0
    for r in regions:
        out[r.name] = np.arange(start, start + r.num_units)
        start += r.num_units
    return out


def _units(spec, names, network_order=False):
    """Unit indices of ``names`` (parents expanded, repeats dropped)."""
    offsets = {**_offsets(spec.input_regions), **_offsets(spec.recurrent_regions)}
    regions = []
    for name in names:
        children = [r.name for r in spec.recurrent_regions if r.parent_region == name]
        for child in children or [name]:
            if child not in regions:
                regions.append(child)
    if network_order:
        order = [r.name for r in spec.recurrent_regions]
        regions.sort(key=order.index)
    return np.concatenate([offsets[r] for r in regions])


@st.composite
def selections(draw):
    """A drawn case plus some recurrent region or parent names in a random order."""
    ckpt, call = draw(cases(max_steps=2))
    spec = ckpt.spec
    choices = list(spec.recurrent_names) + list(spec.parents)
    names = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=4))
    return ckpt, names


@pytest.mark.parametrize("device", DEVICES)
@given(selection=selections(), data=st.data())
def test_region_activity_keeps_the_callers_order(device, selection, data):
    ckpt, names = selection
    model = model_from(ckpt, device)
    act = data.draw(arrays((2, 3, ckpt.spec.hidden_size)))
    expected = act[..., _units(ckpt.spec, names)]
    got = model.get_region_activity(torch.as_tensor(act, device=device), *names)
    np.testing.assert_array_equal(got.cpu().numpy(), expected)
    pure = mrnn_torch.region_activity(ckpt.connectivity, torch.as_tensor(act), *names)
    np.testing.assert_array_equal(pure.numpy(), expected)
    assert model.get_region_activity(torch.as_tensor(act, device=device)).shape == act.shape


@given(selection=selections())
def test_weight_subset_is_square_in_network_order(selection):
    ckpt, names = selection
    model = model_from(ckpt)
    W_rec_eff, _ = mrnn_core.reference.effective_weights(ckpt.params, ckpt.dynamics)
    idx = _units(ckpt.spec, names, network_order=True)
    np.testing.assert_array_equal(model.get_weight_subset(*names).detach().numpy(),
                                  W_rec_eff[np.ix_(idx, idx)])
    other = np.arange(ckpt.spec.hidden_size**2, dtype=float).reshape(W_rec_eff.shape)
    np.testing.assert_array_equal(
        model.get_weight_subset(*names, W=torch.as_tensor(other)).numpy(), other[np.ix_(idx, idx)])
    np.testing.assert_array_equal(model.get_weight_subset().detach().numpy(), W_rec_eff)


@given(case=cases(max_steps=1, min_inputs=1), data=st.data())
def test_projection_expands_parents_and_reads_input_weights(case, data):
    ckpt, _ = case
    spec = ckpt.spec
    model = model_from(ckpt)
    W_rec_eff, W_inp_eff = mrnn_core.reference.effective_weights(ckpt.params, ckpt.dynamics)
    targets = list(spec.recurrent_names) + list(spec.parents)
    to = data.draw(st.sampled_from(targets))
    from_ = data.draw(st.sampled_from(targets + list(spec.input_names)))
    W = W_inp_eff if from_ in spec.input_names else W_rec_eff
    rows = _units(spec, [to], network_order=True)
    cols = _units(spec, [from_], network_order=from_ not in spec.input_names)
    expected = W[np.ix_(rows, cols)]
    np.testing.assert_array_equal(model.get_projection(to, from_).detach().numpy(), expected)
    p = torch_params(ckpt)
    pure_W = mrnn_torch.effective_weights(p, ckpt.dynamics)[1 if from_ in spec.input_names else 0]
    np.testing.assert_array_equal(
        mrnn_torch.projection(ckpt.connectivity, pure_W, to, from_).numpy(), expected)


@given(selection=selections(), data=st.data())
def test_combine_states_inverts_a_split(selection, data):
    ckpt, names = selection
    model = model_from(ckpt)
    part_a = list(dict.fromkeys(ckpt.connectivity.expand(*names)))
    part_b = model.get_excluded_hid_regions(*names)
    assert sorted(part_a + part_b) == sorted(ckpt.spec.recurrent_names)
    h = torch.as_tensor(data.draw(arrays((2, 3, ckpt.spec.hidden_size))))
    a, b = model.get_region_activity(h, *part_a), model.get_region_activity(h, *part_b)
    if not part_b:  # every region named: nothing to combine with
        return
    assert torch.equal(model.combine_states(a, b, part_a, part_b), h)
    assert torch.equal(model.combine_states(b, a, part_b, part_a, keep_dims=False),
                       h.reshape(-1, h.shape[-1]))


def test_indices_sizes_masks_and_per_unit_vectors():
    model = mrnn_torch.mRNN(two_region_spec(), device="cpu", seed=0)
    assert [model.get_region_indices(r) for r in ("e", "thal", "i")] == [(0, 3), (3, 5), (5, 7)]
    assert model.get_region_indices("cue") == (0, 2)
    assert [model.get_region_size(r) for r in ("e", "thal", "i", "cue")] == [3, 2, 2, 2]
    assert model.get_region_size("ctx") == 5  # a parent counts its children (e, i)
    assert model.region_mask_dict["thal"].tolist() == [0, 0, 0, 1, 1, 0, 0]
    assert model.tonic_inp.tolist() == pytest.approx([0.1] * 3 + [0.0] * 4)
    assert model.initial_condition.tolist() == pytest.approx([0.0] * 3 + [0.2] * 2 + [0.0] * 2)
    assert model.hid_regions == ["e", "thal", "i"] and model.inp_regions == ["cue"]
    assert [n for n, _ in model.named_rec_regions("m.")] == ["m.e", "m.thal", "m.i"]
    assert [(n, r) for n, r in model.named_inp_regions()] == [("cue", model["cue"])]
    assert model.get_excluded_hid_regions("ctx") == ["thal"]
    assert model.get_excluded_inp_regions("cue") == []
    x0, h0 = model.batched_initial_condition(4)
    assert torch.equal(x0, model.initial_condition.expand(4, -1))
    assert torch.equal(h0, torch.relu(x0))
    elman = mrnn_torch.ElmanmRNN(two_region_spec(), activation="tanh", device="cpu", seed=0)
    assert torch.equal(elman.batched_initial_condition(2), elman.initial_condition.expand(2, -1))


def test_gen_w_assembles_the_finalised_matrices():
    model = mrnn_torch.mRNN(two_region_spec(), device="cpu", seed=0)
    for got, want in zip(model.gen_w(model.region_dict),
                         (model.W_rec, model.W_rec_mask, model.W_rec_sign_matrix)):
        assert torch.equal(got, want)
    for got, want in zip(model.gen_w(model.inp_dict),
                         (model.W_inp, model.W_inp_mask, model.W_inp_sign_matrix)):
        assert torch.equal(got, want)


def test_spectral_radius_helpers():
    model = mrnn_torch.mRNN(two_region_spec(), device="cpu", seed=0, dtype=torch.float64)
    W_eff = model.apply_dales_law(model.W_rec, model.W_rec_mask, model.W_rec_sign_matrix)
    assert torch.equal(W_eff, model.get_weight_subset())
    rho = model.compute_spectral_radius(W_eff)
    assert rho.dim() == 0
    assert rho.item() == pytest.approx(np.abs(np.linalg.eigvals(W_eff.detach().numpy())).max())
    model.spectral_radius = 0.7
    scaled = model.set_spectral_radius(model.W_rec, W_tmp=W_eff)
    W_scaled_eff = model.apply_dales_law(scaled, model.W_rec_mask, model.W_rec_sign_matrix)
    assert model.compute_spectral_radius(W_scaled_eff).item() == pytest.approx(0.7)
    assert model.dynamics.spectral_radius == 0.7


@pytest.mark.parametrize("call, match", [
    (lambda m: m.get_region_activity(torch.zeros(7), "cue"),
     r"unknown region 'cue'; 'cue' is an input region, expected a recurrent region or parent"),
    (lambda m: m.get_region_activity(torch.zeros(7), "thalamus"), r"unknown region 'thalamus'.*'thal'"),
    (lambda m: m.get_region_activity(torch.zeros(6), "thal"), r"act: expected activity with H = 7 units in the last axis, got shape \(6,\)"),
    (lambda m: m.get_weight_subset("e", "cue"), r"'cue' is an input region"),
    (lambda m: m.get_weight_subset("e", W=torch.zeros(3, 3)), r"W: expected a recurrent matrix \[H, H\] of shape \(7, 7\), got \(3, 3\)"),
    (lambda m: m.get_projection("cue", "e"), r"'cue' is an input region"),
    (lambda m: m.get_projection("e", "nowhere"), r"unknown region 'nowhere'"),
    (lambda m: m.get_region_indices("ctx"), r"'ctx' is a parent region; indices exist only for single regions"),
    (lambda m: m.combine_states(torch.zeros(5), torch.zeros(4), ["ctx"], ["e", "thal"]),
     r"combine_states: region lists must be disjoint; both name \['e'\]"),
    (lambda m: m.combine_states(torch.zeros(5), torch.zeros(2), ["ctx"], []),
     r"regions \['thal'\] are in neither list"),
    (lambda m: m.combine_states(torch.zeros(4), torch.zeros(2), ["ctx"], ["thal"]),
     r"states_a should hold 5 units for regions \['e', 'i'\], got last dimension 4"),
    (lambda m: m.get_excluded_inp_regions("thal"), r"'thal' is not an input region; known input regions: 'cue'"),
    (lambda m: m["nope"], r"unknown region 'nope'"),
])
def test_helper_errors_name_the_culprit(call, match):
    model = mrnn_torch.mRNN(two_region_spec(), device="cpu", seed=0)
    with pytest.raises(mrnn_core.MRNNConfigError, match=match):
        call(model)

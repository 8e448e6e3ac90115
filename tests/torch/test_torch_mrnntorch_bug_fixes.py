"""What mRNNTorch gets wrong, fixed here: one test per fix (issue 3).

Building errors (duplicates, unknown regions, adding after finalising,
running before finalising) are in test_torch_building.py; parents in
get_projection / get_weight_subset in test_torch_helpers.py.
"""

import numpy as np
import pytest
import torch

import mrnn_core
from mrnn_torch import ElmanmRNN, MRNNConfigError, mRNN
from .torch_helpers import assert_close, two_region_spec


def test_learnable_bias_is_registered_and_trains():
    model = mRNN(two_region_spec(learnable_bias=True), device="cpu", seed=0)
    bias = model.region_dict["e"].base_firing
    assert any(p is bias for p in model.parameters())
    assert torch.equal(model.state_dict()["base_firing_e"], bias.detach())
    before = bias.detach().clone()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    x0, h0 = model.batched_initial_condition(2)
    model(torch.ones(2, 5, 2), x0, h0)[1].sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0
    optimiser.step()
    assert not torch.equal(bias.detach(), before)
    assert torch.equal(model.tonic_inp[:3].detach(), bias.detach())
    model.double()
    assert model.region_dict["e"].base_firing is model.base_firing_e
    assert model.base_firing_e.dtype == torch.float64


def test_masks_and_signs_are_buffers_never_trained():
    model = mRNN(two_region_spec(), device="cpu", seed=0, rec_constrained=False)
    names = {"W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix"}
    assert {n for n, _ in model.named_buffers()} == names
    assert {n for n, _ in model.named_parameters()} == {"W_rec", "W_inp"}
    assert names <= set(model.state_dict())
    before = {n: b.clone() for n, b in model.named_buffers()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    for _ in range(3):
        optimiser.zero_grad()
        model(torch.ones(1, 4, 2), torch.zeros(1, 7))[1].square().sum().backward()
        optimiser.step()
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]) and not b.requires_grad, n


def test_get_projection_applies_the_mask_when_unconstrained():
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 4).with_recurrent_region("b", 3)
            .with_recurrent_connection("a", "b", sparsity=0.5))
    model = mRNN(spec, device="cpu", seed=0, rec_constrained=False, dtype=torch.float64)
    with torch.no_grad():
        model.W_rec.fill_(1.0)  # raw weights everywhere, also where the mask is 0
    block = model.get_projection("b", "a")
    assert torch.equal(block, model.W_rec_mask[4:7, 0:4])
    assert block.sum() == 4 * (3 - 2)  # ceil(0.5 * 3) = 2 of 3 removed per column
    assert torch.equal(model.get_weight_subset("b", "a"), model.W_rec_mask)


def test_elman_noise_has_standard_deviation_sigma():
    """Zero input, zero bias and W_rec = 0: each Elman state is pure noise,
    ``sigma_x eps_x + W_inp_eff sigma_u eps_u``, whose standard deviation per
    unit is known; 5 standard errors of the sample std (fixed seed)."""
    model = ElmanmRNN(two_region_spec(), activation="linear", noise_level_act=0.05,
                      noise_level_inp=0.2, device="cpu", seed=0, dtype=torch.float64)
    with torch.no_grad():
        model.region_dict["e"].base_firing.zero_()
    B, T, H = 200, 25, model.total_num_units
    torch.manual_seed(0)
    hs = model(torch.zeros(B, T, 2, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64),
               noise=True, W_rec=torch.zeros(H, H, dtype=torch.float64))
    W_inp_eff = model.apply_dales_law(model.W_inp, model.W_inp_mask, model.W_inp_sign_matrix)
    expected = np.sqrt(0.05**2 + 0.2**2 * (W_inp_eff.detach().numpy() ** 2).sum(axis=1))
    samples = hs.detach().reshape(-1, H).numpy()
    np.testing.assert_allclose(samples.std(axis=0), expected, rtol=5 / np.sqrt(2 * B * T))
    assert model.hid_noise_const == 0.05 and model.inp_noise_const == 0.2


def test_noise_constants_and_draws_follow_semantics():
    leaky = mRNN(two_region_spec(), dt=10, tau=50, noise_level_act=0.03, noise_level_inp=0.1,
                 device="cpu", seed=0)
    alpha = 0.2
    assert leaky.hid_noise_const == pytest.approx(np.sqrt(2 * alpha * 0.03**2) / alpha)
    assert leaky.inp_noise_const == pytest.approx(np.sqrt(2 * alpha * 0.1**2) / alpha)
    torch.manual_seed(0)
    draws = leaky._hid_noise(4000)
    assert draws.shape == (4000, 7) and leaky._inp_noise(3).shape == (3, 2)
    assert draws.std().item() == pytest.approx(leaky.hid_noise_const, rel=0.05)


def test_explicit_noise_draws_are_used_and_seeded_draws_repeat():
    model = mRNN(two_region_spec(), device="cpu", seed=0, dtype=torch.float64)
    inp, x0 = torch.zeros(2, 3, 2, dtype=torch.float64), torch.zeros(2, 7, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    eps_x = torch.randn(2, 3, 7, generator=g, dtype=torch.float64)
    eps_u = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    ckpt = model.to_checkpoint()
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, inp.numpy(), x0.numpy(),
                                            eps_x=eps_x.numpy(), eps_u=eps_u.numpy())
    assert_close(model(inp, x0, eps_x=eps_x, eps_u=eps_u), expected)
    torch.manual_seed(3)
    a = model(inp, x0, noise=True)[0]
    torch.manual_seed(3)
    assert torch.equal(a, model(inp, x0, noise=True)[0])
    assert not torch.equal(a, model(inp, x0)[0])


def test_default_device_is_cuda_when_available_else_cpu():
    model = mRNN(two_region_spec(), seed=0)
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert model.W_rec.device.type == model.device.type


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA; the error needs none")
def test_explicit_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(MRNNConfigError,
                       match=r"device 'cuda' is not available on this machine; available: 'cpu' only"):
        mRNN(device="cuda")


def test_missing_cuda_index_is_a_clear_error():
    with pytest.raises(MRNNConfigError, match=r"device 'cuda:99' is not available on this machine"):
        mRNN(two_region_spec(), device="cuda:99")


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
def test_network_without_input_region_builds_and_runs(cls):
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 3, base_firing=0.2)
            .with_recurrent_region("b", 2, sign="neg")
            .with_recurrent_connection("a", "b").with_recurrent_connection("b", "a"))
    model = cls(spec, device="cpu", seed=0, dtype=torch.float64, activation="tanh")
    assert model.W_inp.shape == (5, 0) and model.total_num_inputs == 0
    state = torch.full((2, 5), 0.1, dtype=torch.float64)
    stim = torch.ones(2, 4, 5, dtype=torch.float64)
    with_empty = model(torch.zeros(2, 4, 0, dtype=torch.float64), state, stim_input=stim)
    without = model(None, state, stim_input=stim)
    ckpt = model.to_checkpoint()
    key = "x0" if cls is mRNN else "h0"
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, None,
                                            stim_input=stim.numpy(), **{key: state.numpy()})
    assert_close(with_empty, expected)
    assert_close(without, expected)
    with pytest.raises(MRNNConfigError, match=r"this network has no input region, but the number "
                                              r"of steps is unknown"):
        model(None, state)

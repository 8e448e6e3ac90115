"""mrnn_torch.losses: differentiable, right gradients, usable in a training step.

Values are compared with the numpy definitions in
tests/equivalence/test_losses_equivalence.py; here, what torch users rely on:
autograd gradients match finite differences (``gradcheck``, float64), a
penalty trains only what it names, no NaN gradient at zero spread, dtype and
device are kept, and bad input fails with the core's message.
"""

import numpy as np
import pytest
import torch

import mrnn_core as mc
import mrnn_torch
import mrnn_torch.losses as L
from mrnn_core import losses as core

from .torch_helpers import DEVICES

SPEC = (mc.NetworkSpec()
        .with_recurrent_region("exc", 3, parent_region="ctx")
        .with_recurrent_region("thal", 2)
        .with_recurrent_region("inh", 2, sign="neg", parent_region="ctx")
        .with_input_region("cue", 2)
        .with_recurrent_connection("exc", "exc")
        .with_recurrent_connection("exc", "thal")
        .with_recurrent_connection("thal", "exc")
        .with_recurrent_connection("inh", "exc")
        .with_recurrent_connection("exc", "inh")
        .with_input_connection("cue", "exc"))


def rand(*shape, low=-1.0, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)).requires_grad_()


LOSSES = {  # name -> (loss of one float64 tensor, its shape)
    "mse": (lambda y: L.mse(y, torch.zeros_like(y), torch.tensor([[1.0, 0.0, 0.5, 1.0]] * 2)), (2, 4, 3)),
    "weight_l2": (L.weight_l2, (4, 6)),
    "weight_l1": (L.weight_l1, (4, 6)),
    "rate_l2": (lambda h: L.rate_l2(h, SPEC, "ctx"), (2, 3, 7)),
    "rate_std": (lambda h: L.rate_std(h, axis=1), (2, 4, 3)),
    "rate_cv": (lambda h: L.rate_cv(h.abs() + 0.5), (2, 4, 3)),
}


@pytest.mark.parametrize("name", LOSSES)
def test_autograd_matches_finite_differences(name):
    f, shape = LOSSES[name]
    assert torch.autograd.gradcheck(f, (rand(*shape),))


def test_projection_penalty_gradients_match_finite_differences():
    for kind in ("l2", "l1"):
        assert torch.autograd.gradcheck(
            lambda W: L.projection_penalty(W, SPEC, "ctx", "thal", kind), (rand(7, 7, seed=1),))
        assert torch.autograd.gradcheck(
            lambda W: L.projection_penalty(W, SPEC, "cue", "ctx", kind, side="input"),
            (rand(7, 2, seed=2),))


def dale_model():
    dynamics = mc.Dynamics(rec_constrained=True, inp_constrained=True)
    ckpt = mc.Checkpoint.initialise(SPEC, dynamics, seed=3)
    return {k: torch.tensor(v) for k, v in ckpt.params.items()}, dynamics


def test_a_projection_penalty_on_effective_weights_trains_only_that_block():
    params, dynamics = dale_model()
    W = params["W_rec"].clone().requires_grad_()
    opt = torch.optim.SGD([W], lr=0.1)
    before = W.detach().clone()
    penalty = lambda: L.projection_penalty(  # noqa: E731
        mrnn_torch.effective_weights({**params, "W_rec": W}, dynamics)[0], SPEC, "thal", "ctx")
    start = penalty()
    start.backward()
    opt.step()
    rows, cols = core.projection_indices(SPEC, "thal", "ctx")
    inside = np.zeros((7, 7), dtype=bool)
    inside[np.ix_(rows, cols)] = True
    moved = (W.detach() != before).numpy()
    assert moved[inside].any() and not moved[~inside].any()
    assert penalty() < start


def test_spread_penalties_have_zero_not_nan_gradient_when_all_units_agree():
    for rate in (0.0, 0.5):  # a silent network at initialisation, a uniform one
        h = torch.full((3, 5), rate, dtype=torch.float64, requires_grad=True)
        for f in (L.rate_std, L.rate_cv):
            value = f(h)
            (grad,) = torch.autograd.grad(value, h)
            assert value.item() == 0.0
            assert torch.equal(grad, torch.zeros_like(h))


def test_per_region_rates_are_tensors_that_backpropagate():
    h = rand(2, 3, 7)
    per = L.rate_l2(h, SPEC, ["ctx", "thal"], per_region=True)
    assert list(per) == ["ctx", "thal"]
    (per["thal"]).backward()
    grad = h.grad.numpy()
    assert not grad[..., [0, 1, 2, 5, 6]].any() and grad[..., 3:5].all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_keep_dtype_and_device_and_take_bool_masks(device, dtype):
    y = torch.ones(2, 3, 4, dtype=dtype, device=device)
    keep = torch.tensor([[True, False, False], [False, False, True]], device=device)
    out = L.mse(y, torch.zeros_like(y), keep)
    assert out.dtype == dtype and out.device.type == device and out.item() == 1.0
    for f in (L.weight_l2, L.weight_l1, L.rate_std, L.rate_cv, L.rate_l2):
        r = f(y[0])
        assert r.dtype == dtype and r.device.type == device


@pytest.mark.parametrize("call, match", [
    (lambda: L.mse(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), torch.ones(3)), r"mask: expected a shape matching"),
    (lambda: L.mse(torch.zeros(2, 4, 3), torch.zeros(2, 4)), r"targets: expected the shape of outputs"),
    (lambda: L.weight_l2(torch.zeros(3)), r"W: expected a 2-D weight matrix.*got 1-D"),
    (lambda: L.projection_penalty(torch.zeros(7, 7), SPEC, "ctz", "thal"), r"src: unknown region 'ctz'"),
    (lambda: L.projection_penalty(torch.zeros(7, 2), SPEC, "exc", "thal"), r"W: expected the recurrent matrix"),
    (lambda: L.rate_l2(torch.zeros(2, 6), SPEC, "exc"), r"hs: expected rates \[..., H\] with H = 7"),
    (lambda: L.rate_std(torch.zeros(2, 6), axis=-3), r"axis: expected an integer in \[-2, 1\]"),
    (lambda: L.weight_penalty({"W": torch.zeros(2, 2)}, kind="fro"), r"kind: expected one of 'l2', 'l1', got 'fro'"),
])
def test_bad_input_fails_with_the_core_message(call, match):
    with pytest.raises(mc.MRNNConfigError, match=match):
        call()

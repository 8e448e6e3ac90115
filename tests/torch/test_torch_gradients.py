"""Gradients: torch.autograd.gradcheck (float64, small networks) of the forward pass.

gradcheck compares autograd's Jacobian with central finite differences. The
activations are smooth (tanh, softplus, sigmoid) and the raw weights are kept
away from 0, where Dale's ``|W|`` has its kink, so finite differences are
valid.
"""

import pytest
import torch
from torch.func import functional_call

import mrnn_core
import mrnn_torch
from .torch_helpers import CLASSES, two_region_spec


def _model(kind, activation, constrained):
    spec = two_region_spec(learnable_bias=True)
    dynamics = mrnn_core.Dynamics(kind=kind, activation=activation, dt=10, tau=40,
                                  rec_constrained=constrained, inp_constrained=constrained)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=3)
    model = CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    with torch.no_grad():  # keep raw weights away from |W|'s kink at 0
        for W in (model.W_rec, model.W_inp):
            W.copy_(torch.where(W >= 0, W + 0.05, W - 0.05))
    return model


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("activation, constrained", [("tanh", True), ("softplus", False),
                                                     ("sigmoid", True)])
def test_gradcheck_wrt_weights_bias_state_and_input(kind, activation, constrained):
    model = _model(kind, activation, constrained)
    g = torch.Generator().manual_seed(0)
    inp = torch.randn(2, 4, model.total_num_inputs, dtype=torch.float64, generator=g)
    state = 0.3 * torch.randn(2, model.total_num_units, dtype=torch.float64, generator=g)
    leaves = {"W_rec": model.W_rec.detach().clone(), "W_inp": model.W_inp.detach().clone(),
              "base_firing_e": model.base_firing_e.detach().clone()}

    def forward(W_rec, W_inp, bias, state, inp):
        out = functional_call(model, {"W_rec": W_rec, "W_inp": W_inp, "base_firing_e": bias},
                              (inp, state))
        return out if kind == "elman" else torch.cat(out, dim=-1)

    args = tuple(t.requires_grad_() for t in (*leaves.values(), state, inp))
    assert torch.autograd.gradcheck(forward, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_backward_reaches_every_parameter_and_no_buffer():
    model = _model("leaky", "tanh", True)
    inp = torch.ones(1, 5, model.total_num_inputs, dtype=torch.float64)
    x0, _ = model.batched_initial_condition(1)
    model(inp, x0)[1].square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, b in model.named_buffers():
        assert not b.requires_grad, name

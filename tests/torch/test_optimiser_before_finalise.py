"""An optimiser built before ``finalize_connectivity()`` trains the network.

The path a user takes: build regions by hand, build Adam from
``model.parameters()``, finalise, train a few steps. ``W_rec`` / ``W_inp``
stay ``None`` until finalised (mRNNTorch's API) and the state_dict keys are
mRNNTorch's at every stage.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mrnn_torch import ElmanmRNN, mRNN


def build(cls):
    model = cls(device="cpu", seed=0, dtype=torch.float64)
    model.add_recurrent_region("a", 3)
    model.add_recurrent_region("b", 2, sign="neg", learnable_bias=True)
    model.add_input_region("u", 2)
    model.add_recurrent_connection("a", "b")
    model.add_recurrent_connection("b", "a")
    model.add_input_connection("u", "a")
    return model


def train(model, optimiser, steps=3):
    for _ in range(steps):
        optimiser.zero_grad()
        out = model(torch.ones(2, 5, 2, dtype=torch.float64))
        hs = out[1] if isinstance(out, tuple) else out
        (hs - 0.5).pow(2).sum().backward()
        optimiser.step()


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
@pytest.mark.parametrize("make", [lambda p: torch.optim.Adam(p, lr=0.05),
                                  lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)],
                         ids=["Adam", "SGD"])
def test_an_optimiser_built_before_finalising_trains_every_weight(cls, make):
    model = build(cls)
    assert model.W_rec is None and model.W_inp is None
    optimiser = make(model.parameters())
    model.finalize_connectivity()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert set(before) == {"W_rec", "W_inp", "base_firing_b"}
    held = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert all(id(p) in held for p in model.parameters())
    train(model, optimiser)
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not train"


def test_the_same_steps_give_the_same_weights_as_an_optimiser_built_after():
    early = build(mRNN)
    optimiser_early = torch.optim.Adam(early.parameters(), lr=0.05)
    early.finalize_connectivity()
    late = build(mRNN)
    late.finalize_connectivity()
    train(early, optimiser_early)
    train(late, torch.optim.Adam(late.parameters(), lr=0.05))
    for (name, p), (_, q) in zip(early.named_parameters(), late.named_parameters()):
        assert torch.equal(p, q), name


def test_state_dict_keys_are_mrnntorch_s_before_and_after_finalising():
    model = build(mRNN)
    assert list(model.state_dict()) == ["base_firing_b"]
    twin = build(mRNN)
    twin.load_state_dict(model.state_dict())  # strict, unfinalised to unfinalised
    model.finalize_connectivity()
    assert set(model.state_dict()) == {"W_rec", "W_rec_mask", "W_rec_sign_matrix", "W_inp",
                                       "W_inp_mask", "W_inp_sign_matrix", "base_firing_b"}


def test_moving_the_model_before_finalising_keeps_the_optimiser_s_parameters():
    model = build(mRNN)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    model.float()
    model.finalize_connectivity()
    assert model.W_rec.dtype == torch.float32
    assert isinstance(model.W_rec, nn.Parameter)
    held = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert id(model.W_rec) in held and id(model.W_inp) in held

"""No analysis call changes a torch model: parameters, requires_grad flags,
gradients, buffers and training mode are exactly as before."""

import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_torch
from mrnn_torch.analysis import find_fixed_points, flow_field, jacobian, jacobian_blocks, linearise


def snapshot(model):
    return {
        "params": {k: (p.detach().clone(), p.requires_grad, p.dtype, p.device,
                       None if p.grad is None else p.grad.clone())
                   for k, p in model.named_parameters()},
        "buffers": {k: b.clone() for k, b in model.named_buffers()},
        "training": {k: m.training for k, m in model.named_modules()},
    }


def assert_same(before, after):
    assert before["params"].keys() == after["params"].keys()
    for k, (value, flag, dtype, device, grad) in before["params"].items():
        value2, flag2, dtype2, device2, grad2 = after["params"][k]
        assert (flag, dtype, device) == (flag2, dtype2, device2), k
        assert torch.equal(value, value2), k
        assert (grad is None) == (grad2 is None), k
        assert grad is None or torch.equal(grad, grad2), k
    assert before["buffers"].keys() == after["buffers"].keys()
    for k, value in before["buffers"].items():
        assert torch.equal(value, after["buffers"][k]), k
    assert before["training"] == after["training"]


def a_model():
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", 5, learnable_bias=True, base_firing=0.2)
            .with_recurrent_region("i", 3, sign="neg")
            .with_input_region("cue", 2)
            .with_recurrent_connection("e", "e").with_recurrent_connection("e", "i")
            .with_recurrent_connection("i", "e").with_input_connection("cue", "e"))
    return mrnn_torch.mRNN(spec, activation="tanh", spectral_radius=1.5, seed=0, device="cpu")


@pytest.mark.parametrize("training", [True, False])
def test_no_analysis_call_changes_the_model(training):
    model = a_model()  # float32, as users train it
    model.train(training)
    model.W_inp.requires_grad_(False)
    x0, h0 = model.batched_initial_condition(3)
    xs, hs = model(torch.randn(3, 20, 2), x0, h0)
    hs.sum().backward()  # leaves gradients in .grad, which must survive
    before = snapshot(model)
    states = xs.detach().numpy()
    with torch.no_grad():  # the analysis differentiates even under no_grad
        fps = find_fixed_points(model, trajectories=states, n_initial=8, progress=False)
    jacobian(model, state=states[0, -1])
    jacobian_blocks(model, state=states[0, -1], regions="i")
    linearise(model, state=states[0, -1], inputs=[1.0, 0.0])
    flow_field(model, trajectories=states, resolution=4, regions="e")
    find_fixed_points(model, trajectories=hs.detach().numpy(), n_initial=4, space="h",
                      regions=["e"], progress=False)
    assert_same(before, snapshot(model))
    assert len(fps) >= 1
    assert torch.is_grad_enabled()


def test_the_analysis_runs_in_float64_on_a_float32_model():
    model = a_model()
    x = np.random.default_rng(0).normal(0, 1, 8)
    J32 = jacobian(model, state=x)
    J64 = jacobian(model.to_checkpoint(), state=x)
    assert J32.dtype == np.float64
    np.testing.assert_array_equal(J32, J64)

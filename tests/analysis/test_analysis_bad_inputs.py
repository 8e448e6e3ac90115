"""What the analysis accepts straight from a forward call, and what it refuses.

States straight out of a torch forward (tensors that require grad, as the
README's example passes them) work, and the caller's tensors are left as
they were; a NaN or inf constant input (which would make every search fail
and the finder report "no fixed points") is refused with an error naming it.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_torch
from mrnn_torch import analysis as torch_analysis

from .analysis_helpers import BACKENDS, analysis, checkpoint, two_region_spec  # noqa: F401 (fixture)


def a_model():
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", 4)
            .with_input_region("cue", 2)
            .with_recurrent_connection("e", "e").with_input_connection("cue", "e"))
    return mrnn_torch.mRNN(spec, activation="tanh", seed=0, device="cpu", dtype=torch.float64)


def test_states_from_a_torch_forward_that_require_grad_are_accepted():
    model = a_model()
    x0, h0 = model.batched_initial_condition(2)
    xs, hs = model(torch.randn(2, 15, 2, dtype=torch.float64), x0, h0)
    assert xs.requires_grad and hs.requires_grad
    fps = torch_analysis.find_fixed_points(model, inputs=np.zeros(2), trajectories=xs,
                                           n_initial=6, progress=False)
    assert len(fps) >= 1 and np.all(fps.q <= fps.tol)
    by_numpy = torch_analysis.find_fixed_points(model, inputs=np.zeros(2),
                                                trajectories=xs.detach().numpy(),
                                                n_initial=6, progress=False)
    np.testing.assert_array_equal(fps.points, by_numpy.points)
    flow = torch_analysis.flow_field(model, trajectories=hs, space="h", resolution=3)
    assert flow.velocity.shape == (3, 3, 2)
    J = torch_analysis.jacobian(model, state=xs[0, -1], inputs=torch.zeros(2, requires_grad=True))
    assert J.shape == (4, 4)
    assert xs.requires_grad and xs.grad_fn is not None  # the caller's graph is untouched
    hs.sum().backward()


def test_jax_states_work_in_either_backend():
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    starts = jnp.asarray([[0.5, 0.5], [-2.5, 1.5]])
    found = {name: backend.find_fixed_points(ckpt, initial_states=starts, progress=False)
             for name, backend in BACKENDS.items()}
    np.testing.assert_allclose(found["torch"].points, found["jax"].points, atol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_constant_inputs_are_refused_by_every_function(analysis, bad):
    ckpt = checkpoint(two_region_spec(inputs=2), np.diag([2.0, 2.0]), activation="tanh")
    u = np.array([0.0, bad])
    message = r"inputs: expected finite values, got 1 NaN or inf \(first at index \[1\]\)"
    calls = [
        lambda: analysis.find_fixed_points(ckpt, inputs=u, initial_states=np.zeros((2, 2)),
                                           progress=False),
        lambda: analysis.jacobian(ckpt, state=np.zeros(2), inputs=u),
        lambda: analysis.linearise(ckpt, state=np.zeros(2), inputs=u),
        lambda: analysis.flow_field(ckpt, trajectories=np.random.default_rng(0).normal(size=(5, 2)),
                                    inputs=u, resolution=2),
    ]
    for call in calls:
        with pytest.raises(mrnn_core.MRNNConfigError, match=message):
            call()


def test_non_numeric_inputs_are_refused_naming_the_argument(analysis):
    ckpt = checkpoint(two_region_spec(inputs=2), np.diag([2.0, 2.0]), activation="tanh")
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"inputs: expected an array of real numbers, got str"):
        analysis.jacobian(ckpt, state=np.zeros(2), inputs="zero")

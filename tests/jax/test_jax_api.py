"""The JAX package mirrors the torch package, and reads what torch writes."""

import inspect

import numpy as np
import torch

import mrnn_core
import mrnn_jax
import mrnn_torch
from .jax_cases import SMALL_SPEC, assert_close, run_model

SHARED = {
    "mRNN", "ElmanmRNN", "mRNNBase", "MRNNConfigError", "Dynamics", "Checkpoint",
    "get_activation", "effective_weights", "input_drive", "step", "simulate",
    "region_indices", "region_activity", "projection", "weight_subset",
    "tonic_input", "initial_condition", "Readout", "losses", "Ensemble",
}
"""The mirrored API: what ``__all__`` of every backend holds, no more, no less
(backend-only helpers stay importable outside ``__all__``)."""


def test_both_packages_export_the_same_names():
    for package in (mrnn_jax, mrnn_torch):
        assert set(package.__all__) == SHARED, package.__name__
        assert all(hasattr(package, name) for name in SHARED), package.__name__
        assert issubclass(package.mRNN, package.mRNNBase), package.__name__
        assert issubclass(package.ElmanmRNN, package.mRNNBase), package.__name__


def test_pure_functions_take_the_same_arguments():
    for name in ("effective_weights", "input_drive", "step", "region_indices", "region_activity",
                 "projection", "weight_subset", "tonic_input", "initial_condition"):
        assert (list(inspect.signature(getattr(mrnn_jax, name)).parameters)
                == list(inspect.signature(getattr(mrnn_torch, name)).parameters)), name
    jax_simulate = list(inspect.signature(mrnn_jax.simulate).parameters)
    assert jax_simulate[-1] == "key"  # JAX alone draws noise from an explicit key
    assert jax_simulate[:-1] == list(inspect.signature(mrnn_torch.simulate).parameters)


def test_a_model_trained_in_torch_runs_unchanged_in_jax():
    """Smoke test (the equivalence suite covers this property broadly)."""
    ckpt = mrnn_core.Checkpoint.initialise(SMALL_SPEC, mrnn_core.Dynamics(activation="tanh"), seed=5)
    trained = mrnn_torch.mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    optimiser = torch.optim.SGD(trained.parameters(), lr=0.1)
    inp = torch.rand(2, 6, 2, dtype=torch.float64)
    x0 = torch.full((2, 12), 0.1, dtype=torch.float64)
    trained(inp, x0)[1].square().sum().backward()
    optimiser.step()
    exported = trained.to_checkpoint()
    assert not np.array_equal(exported.params["W_rec"], ckpt.params["W_rec"])

    model = mrnn_jax.mRNN.from_checkpoint(exported)
    for name in mrnn_core.PARAM_NAMES:
        assert model.to_checkpoint().params[name].tobytes() == exported.params[name].tobytes()
    with torch.no_grad():
        expected = tuple(o.numpy() for o in trained(inp, x0))
    assert_close(run_model(model, {"inp": inp.numpy(), "x0": x0.numpy(), "h0": None}), expected,
                 what="jax vs torch")

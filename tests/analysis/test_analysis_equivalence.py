"""torch and JAX finders agree, given the same model and the same initial states.

Tolerance: both polish every point with Newton steps to rounding level, so
points and eigenvalues agree to ~1e-13 on these networks; we assert 1e-9.
"""

import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_jax
import mrnn_torch
from .analysis_helpers import ATOL, BACKENDS, match, random_network

CLASSES = {"leaky": (mrnn_torch.mRNN, mrnn_jax.mRNN),
           "elman": (mrnn_torch.ElmanmRNN, mrnn_jax.ElmanmRNN)}


def models(ckpt):
    torch_cls, jax_cls = CLASSES[ckpt.dynamics.kind]
    return (torch_cls.from_checkpoint(ckpt, device="cpu", dtype=torch.float64),
            jax_cls.from_checkpoint(ckpt))


def visited_states(ckpt, space, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1, (6, 40, ckpt.spec.input_size))
    x0 = rng.normal(0, 1, (6, ckpt.spec.hidden_size))
    out = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, u, x0=x0) \
        if ckpt.dynamics.kind == "leaky" else \
        mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, u, h0=np.tanh(x0))
    if ckpt.dynamics.kind == "leaky":
        return out[0] if space == "x" else out[1]
    return np.arctanh(np.clip(out, -0.999, 0.999)) if space == "x" else out


CASES = [  # (kind, space, regions, seed): networks with 3 to 7 fixed points
    ("leaky", "x", None, 2),
    ("leaky", "h", None, 2),
    ("elman", "x", None, 2),
    ("leaky", "x", "e", 1),
]


@pytest.mark.parametrize("kind, space, regions, seed", CASES)
def test_torch_and_jax_find_the_same_fixed_points(kind, space, regions, seed):
    ckpt = random_network(9, 2, seed=seed, gain=2.5, kind=kind)
    u = np.random.default_rng(seed).normal(0, 0.3, 2)
    traj = visited_states(ckpt, space, seed)
    found = {}
    for name, model in zip(("torch", "jax"), models(ckpt)):
        found[name] = BACKENDS[name].find_fixed_points(
            model, trajectories=traj, n_initial=64, noise_scale=1.0, seed=seed, inputs=u,
            space=space, regions=regions, progress=False)
    a, b = found["torch"], found["jax"]
    assert len(a) >= 2, "the case should have several fixed points"
    order = match(a.points, b.points)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues[order], rtol=0, atol=ATOL)
    np.testing.assert_allclose(a.jacobians, b.jacobians[order], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(a.stable_discrete, b.stable_discrete[order])
    np.testing.assert_array_equal(a.counts, b.counts[order])
    np.testing.assert_array_equal(a.is_outlier, b.is_outlier[order])
    assert np.all(a.q <= a.tol) and np.all(b.q <= b.tol)


def test_torch_and_jax_flow_fields_agree():
    ckpt = random_network(6, 2, seed=5)
    traj = visited_states(ckpt, "x")
    fields = [BACKENDS[name].flow_field(model, trajectories=traj, resolution=6, inputs=[0.1, 0.2],
                                        linearise_at=traj[0, -1])
              for name, model in zip(("torch", "jax"), models(ckpt))]
    np.testing.assert_allclose(fields[0].basis, fields[1].basis, rtol=0, atol=0)
    np.testing.assert_allclose(fields[0].velocity, fields[1].velocity, rtol=0, atol=1e-13)
    np.testing.assert_allclose(fields[0].linear_velocity, fields[1].linear_velocity, rtol=0,
                               atol=1e-13)


def test_a_model_its_checkpoint_and_its_arrays_give_the_same_answer():
    ckpt = random_network(6, 2, seed=6)
    starts = np.random.default_rng(6).normal(0, 1, (10, 6))
    torch_model, jax_model = models(ckpt)
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in ckpt.params.items()}
    for name, model in zip(("torch", "jax"), (torch_model, jax_model)):
        find = BACKENDS[name].find_fixed_points
        by_ckpt = find(ckpt, initial_states=starts, regions="i", progress=False)
        by_model = find(model, initial_states=starts, regions="i", progress=False)
        arrays = tensors if name == "torch" else dict(jax_model.params())
        by_arrays = find(arrays, ckpt.dynamics, ckpt.connectivity, initial_states=starts,
                         regions="i", progress=False)
        for other in (by_model, by_arrays):
            np.testing.assert_array_equal(other.points, by_ckpt.points)
            np.testing.assert_array_equal(other.eigenvalues, by_ckpt.eigenvalues)

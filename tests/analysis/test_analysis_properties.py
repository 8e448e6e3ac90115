"""Properties of every reported fixed point, on drawn networks (torch backend;
the equivalence tests hold JAX to the same numbers)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
from mrnn_core.testing import arrays, dynamics_settings, network_specs
from mrnn_torch.analysis import find_fixed_points


@st.composite
def networks(draw):
    spec = draw(network_specs(max_regions=3, max_units=4, allow_learnable_bias=False))
    dynamics = draw(dynamics_settings())
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=draw(st.integers(0, 2**31)))
    H, I = spec.hidden_size, spec.input_size
    params = dict(ckpt.params, W_rec=draw(arrays((H, H), -2.0, 2.0)),
                  base_firing=draw(arrays((H,), -0.5, 0.5)))
    return (mrnn_core.Checkpoint(spec, dynamics, params), draw(arrays((I,), -1.0, 1.0)),
            draw(arrays((12, H), -2.0, 2.0)))


def next_state(ckpt, x, u):
    """One reference step from pre-activation ``x``: next ``x`` (leaky) or next rate (Elman)."""
    inp = u[None, :]
    if ckpt.dynamics.kind == "leaky":
        return mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, inp, x0=x)[0][0]
    f = mrnn_core.reference.activation_function(ckpt.dynamics.activation)
    return mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, inp, h0=f(x))[0]


@given(networks())
def test_reported_points_are_fixed_points_of_the_model_with_consistent_eigenpairs(case):
    ckpt, u, starts = case
    fps = find_fixed_points(ckpt, initial_states=starts, inputs=u, progress=False)
    f = mrnn_core.reference.activation_function(ckpt.dynamics.activation)
    scale = 1.0 + np.max(np.abs(fps.points), initial=0.0)
    for k, x in enumerate(fps.points):
        expected = x if ckpt.dynamics.kind == "leaky" else f(x)
        np.testing.assert_allclose(next_state(ckpt, x, u), expected, rtol=0, atol=1e-8 * scale)
        J, values, vectors = fps.jacobians[k], fps.eigenvalues[k], fps.eigenvectors[k]
        np.testing.assert_allclose(J @ vectors, vectors * values, atol=1e-8 * (1 + np.abs(J).max()))
        assert fps.stable_discrete[k] == bool(np.all(np.abs(values) < 1))
    assert np.all(np.diff(fps.q) >= 0) and np.all(fps.q <= fps.tol)
    assert fps.counts.sum() <= len(starts)
    pairwise = np.linalg.norm(fps.points[:, None] - fps.points[None], axis=-1)
    assert np.all(pairwise[~np.eye(len(fps), dtype=bool)] > 1e-6)

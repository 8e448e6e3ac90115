"""Jacobians, region blocks, linearisation and flow fields, in both backends."""

import numpy as np
import pytest

import mrnn_core
from .analysis_helpers import ATOL, analysis, checkpoint, random_network, two_region_spec  # noqa: F401
from mrnn_core.analysis import activation_derivative, closed_form_jacobian


def one_step(ckpt, state, u):
    """One step of the numpy reference simulator (no noise) from pre-activation
    ``state``: the next pre-activation (leaky) or the next rate (Elman, whose
    simulator returns rates only)."""
    dyn = ckpt.dynamics
    inp = np.broadcast_to(u, (1, len(u)))
    if dyn.kind == "leaky":
        return mrnn_core.reference.simulate(ckpt.params, dyn, inp, x0=state)[0][0]
    rates = mrnn_core.reference.activation_function(dyn.activation)(state)
    return mrnn_core.reference.simulate(ckpt.params, dyn, inp, h0=rates)[0]


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("activation", mrnn_core.ACTIVATIONS)
def test_autodiff_jacobian_equals_the_closed_form(analysis, kind, activation):
    ckpt = random_network(6, 2, seed=4, kind=kind, activation=activation)
    rng = np.random.default_rng(5)
    states, u = rng.normal(0, 1.5, (3, 6)), rng.normal(0, 1, 2)
    W, W_inp = mrnn_core.reference.effective_weights(ckpt.params, ckpt.dynamics)
    alpha = ckpt.dynamics.alpha
    J = analysis.jacobian(ckpt, state=states, inputs=u)
    expected = closed_form_jacobian(W, activation_derivative(activation, states), alpha, "x")
    np.testing.assert_allclose(J, expected, rtol=0, atol=1e-12)
    rates = mrnn_core.reference.activation_function(activation)(states)
    J_h = analysis.jacobian(ckpt, state=rates, inputs=u, space="h")
    drive = rates @ W.T + W_inp @ u + ckpt.params["base_firing"]
    expected_h = closed_form_jacobian(W, activation_derivative(activation, drive), alpha, "h")
    np.testing.assert_allclose(J_h, expected_h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_the_x_space_map_is_one_step_of_the_model(analysis, kind):
    ckpt = random_network(5, 2, seed=6, kind=kind)
    rng = np.random.default_rng(7)
    x, u = rng.normal(0, 1, 5), rng.normal(0, 1, 2)
    value = analysis.linearise(ckpt, state=x, inputs=u).value
    if kind == "elman":
        value = np.tanh(value)
    np.testing.assert_allclose(value, one_step(ckpt, x, u), rtol=0, atol=1e-13)


def test_jacobian_blocks_are_the_region_slices(analysis):
    ckpt = random_network(7, 1, seed=8)
    state = np.random.default_rng(9).normal(0, 1, 7)
    full = analysis.jacobian(ckpt, state=state)
    blocks = analysis.jacobian_blocks(ckpt, state=state, regions="i")
    i = ckpt.connectivity.region_slice("i")
    e = ckpt.connectivity.region_slice("e")
    np.testing.assert_array_equal(blocks.units, np.arange(i.start, i.stop))
    np.testing.assert_array_equal(blocks.excluded, np.arange(e.start, e.stop))
    np.testing.assert_array_equal(blocks.included, full[i, i])
    np.testing.assert_array_equal(blocks.excluded_to_included, full[i, e])


def test_an_absent_projection_gives_a_zero_block(analysis):
    # Only a -> a, b -> b and b -> a exist: nothing goes a -> b.
    ckpt = checkpoint(two_region_spec(coupled=True), [[2.0, 0.7], [0.0, 1.5]], activation="tanh")
    state = np.array([0.3, -0.4])
    into_b = analysis.jacobian_blocks(ckpt, state=state, regions="b")
    into_a = analysis.jacobian_blocks(ckpt, state=state, regions="a")
    np.testing.assert_array_equal(into_b.excluded_to_included, [[0.0]])
    alpha = ckpt.dynamics.alpha
    np.testing.assert_allclose(into_a.excluded_to_included,
                               [[alpha * 0.7 * (1 - np.tanh(-0.4) ** 2)]], rtol=1e-14)


@pytest.mark.parametrize("space", ["x", "h"])
def test_linearisation_error_is_second_order(analysis, space):
    ckpt = random_network(6, 2, seed=10)
    rng = np.random.default_rng(11)
    state = rng.normal(0, 1, 6) if space == "x" else np.tanh(rng.normal(0, 1, 6))
    u, d_state, d_input = rng.normal(0, 1, 2), rng.normal(0, 1, 6), rng.normal(0, 1, 2)
    lin = analysis.linearise(ckpt, state=state, inputs=u, space=space)
    errors = []
    for eps in (1e-2, 5e-3, 2.5e-3):
        exact = analysis.linearise(ckpt, state=state + eps * d_state, inputs=u + eps * d_input,
                                   space=space).value
        errors.append(np.max(np.abs(lin(eps * d_state, eps * d_input) - exact)))
    # Halving eps quarters the error of a first-order expansion.
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.05)
    np.testing.assert_array_equal(lin(np.zeros(6)), lin.value)


def test_input_jacobian_of_the_leaky_map_is_alpha_times_the_input_weights(analysis):
    ckpt = random_network(5, 3, seed=12)
    _, W_inp = mrnn_core.reference.effective_weights(ckpt.params, ckpt.dynamics)
    lin = analysis.linearise(ckpt, state=np.ones(5), inputs=np.zeros(3))
    np.testing.assert_allclose(lin.input_jacobian, ckpt.dynamics.alpha * W_inp, rtol=0, atol=1e-15)


def trajectories(ckpt, seed=0, batch=4, steps=60):
    u = np.random.default_rng(seed).normal(0, 1, (batch, steps, ckpt.spec.input_size))
    x0 = np.random.default_rng(seed + 1).normal(0, 1, (batch, ckpt.spec.hidden_size))
    return mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, u, x0)[0]


def test_flow_field_on_the_pca_plane(analysis):
    ckpt = random_network(6, 2, seed=13)
    xs = trajectories(ckpt)
    flow = analysis.flow_field(ckpt, trajectories=xs, resolution=7)
    B = flow.basis
    np.testing.assert_allclose(B.T @ B, np.eye(2), atol=1e-12)
    flat = xs.reshape(-1, 6)
    np.testing.assert_allclose(flow.origin, flat.mean(0), atol=1e-12)
    # The plane holds the largest-variance directions: no unit vector beats them.
    variance = np.var((flat - flat.mean(0)) @ B, axis=0).sum()
    for v in np.random.default_rng(0).normal(size=(20, 6)):
        v = v / np.linalg.norm(v)
        assert np.var(flat @ v) <= variance
    assert flow.states.shape == (7, 7, 6) and flow.velocity.shape == (7, 7, 2)
    j, i = 2, 5
    np.testing.assert_allclose(flow.states[j, i], flow.origin + B @ [flow.c1[i], flow.c2[j]])
    step = one_step(ckpt, flow.states[j, i], np.zeros(2)) - flow.states[j, i]
    np.testing.assert_allclose(flow.velocity[j, i], B.T @ step, rtol=0, atol=1e-13)
    np.testing.assert_allclose(flow.speed[j, i], np.linalg.norm(step), rtol=1e-13)
    coords = flow.project(flat)
    assert flow.c1[0] < coords[:, 0].min() and coords[:, 0].max() < flow.c1[-1]


def test_flow_field_on_a_user_basis_and_its_linearisation(analysis):
    ckpt = random_network(4, 1, seed=14)
    basis = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, -1.0]])
    origin = np.array([0.2, -0.1, 0.3, 0.0])
    flow = analysis.flow_field(ckpt, basis=basis, origin=origin, limits=((-0.5, 0.5), (-1, 1)),
                               resolution=5, inputs=[0.4])
    np.testing.assert_array_equal(flow.c1, np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(flow.states[4, 0], origin + basis @ [-0.5, 1.0])
    # Coordinates come back by least squares even for a non-orthogonal basis.
    np.testing.assert_allclose(flow.project(flow.states[1, 3]), [flow.c1[3], flow.c2[1]], atol=1e-13)
    step = one_step(ckpt, flow.states[1, 3], np.array([0.4])) - flow.states[1, 3]
    np.testing.assert_allclose(flow.velocity[1, 3], np.linalg.lstsq(basis, step, rcond=None)[0],
                               atol=1e-13)
    # At the expansion point the linearised flow is exact; nearby it is first order.
    centre = flow.states[2, 2]
    np.testing.assert_allclose(centre, origin)
    np.testing.assert_allclose(flow.linear_velocity[2, 2], flow.velocity[2, 2], atol=1e-15)
    near = analysis.flow_field(ckpt, basis=basis, origin=origin, inputs=[0.4], resolution=3,
                               limits=((-1e-3, 1e-3), (-1e-3, 1e-3)))
    far = analysis.flow_field(ckpt, basis=basis, origin=origin, inputs=[0.4], resolution=3,
                              limits=((-2e-3, 2e-3), (-2e-3, 2e-3)))
    gap = lambda f: np.max(np.abs(f.linear_velocity - f.velocity))  # noqa: E731
    assert 3.0 < gap(far) / gap(near) < 5.0


def test_flow_field_restricted_to_a_region(analysis):
    ckpt = random_network(6, 1, seed=15)
    xs = trajectories(ckpt, seed=3)
    held = np.full(6, 0.25)
    flow = analysis.flow_field(ckpt, trajectories=xs, regions="e", held_state=held, resolution=5)
    e = ckpt.connectivity.region_slice("e")
    i = ckpt.connectivity.region_slice("i")
    np.testing.assert_array_equal(flow.basis[i], 0.0)
    np.testing.assert_array_equal(flow.units, np.arange(e.start, e.stop))
    np.testing.assert_array_equal(flow.states[..., i], 0.25)
    step = one_step(ckpt, flow.states[3, 1], np.zeros(1)) - flow.states[3, 1]
    np.testing.assert_allclose(flow.speed[3, 1], np.linalg.norm(step[e]), rtol=1e-13)
    pca = mrnn_core.analysis.pca_plane(xs[..., e])[1]
    np.testing.assert_allclose(flow.basis[e], pca, atol=1e-12)

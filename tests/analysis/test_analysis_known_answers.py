"""Fixed points with known answers, in both backends."""

import numpy as np
import pytest

import mrnn_core
from .analysis_helpers import ATOL, analysis, bistable_root, checkpoint, two_region_spec  # noqa: F401


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_linear_network_has_the_closed_form_fixed_point(analysis, kind):
    # f(x) = x: F(x) = x has the unique solution (I - W_eff) x = W_inp_eff u + b.
    H, I = 5, 2
    rng = np.random.default_rng(1)
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("r", H).with_input_region("cue", I)
            .with_recurrent_connection("r", "r").with_input_connection("cue", "r"))
    W = rng.normal(0, 0.4, (H, H))
    W_inp, b, u = rng.normal(0, 1, (H, I)), rng.normal(0, 1, H), np.array([0.7, -1.3])
    ckpt = checkpoint(spec, W, W_inp, b, kind=kind, activation="linear")
    expected = np.linalg.solve(np.eye(H) - W, W_inp @ u + b)
    starts = rng.normal(0, 2, (8, H))
    for space in ("x", "h"):
        fps = analysis.find_fixed_points(ckpt, initial_states=starts, inputs=u, space=space,
                                         progress=False)
        assert len(fps) == 1 and fps.counts[0] == len(starts)
        np.testing.assert_allclose(fps.points[0], expected, rtol=0, atol=ATOL)
        assert fps.q[0] <= fps.tol
        np.testing.assert_allclose(np.sort(np.abs(fps.eigenvalues[0]))[::-1],
                                   np.abs(fps.eigenvalues[0]), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_two_uncoupled_bistable_units_have_four_stable_points(analysis, kind):
    # Each unit solves x = g tanh(x): roots 0 and +-r. The 3 x 3 combinations are
    # all fixed points; only (+-r, +-r) are stable.
    gain = 2.0
    ckpt = checkpoint(two_region_spec(), np.diag([gain, gain]), kind=kind, activation="tanh")
    r = bistable_root(gain)
    grid = np.array([[a, b] for a in (-3, -0.4, 0.3, 3) for b in (-3, -0.35, 0.45, 3)])
    fps = analysis.find_fixed_points(ckpt, initial_states=grid, progress=False)
    expected = np.array([[a, b] for a in (-r, 0.0, r) for b in (-r, 0.0, r)])
    assert len(fps) == 9
    order = [int(np.argmin(np.max(np.abs(fps.points - e), axis=1))) for e in expected]
    np.testing.assert_allclose(fps.points[order], expected, rtol=0, atol=ATOL)
    corners = np.all(expected != 0, axis=1)
    np.testing.assert_array_equal(fps.stable_discrete[order], corners)
    # Closed-form eigenvalues: per unit (1 - alpha) + alpha g (1 - tanh(x)^2).
    alpha = ckpt.dynamics.alpha
    slope = (1 - alpha) + alpha * gain * (1 - np.tanh(expected) ** 2)
    np.testing.assert_allclose(np.sort(np.abs(fps.eigenvalues[order]), axis=1),
                               np.sort(np.abs(slope), axis=1), rtol=0, atol=1e-10)
    if kind == "leaky":
        np.testing.assert_array_equal(fps.stable_continuous[order], corners)
        np.testing.assert_allclose(np.sort(fps.continuous_eigenvalues[order].real, axis=1),
                                   np.sort((slope - 1) / ckpt.dynamics.dt, axis=1), atol=1e-12)
    else:
        assert fps.stable_continuous is None


def test_rate_space_points_are_the_rates_of_the_x_space_points(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 3.0]), activation="tanh")
    starts = np.array([[a, b] for a in (-3, -0.3, 0.0, 0.4, 3) for b in (-3, -0.2, 0.0, 0.5, 3)])
    in_x = analysis.find_fixed_points(ckpt, initial_states=starts, progress=False)
    in_h = analysis.find_fixed_points(ckpt, initial_states=np.tanh(starts), space="h",
                                      progress=False)
    assert len(in_x) == len(in_h) == 9
    rates = np.tanh(in_x.points)
    for p in in_h.points:
        assert np.min(np.max(np.abs(rates - p), axis=1)) <= ATOL
    # J_x = (1-a) I + a W D and J_h = (1-a) I + a D W share their eigenvalues.
    order = [int(np.argmin(np.max(np.abs(rates - p), axis=1))) for p in in_h.points]
    np.testing.assert_allclose(in_h.eigenvalues, in_x.eigenvalues[order], atol=1e-10)
    np.testing.assert_array_equal(in_h.stable_discrete, in_x.stable_discrete[order])


def test_region_search_holds_the_other_regions(analysis):
    # b -> a with weight c: with b held at h_b, unit a solves x = g tanh(x) + c f(x_b).
    gain, c, held_b = 2.0, 0.5, 0.8
    W = np.array([[gain, c], [0.0, gain]])
    ckpt = checkpoint(two_region_spec(coupled=True), W, activation="tanh")
    starts = np.column_stack([np.linspace(-3, 3, 7), np.full(7, -5.0)])
    fps = analysis.find_fixed_points(ckpt, initial_states=starts, regions="a",
                                     held_state=[0.0, held_b], progress=False)
    np.testing.assert_array_equal(fps.units, [0])
    assert fps.jacobians.shape[1:] == (1, 1)
    np.testing.assert_array_equal(fps.points[:, 1], held_b)
    x = fps.points[:, 0]
    np.testing.assert_allclose(x, gain * np.tanh(x) + c * np.tanh(held_b), rtol=0, atol=ATOL)
    assert len(fps) == 3  # this drive still leaves a bistable unit
    # By default the other regions sit at the mean of the reference states.
    default = analysis.find_fixed_points(ckpt, initial_states=starts, regions=["a"],
                                         progress=False)
    np.testing.assert_array_equal(default.points[:, 1], -5.0)


def test_a_parent_name_selects_its_children(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    starts = np.random.default_rng(3).uniform(-3, 3, (16, 2))
    by_parent = analysis.find_fixed_points(ckpt, initial_states=starts, regions="pair",
                                           progress=False)
    whole = analysis.find_fixed_points(ckpt, initial_states=starts, progress=False)
    np.testing.assert_array_equal(by_parent.units, [0, 1])
    np.testing.assert_allclose(by_parent.points, whole.points, atol=0)


def test_points_far_from_every_sampled_state_are_outliers(analysis):
    # A linear network's only fixed point is at -b / (W - 1): far from states near 0.
    b = np.array([10.0, 0.0])
    ckpt = checkpoint(two_region_spec(), np.diag([0.5, 0.5]), base_firing=b, activation="linear")
    near_zero = np.random.default_rng(0).normal(0, 0.05, (50, 2))
    fps = analysis.find_fixed_points(ckpt, trajectories=near_zero, n_initial=4, progress=False)
    np.testing.assert_allclose(fps.points, [[20.0, 0.0]], atol=ATOL)
    assert fps.is_outlier.tolist() == [True]
    around = near_zero + np.array([20.0, 0.0])
    fps = analysis.find_fixed_points(ckpt, trajectories=around, n_initial=4, progress=False)
    assert fps.is_outlier.tolist() == [False]

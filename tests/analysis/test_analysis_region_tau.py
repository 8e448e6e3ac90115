"""Analysis of networks whose regions have their own time constants (issue 9).

With per-unit ``alpha = dt / tau``, the leaky one-step map is
``F(x) = x + diag(alpha) (-x + W f(x) + d)``: its fixed points do not depend
on tau, but its Jacobian ``diag(1 - alpha) + diag(alpha) W diag(f'(x))``
does. The expected matrices below are written out from that formula.
"""

import numpy as np

import mrnn_core
from .analysis_helpers import ATOL, analysis, checkpoint  # noqa: F401

DT = 10.0
TAUS = {"fast": 20.0, "slow": 100.0}  # alpha 0.5 and 0.1


def linear_two_speed_network(H_fast=2, H_slow=3, seed=3):
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("fast", H_fast, tau=TAUS["fast"])
            .with_recurrent_region("slow", H_slow, tau=TAUS["slow"])
            .with_input_region("cue", 1))
    for src in ("fast", "slow"):
        for dst in ("fast", "slow"):
            spec = spec.with_recurrent_connection(src, dst)
    spec = spec.with_input_connection("cue", "fast")
    H = H_fast + H_slow
    rng = np.random.default_rng(seed)
    W, b = rng.normal(0, 0.3, (H, H)), rng.normal(0, 1, H)
    alpha = np.array([DT / TAUS["fast"]] * H_fast + [DT / TAUS["slow"]] * H_slow)
    ckpt = checkpoint(spec, W, np.zeros((H, 1)), b, activation="linear", dt=DT)
    return ckpt, W, b, alpha


def test_checkpoint_carries_the_region_time_constants():
    ckpt, *_ = linear_two_speed_network()
    np.testing.assert_array_equal(ckpt.params["tau"], [20.0, 20.0, 100.0, 100.0, 100.0])


def test_jacobian_scales_each_row_by_its_units_alpha(analysis):
    ckpt, W, b, alpha = linear_two_speed_network()
    state = np.linspace(-1.0, 1.0, 5)
    expected = np.diag(1.0 - alpha) + alpha[:, None] * W
    np.testing.assert_allclose(analysis.jacobian(ckpt, state=state), expected, rtol=0, atol=1e-14)
    lin = analysis.linearise(ckpt, state=state)
    x_next = state + alpha * (-state + W @ state + b)
    np.testing.assert_allclose(lin.value, x_next, rtol=0, atol=1e-14)


def test_fixed_point_is_the_taus_independent_solution_with_tau_dependent_eigenvalues(analysis):
    ckpt, W, b, alpha = linear_two_speed_network()
    expected = np.linalg.solve(np.eye(5) - W, b)
    starts = np.random.default_rng(0).normal(0, 2, (6, 5))
    fps = analysis.find_fixed_points(ckpt, initial_states=starts, progress=False)
    assert len(fps) == 1
    np.testing.assert_allclose(fps.points[0], expected, rtol=0, atol=ATOL)
    J = np.diag(1.0 - alpha) + alpha[:, None] * W
    np.testing.assert_allclose(np.sort_complex(fps.eigenvalues[0]),
                               np.sort_complex(np.linalg.eigvals(J)), rtol=0, atol=1e-10)


def test_region_search_uses_the_analysed_units_alpha(analysis):
    ckpt, W, b, alpha = linear_two_speed_network()
    held = np.full(5, 0.25)
    fps = analysis.find_fixed_points(ckpt, initial_states=np.zeros((2, 5)), regions="slow",
                                     held_state=held, progress=False)
    U, E = np.arange(2, 5), np.arange(2)
    d = b[U] + W[np.ix_(U, E)] @ held[E]
    expected = np.linalg.solve(np.eye(3) - W[np.ix_(U, U)], d)
    np.testing.assert_allclose(fps.points[0][U], expected, rtol=0, atol=ATOL)
    J = np.diag(1.0 - alpha[U]) + alpha[U][:, None] * W[np.ix_(U, U)]
    np.testing.assert_allclose(np.sort_complex(fps.eigenvalues[0]),
                               np.sort_complex(np.linalg.eigvals(J)), rtol=0, atol=1e-10)


def test_equal_region_taus_give_the_scalar_tau_analysis(analysis):
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 3, tau=50.0)
            .with_recurrent_connection("a", "a"))
    W = np.random.default_rng(1).normal(0, 0.5, (3, 3))
    per_region = checkpoint(spec, W, activation="tanh", dt=DT)
    scalar = checkpoint(mrnn_core.NetworkSpec().with_recurrent_region("a", 3)
                        .with_recurrent_connection("a", "a"), W, activation="tanh", dt=DT, tau=50.0)
    state = np.array([0.3, -0.2, 0.9])
    np.testing.assert_array_equal(analysis.jacobian(per_region, state=state),
                                  analysis.jacobian(scalar, state=state))

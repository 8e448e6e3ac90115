"""The numpy pieces of mrnn_core.analysis and the argument checks every backend shares."""

import numpy as np
import pytest

import mrnn_core
from .analysis_helpers import analysis, checkpoint, two_region_spec  # noqa: F401
from mrnn_core import MRNNConfigError
from mrnn_core import analysis as core


def test_merge_keeps_the_best_point_of_each_group():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [1e-7, 0.0], [1.0, 1.0 + 5e-7], [3.0, 0.0]])
    q = np.array([2e-20, 1e-20, 1e-21, 3e-20, 5e-20])
    kept, counts = core.merge_duplicates(points, q, tol=1e-6)
    np.testing.assert_array_equal(kept, [2, 1, 4])
    np.testing.assert_array_equal(counts, [2, 2, 1])
    kept, _ = core.merge_duplicates(points, q, tol=0.0)
    assert len(kept) == 5


def test_outliers_are_judged_against_the_spread_of_the_reference_states():
    reference = np.random.default_rng(0).normal(0, 1, (200, 3))
    spread = np.sqrt(np.mean(np.sum((reference - reference.mean(0)) ** 2, axis=1)))
    inside, outside = reference[0] + 0.1, reference.mean(0) + [12 * spread + 10, 0, 0]
    flags = core.outlier_flags(np.array([inside, outside]), reference, scale=10.0)
    assert flags.tolist() == [False, True]


def test_eigenvalues_come_largest_first_with_their_eigenvectors():
    rng = np.random.default_rng(1)
    J = rng.normal(0, 1, (4, 5, 5))
    values, vectors = core.sorted_eig(J)
    assert np.all(np.diff(np.abs(values), axis=1) <= 1e-12)
    for k in range(4):
        np.testing.assert_allclose(J[k] @ vectors[k], vectors[k] * values[k], atol=1e-12)
    rotation = np.array([[0.0, -0.5], [0.5, 0.0]])  # eigenvalues +-0.5i: ties broken by Im
    values, _ = core.sorted_eig(rotation)
    np.testing.assert_allclose(values, [0.5j, -0.5j], atol=1e-15)


def test_stability_flags_for_the_map_and_the_continuous_system():
    values = np.array([[0.5, 0.99j], [1.01, 0.0], [-1.5, 0.2], [0.5 + 0.9j, 0.5 - 0.9j]])
    discrete, continuous = core.stability_flags(values, "leaky")
    assert discrete.tolist() == [True, False, False, False]
    # Re(lambda) < 1 <=> the continuous-time Jacobian (J - I) / dt is stable.
    assert continuous.tolist() == [True, False, True, True]
    assert core.stability_flags(values, "elman")[1] is None


def test_sampled_starts_are_reproducible_states_of_the_trajectories():
    traj = np.random.default_rng(2).normal(0, 1, (3, 10, 4))
    a = core.sample_initial_states(traj, 12, seed=7)
    b = core.sample_initial_states(traj, 12, seed=7)
    np.testing.assert_array_equal(a, b)
    pool = traj.reshape(-1, 4)
    assert all(np.any(np.all(pool == s, axis=1)) for s in a)
    assert len({tuple(s) for s in a}) == 12  # no repeats while the pool is big enough
    noisy = core.sample_initial_states(traj, 12, noise_scale=0.1, seed=7)
    assert 0 < np.max(np.abs(noisy - a)) < 1.0


def test_fixed_point_record_subset_and_continuous_eigenvalues(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    grid = np.array([[a, b] for a in (-3, 0.0, 3) for b in (-3, 0.0, 3)])
    fps = analysis.find_fixed_points(ckpt, initial_states=grid, progress=False)
    stable = fps.subset(fps.stable_discrete)
    assert len(stable) == 4 and np.all(stable.stable_discrete)
    np.testing.assert_array_equal(stable.points, fps.points[fps.stable_discrete])
    assert "9 points, 4 stable" in repr(fps)
    with pytest.raises(ValueError, match="read-only"):
        fps.points[0, 0] = 1.0


def test_unconverged_searches_are_dropped_unless_asked_for(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    starts = np.array([[0.5, 0.5], [-2.5, 1.5]])
    none = analysis.find_fixed_points(ckpt, initial_states=starts, max_iters=0, progress=False)
    assert len(none) == 0 and none.points.shape == (0, 2)
    kept = analysis.find_fixed_points(ckpt, initial_states=starts, max_iters=0,
                                      keep_unconverged=True, progress=False)
    np.testing.assert_array_equal(np.sort(kept.points, axis=0), np.sort(starts, axis=0))


def test_progress_line_on_stderr_and_silence(analysis, capsys):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    starts = np.array([[0.5, 0.5], [-2.5, 1.5]])
    analysis.find_fixed_points(ckpt, initial_states=starts, progress=True)
    out = capsys.readouterr()
    assert "fixed points [" in out.err and "2/2 converged" in out.err and out.out == ""
    analysis.find_fixed_points(ckpt, initial_states=starts, progress=False)
    assert capsys.readouterr().err == ""


BAD_CALLS = [
    (dict(space="z"), r"space: expected 'x' \(pre-activations\) or 'h' \(rates\), got 'z'"),
    (dict(initial_states=None), r"initial_states, trajectories: expected one of them.*got neither"),
    (dict(trajectories=np.zeros((5, 2))), r"expected one of them, got both"),
    (dict(initial_states=np.zeros((4, 3))), r"initial_states: expected shape \[\.\.\., H\] with H = 2, got \(4, 3\)"),
    (dict(inputs=[1.0]), r"inputs: expected a constant input of shape \(0,\) = \[I\], got \(1,\)"),
    (dict(regions="thalamus"), r"unknown region 'thalamus'.*'a', 'b'"),
    (dict(regions=[]), r"regions: expected at least one region name"),
    (dict(held_state=np.zeros(3)), r"held_state: expected shape \(2,\) = \[H\], got \(3,\)"),
    (dict(max_iters=-1), r"max_iters: expected an integer >= 0, got -1"),
    (dict(tol=float("nan")), r"tol: expected a number >= 0, got nan"),
    (dict(damping=0.0), r"damping: expected a number > 0, got 0\.0"),
    (dict(initial_states=[[np.inf, 0.0]]), r"initial_states: expected finite values"),
]


@pytest.mark.parametrize("kwargs, message", BAD_CALLS)
def test_bad_arguments_are_rejected_naming_the_culprit(analysis, kwargs, message):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    call = {"initial_states": np.zeros((4, 2)), "progress": False, **kwargs}
    with pytest.raises(MRNNConfigError, match=message):
        analysis.find_fixed_points(ckpt, **call)


def test_arrays_need_their_dynamics_and_layout(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    arrays = dict(ckpt.params)
    with pytest.raises(MRNNConfigError, match=r"dynamics: analysing a mapping of arrays needs"):
        analysis.jacobian(arrays, state=np.zeros(2))
    with pytest.raises(MRNNConfigError, match=r"regions=\('a',\): naming regions needs the network's layout"):
        analysis.jacobian_blocks(arrays, ckpt.dynamics, state=np.zeros(2), regions="a")
    with pytest.raises(MRNNConfigError, match=r"dynamics: a model or checkpoint carries its own"):
        analysis.jacobian(ckpt, ckpt.dynamics, state=np.zeros(2))
    with pytest.raises(MRNNConfigError, match=r"model: the mapping lacks 'W_inp'"):
        analysis.jacobian({k: v for k, v in arrays.items() if k != "W_inp"}, ckpt.dynamics,
                          state=np.zeros(2))
    with pytest.raises(MRNNConfigError, match=r"model: expected a model, a mrnn_core.Checkpoint"):
        analysis.jacobian("model.npz", state=np.zeros(2))


def test_bad_flow_field_planes_are_rejected(analysis):
    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    with pytest.raises(MRNNConfigError, match=r"basis, trajectories: a flow field needs a plane"):
        analysis.flow_field(ckpt)
    with pytest.raises(MRNNConfigError, match=r"basis: expected two linearly independent columns"):
        analysis.flow_field(ckpt, basis=[[1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(MRNNConfigError, match=r"basis: expected zero rows for the units outside"):
        analysis.flow_field(ckpt, basis=np.eye(2), regions="a")
    with pytest.raises(MRNNConfigError, match=r"limits: expected \(\(lo1, hi1\), \(lo2, hi2\)\) with lo < hi"):
        analysis.flow_field(ckpt, basis=np.eye(2), limits=((1, 0), (0, 1)))
    with pytest.raises(MRNNConfigError, match=r"resolution: expected an integer >= 2"):
        analysis.flow_field(ckpt, basis=np.eye(2), resolution=1)
    with pytest.raises(MRNNConfigError, match=r"a PCA plane needs at least 2 states and 2 units"):
        analysis.flow_field(ckpt, trajectories=np.zeros((5, 2)), regions="a")


def test_closed_form_jacobian_matches_finite_differences():
    # An independent check of the formula the backend tests compare autodiff with.
    rng = np.random.default_rng(3)
    W, d, alpha = rng.normal(0, 1, (4, 4)), rng.normal(0, 1, 4), 0.2
    f = np.tanh
    maps = {"x": lambda x: x + alpha * (-x + W @ f(x) + d),
            "h": lambda h: h + alpha * (-h + f(W @ h + d))}
    point = rng.normal(0, 1, 4)
    for space, F in maps.items():
        z = point if space == "x" else W @ point + d
        J = core.closed_form_jacobian(W, core.activation_derivative("tanh", z), alpha, space)
        eps = 1e-6
        numeric = np.column_stack([(F(point + eps * e) - F(point - eps * e)) / (2 * eps)
                                   for e in np.eye(4)])
        np.testing.assert_allclose(J, numeric, rtol=0, atol=1e-9)
    for name in mrnn_core.ACTIVATIONS:
        z = np.array([-1.3, -0.2, 0.4, 2.0])
        f = mrnn_core.reference.activation_function(name)
        numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
        np.testing.assert_allclose(core.activation_derivative(name, z), numeric, atol=1e-8)

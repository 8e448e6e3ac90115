"""mrnn_core.ensemble: what both backends' ensembles check and build, on numpy
arrays alone (no torch or JAX)."""

import dataclasses

import numpy as np
import pytest

import mrnn_core
from mrnn_core import MRNNConfigError
from mrnn_core import ensemble as core

SPEC = (mrnn_core.NetworkSpec()
        .with_recurrent_region("a", 3).with_recurrent_region("b", 2, sign="neg")
        .with_input_region("u", 2)
        .with_recurrent_connection("a", "a").with_recurrent_connection("a", "b")
        .with_recurrent_connection("b", "a").with_input_connection("u", "a"))


def test_member_values_give_each_member_its_own_dynamics():
    base = mrnn_core.Dynamics(activation="tanh", noise_level_act=0.1)
    per = core.member_dynamics(base, 3, {"tau": np.array([20.0, 40.0, 80.0]),
                                         "noise_level_inp": [0.0, 0.1, 0.2]})
    assert [d.tau for d in per] == [20.0, 40.0, 80.0]
    assert [d.noise_level_inp for d in per] == [0.0, 0.1, 0.2]
    assert all(d.activation == "tanh" and d.noise_level_act == 0.1 for d in per)
    assert core.member_dynamics(base, 2, None) == [base, base]


def test_seed_checkpoints_are_checkpoint_initialise_per_member():
    values = {"spectral_radius": [0.5, 1.2]}
    ckpts = core.seed_checkpoints(SPEC, [np.int64(4), 9], model="elman", member_values=values)
    for seed, radius, ckpt in zip([4, 9], [0.5, 1.2], ckpts):
        dyn = mrnn_core.Dynamics(kind="elman", spectral_radius=radius)
        expected = mrnn_core.Checkpoint.initialise(SPEC, dyn, seed)
        assert ckpt.dynamics == dyn
        for name, a in expected.params.items():
            np.testing.assert_array_equal(ckpt.params[name], a, err_msg=name)


@pytest.mark.parametrize("seeds, values, match", [
    ([], None, r"seeds: expected a non-empty sequence of integers, one per member, got \[\]"),
    ([1, True], None, r"seeds\[1\]: expected a non-negative integer, got True"),
    ([1, 2.0], None, r"seeds\[1\]: expected a non-negative integer, got 2.0"),
    ([1, 2], {"tau": 5.0}, r"member_values\['tau'\]: expected 2 values, one per seed, got 5.0"),
    ([1, 2], {"alpha": [1, 2]}, r"unknown key 'alpha'; expected some of tau, noise_level_act"),
    ([1, 2], [("tau", [1, 2])], r"member_values: expected a dict .* got list"),
    ([1, 2], {"noise_level_act": [0.1, -1.0]}, r"noise_level_act"),
])
def test_bad_seeds_and_member_values_are_refused(seeds, values, match):
    with pytest.raises(MRNNConfigError, match=match):
        core.seed_checkpoints(SPEC, seeds, member_values=values)


def test_checkpoints_must_share_spec_and_what_the_loop_shares(tmp_path):
    first = mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(), 0)
    first.save(tmp_path / "first.npz")
    same = core.load_checkpoints([tmp_path / "first.npz", first])
    np.testing.assert_array_equal(same[0].params["W_rec"], first.params["W_rec"])
    other_spec = mrnn_core.Checkpoint.initialise(SPEC.with_recurrent_region("c", 1),
                                                 mrnn_core.Dynamics(), 0)
    with pytest.raises(MRNNConfigError, match=r"checkpoints\[1\] has a different network spec"
                                              r".*expected H = 5, I = 2.*got H = 6, I = 2$"):
        core.load_checkpoints([first, other_spec])
    relu = mrnn_core.Checkpoint(SPEC, dataclasses.replace(first.dynamics, activation="relu"),
                                first.params)
    tanh = mrnn_core.Checkpoint(SPEC, dataclasses.replace(first.dynamics, activation="tanh"),
                                first.params)
    with pytest.raises(MRNNConfigError, match=r"checkpoints\[1\] has activation='tanh', "
                                              r"expected 'relu' as checkpoints\[0\]"):
        core.load_checkpoints([relu, tanh])
    with pytest.raises(MRNNConfigError, match="expected a sequence of checkpoints or paths, got"
                                              " PosixPath"):
        core.load_checkpoints(tmp_path / "first.npz")
    with pytest.raises(MRNNConfigError, match="at least one checkpoint, got none"):
        core.load_checkpoints([])


def test_call_member_axes_on_numpy_arrays():
    dyn = mrnn_core.Dynamics()
    H, I = SPEC.hidden_size, SPEC.input_size
    inp = np.zeros((4, 6, I))  # [B, T, I], shared
    call = core.check_call(3, dyn, H, I, inp, np.zeros((3, 4, H)))
    assert (call.batch, call.steps) == (4, 6)
    per_member = np.zeros((3, 4, 6, I))
    assert core.check_call(3, dyn, H, I, per_member, np.zeros((4, H))).steps == 6
    with pytest.raises(MRNNConfigError, match=r"x0: a leading member axis must have E = 3 "
                                              r"entries, got shape \(2, 4, 5\)"):
        core.check_call(3, dyn, H, I, inp, np.zeros((2, 4, H)))
    with pytest.raises(MRNNConfigError, match=r"eps_x: expected \[E, B, T, H\], got 3-D"):
        core.check_call(3, dyn, H, I, inp, None, eps_x=np.zeros((4, 6, H)), shared_noise=False)
    with pytest.raises(MRNNConfigError, match=r"eps_u: expected shape \(4, 6, 2\) = \[B, T, I\] with I = 2.*got \(4, 6, 3\)"):
        core.check_call(3, dyn, H, I, per_member, None, eps_u=np.zeros((3, 4, 6, I + 1)))
    elman = mrnn_core.Dynamics(kind="elman")
    with pytest.raises(MRNNConfigError, match=r"x0: the initial state is h0 \[E, B, H\]"):
        core.check_call(3, elman, H, I, inp, np.zeros((3, 4, H)))

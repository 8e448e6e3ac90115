"""Checkpoint: a whole model as one backend-neutral file, read back bit-identical."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.readout import checkpoint_with_readout
from mrnn_core.testing import dynamics_settings, network_specs


def assert_bit_identical(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@given(network_specs(), dynamics_settings(), st.integers(0, 2**32 - 1))
def test_save_then_load_is_lossless(spec, dynamics, seed):
    checkpoint = mc.Checkpoint.initialise(spec, dynamics, seed=seed)
    # A readout's spec and arrays travel too.
    readout = mc.ReadoutSpec(spec.recurrent_names, out_features=2)
    rng = np.random.default_rng(seed)
    checkpoint = checkpoint_with_readout(checkpoint, readout, rng.normal(size=(2, spec.hidden_size)),
                                         rng.normal(size=2))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        checkpoint.save(path)
        loaded = mc.Checkpoint.load(path)
    assert loaded.spec == spec
    assert loaded.dynamics == dynamics
    assert loaded.readout == readout
    assert set(loaded.params) == set(checkpoint.params)
    for name, value in checkpoint.params.items():
        assert_bit_identical(loaded.params[name], value)


def test_initialise_matches_build_connectivity_for_the_same_seed():
    spec = (mc.NetworkSpec().with_recurrent_region("a", 8).with_recurrent_region("b", 5, sign="neg")
            .with_input_region("u", 3)
            .with_recurrent_connection("a", "b", sparsity=0.4)
            .with_recurrent_connection("b", "a")
            .with_input_connection("u", "a", sparsity=0.5))
    checkpoint = mc.Checkpoint.initialise(spec, mc.Dynamics(), seed=7)
    connectivity = mc.build_connectivity(spec, seed=7)
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix",
                 "base_firing", "init"):
        np.testing.assert_array_equal(checkpoint.params[name], getattr(connectivity, name))
        np.testing.assert_array_equal(getattr(checkpoint.connectivity, name),
                                      getattr(connectivity, name))


def test_default_dynamics_are_the_documented_defaults():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2)
    d = mc.Checkpoint.initialise(spec, seed=0).dynamics
    assert (d.kind, d.activation, d.dt, d.tau) == ("leaky", "relu", 10.0, 100.0)
    assert (d.noise_level_act, d.noise_level_inp) == (0.01, 0.01)
    assert (d.rec_constrained, d.inp_constrained, d.batch_first) == (True, True, True)
    assert d.spectral_radius is None


def test_checkpoint_params_cannot_be_changed_in_place():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2).with_recurrent_connection("a", "a")
    params = mc.Checkpoint.initialise(spec, seed=0).params
    with pytest.raises(TypeError):
        params["W_rec"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match="read-only"):
        params["W_rec"][0, 0] = 1.0

"""The JAX side of the forward-call input contract: traced inputs, the pure
functions, and numpy float64 data when JAX runs without x64.

The cross-backend table of accepted and refused dtypes is
tests/equivalence/test_input_contract.py. Accepted values are multiples of
1/8, so casting them changes no bit and comparisons are exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mrnn_jax
from mrnn_core import MRNNConfigError

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"recurrent_regions": [{"name": "a", "num_units": 3},
                              {"name": "b", "num_units": 2, "sign": "neg"}],
        "input_regions": [{"name": "u", "num_units": 2}],
        "recurrent_connections": [{"src_region": "a", "dst_region": "b"},
                                  {"src_region": "b", "dst_region": "a"}],
        "input_connections": [{"src_region": "u", "dst_region": "a"}]}
RNG = np.random.default_rng(2)
U = RNG.integers(-4, 5, (2, 4, 2)) / 8
X0 = RNG.integers(-4, 5, (2, 5)) / 8


def test_a_float32_state_runs_in_a_float64_model_under_jit():
    model = mrnn_jax.mRNN(SPEC, seed=0)
    assert model.W_rec.dtype == jnp.float64
    run = jax.jit(lambda m, u, x0: m(u, x0))
    want = run(model, jnp.asarray(U), jnp.asarray(X0))
    got = run(model, jnp.asarray(U, jnp.float32), jnp.asarray(X0, jnp.float32))
    assert got[0].dtype == jnp.float64
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_a_refusal_under_jit_names_the_argument():
    model = mrnn_jax.ElmanmRNN(SPEC, seed=0)
    run = jax.jit(lambda m, u, h0: m(u, h0))
    with pytest.raises(MRNNConfigError, match=r"^h0: expected real floating-point .* integers"):
        run(model, jnp.asarray(U), jnp.ones((2, 5), jnp.int32))


def test_pure_functions_take_numpy_arrays_and_lists():
    model = mrnn_jax.mRNN(SPEC, seed=0)
    params, d = model.params(), model.dynamics
    want = mrnn_jax.simulate(params, d, jnp.asarray(U), jnp.asarray(X0))
    got = mrnn_jax.simulate(params, d, U.tolist(), X0.astype(np.float32))
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    drive = mrnn_jax.input_drive(params, d, U.tolist())
    assert np.array_equal(drive, mrnn_jax.input_drive(params, d, jnp.asarray(U)))
    W_rec_eff, _ = model.effective_weights()
    x, h = mrnn_jax.step(d, W_rec_eff, (X0.tolist(), np.maximum(X0, 0)), np.asarray(drive[0]))
    np.testing.assert_allclose(x, want[0][:, 0], rtol=1e-12, atol=1e-12)
    with pytest.raises(MRNNConfigError, match=r"^drive_t: expected real floating-point .* "
                                              r"booleans"):
        mrnn_jax.step(d, W_rec_eff, (X0, X0), np.ones((2, 5), bool))


def test_zero_steps_with_noise_drawn_from_a_key_give_empty_outputs():
    model = mrnn_jax.mRNN(SPEC, seed=0)
    xs, hs = model(np.zeros((3, 0, 2)), key=jax.random.key(0))
    assert xs.shape == hs.shape == (3, 0, 5)


def test_without_x64_numpy_float64_data_are_read_as_jax_stores_them():
    """JAX without x64 has no float64: numpy float64 data enter a float32 model
    as jnp.asarray makes them (documented), while integers are still refused."""
    script = textwrap.dedent("""
        import warnings
        warnings.simplefilter("error")
        import jax, numpy as np
        assert not jax.config.jax_enable_x64
        import mrnn_jax
        from mrnn_core import MRNNConfigError
        spec = %r
        model = mrnn_jax.mRNN(spec, seed=0)
        assert model.W_rec.dtype == np.float32
        u = np.full((2, 4, 2), 0.5)
        xs, hs = model(u, np.zeros((2, 5)))
        assert xs.dtype == np.float32
        assert np.array_equal(xs, model(u.astype(np.float32), np.zeros((2, 5), np.float32))[0])
        try:
            model(np.ones((2, 4, 2), dtype=np.int64))
        except MRNNConfigError as e:
            assert str(e).startswith("inp: expected real floating-point"), e
        else:
            raise AssertionError("integers accepted")
        print("ok")
    """) % (SPEC,)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "backends")]),
               JAX_ENABLE_X64="0", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

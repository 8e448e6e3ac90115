"""Property 5: relations that must hold whatever the network, in both backends."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
import mrnn_torch
from .equiv_helpers import (JAX_CLASSES, TORCH_CLASSES, as_numpy, assert_close, cases, jax_model,
                           run_jax, run_torch, torch_model)
from mrnn_core.testing import network_specs

BACKENDS = ["torch", "jax"]


def _run(backend, ckpt, call):
    if backend == "torch":
        return as_numpy(run_torch(torch_model(ckpt), call))
    return as_numpy(run_jax(jax_model(ckpt), call))


def _swap(a):
    return None if a is None else np.swapaxes(a, 0, 1)


def _map_outputs(out, fn):
    return tuple(fn(o) for o in out) if isinstance(out, tuple) else fn(out)


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases())
def test_time_major_layout_is_the_transposed_call(backend, case):
    ckpt, call = case
    flipped = dataclasses.replace(ckpt.dynamics, batch_first=not ckpt.dynamics.batch_first)
    other = mrnn_core.Checkpoint(ckpt.spec, flipped, ckpt.params)
    swapped = {k: (_swap(v) if k in ("inp", "stim_input", "eps_x", "eps_u") else v)
               for k, v in call.items()}
    expected = _map_outputs(_run(backend, ckpt, call), _swap)
    assert_close(_run(backend, other, swapped), expected, what="layout")


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases())
def test_unbatched_call_equals_batch_of_one(backend, case):
    ckpt, call = case
    axis = 0 if ckpt.dynamics.batch_first else 1
    one = {k: (None if v is None else
               (v[:1] if k in ("x0", "h0") else np.take(v, [0], axis=axis)) if k != "W_rec" else v)
           for k, v in call.items()}
    unbatched = {k: (None if v is None else
                     (v[0] if k in ("x0", "h0") else np.take(v, 0, axis=axis)) if k != "W_rec" else v)
                 for k, v in call.items()}
    expected = _map_outputs(_run(backend, ckpt, one), lambda o: np.take(o, 0, axis=axis))
    assert_close(_run(backend, ckpt, unbatched), expected, what="unbatched")


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases(), seed=st.integers(0, 2**31))
def test_permuting_the_batch_permutes_the_outputs(backend, case, seed):
    ckpt, call = case
    axis = 0 if ckpt.dynamics.batch_first else 1
    B = call["x0" if "x0" in call else "h0"].shape[0]
    perm = np.random.default_rng(seed).permutation(B)
    permuted = {k: (None if v is None else
                    (v[perm] if k in ("x0", "h0") else np.take(v, perm, axis=axis)) if k != "W_rec" else v)
                for k, v in call.items()}
    expected = _map_outputs(_run(backend, ckpt, call), lambda o: np.take(o, perm, axis=axis))
    assert_close(_run(backend, ckpt, permuted), expected, what="batch permutation")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["leaky", "elman"])
@given(seed=st.integers(0, 2**31), zero=st.sampled_from(["zero_connection", "undeclared", "sparsity_1"]))
def test_empty_block_carries_no_signal(backend, kind, seed, zero):
    """Perturbing the source region's rates leaves the destination's next step unchanged."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("src", 4).with_recurrent_region("dst", 3, sign="neg")
            .with_input_region("u", 2)
            .with_recurrent_connection("src", "src").with_recurrent_connection("dst", "dst")
            .with_recurrent_connection("dst", "src").with_input_connection("u", "dst"))
    if zero == "zero_connection":
        spec = spec.with_recurrent_connection("src", "dst", zero_connection=True)
    elif zero == "sparsity_1":
        spec = spec.with_recurrent_connection("src", "dst", sparsity=1.0)
    dynamics = mrnn_core.Dynamics(kind=kind, activation="tanh", rec_constrained=False)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=seed)
    params = dict(ckpt.params)
    params["W_rec"] = np.random.default_rng(seed).standard_normal((7, 7))  # raw weight everywhere
    ckpt = mrnn_core.Checkpoint(spec, dynamics, params)
    rng = np.random.default_rng(seed + 1)
    state = rng.uniform(-1, 1, (2, 7))
    kicked = state.copy()
    kicked[:, :4] += rng.uniform(1, 2, (2, 4))
    inp = rng.uniform(-1, 1, (2, 1, 2))
    key = "x0" if kind == "leaky" else "h0"
    extra = {"h0": np.tanh(state)} if kind == "leaky" else {}
    extra_kicked = {"h0": np.tanh(kicked)} if kind == "leaky" else {}
    if kind == "leaky":
        base = _run(backend, ckpt, {"inp": inp, key: state, **extra})[0]
        pert = _run(backend, ckpt, {"inp": inp, key: state, **extra_kicked})[0]
    else:
        base = _run(backend, ckpt, {"inp": inp, key: np.tanh(state)})
        pert = _run(backend, ckpt, {"inp": inp, key: np.tanh(kicked)})
    np.testing.assert_array_equal(base[:, 0, 4:], pert[:, 0, 4:])
    assert not np.allclose(base[:, 0, :4], pert[:, 0, :4])  # the perturbation did act


@given(case=cases(spectral_radius=False, max_steps=1))
def test_dales_law_signs_whatever_the_raw_weights(case):
    ckpt, _ = case
    d = ckpt.dynamics
    constrained = dataclasses.replace(d, rec_constrained=True, inp_constrained=True)
    p = ckpt.params
    rng = np.random.default_rng(0)
    raw = {**p, "W_rec": rng.standard_normal(p["W_rec"].shape),
           "W_inp": rng.standard_normal(p["W_inp"].shape)}
    t_rec, t_inp = mrnn_torch.effective_weights({k: torch.tensor(np.array(v)) for k, v in raw.items()},
                                                constrained)
    j_rec, j_inp = mrnn_jax.effective_weights({k: jnp.asarray(v) for k, v in raw.items()},
                                              constrained)
    for W_eff, sign, mask in ((t_rec, p["W_rec_sign_matrix"], p["W_rec_mask"]),
                              (j_rec, p["W_rec_sign_matrix"], p["W_rec_mask"]),
                              (t_inp, p["W_inp_sign_matrix"], p["W_inp_mask"]),
                              (j_inp, p["W_inp_sign_matrix"], p["W_inp_mask"])):
        W_eff = as_numpy(W_eff)
        assert np.all(W_eff * sign >= 0)
        assert np.all(W_eff[mask == 0] == 0)
        assert np.array_equal(np.abs(W_eff), np.abs(W_eff) * mask)
    spec = ckpt.spec
    for region in spec.recurrent_regions:
        cols = p["W_rec_sign_matrix"][:, ckpt.connectivity.region_slice(region.name)]
        want = 1.0 if region.sign == "pos" else -1.0
        assert np.all((cols == 0) | (cols == want))


@given(spec=network_specs(max_units=5), seed=st.integers(0, 2**31))
def test_finalising_twice_or_reloading_changes_nothing(spec, seed):
    cfg = spec.to_dict()
    for cls in (mrnn_torch.mRNN, mrnn_torch.ElmanmRNN):
        a = cls(cfg, device="cpu", seed=seed)
        a.finalize_connectivity()  # a side the config leaves unwired stays open until now
        before = {k: v.clone() for k, v in a.state_dict().items()}
        a.finalize_connectivity()
        a.finalize_connectivity()
        after = a.state_dict()
        assert before.keys() == after.keys()
        for k in before:
            assert torch.equal(before[k], after[k]), k
        b = cls(mrnn_core.load_config(a.to_checkpoint().spec.to_dict()), device="cpu", seed=seed)
        b.finalize_connectivity()
        for k in before:
            assert torch.equal(before[k], b.state_dict()[k]), k
    j1 = mrnn_jax.mRNN(cfg, seed=seed).to_checkpoint()
    j2 = mrnn_jax.mRNN(mrnn_core.load_config(cfg), seed=seed).to_checkpoint()
    for k in mrnn_core.PARAM_NAMES:
        np.testing.assert_array_equal(j1.params[k], j2.params[k])

"""Readouts: torch == JAX == numpy reference, in values, gradients, optimiser steps and files.

Tolerances (float64): outputs 1e-12 (one matmul of at most a few hundred
terms, evaluated in a different order: rounding only); gradients and the
weights after one optimiser step 1e-10 (Adam divides by a square root of
squared gradients, which amplifies their rounding a little).
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.readout import ReadoutSpec, apply_readout, readout_units
from mrnn_core.testing import arrays, network_specs
from mrnn_jax.readout import Readout as JaxReadout
from mrnn_torch.readout import Readout as TorchReadout

OUT = dict(rtol=1e-12, atol=1e-12)
GRAD = dict(rtol=1e-10, atol=1e-10)


@st.composite
def readout_cases(draw):
    """``(spec, readout_spec, W, b, hs, g)``: a network, a readout it admits, raw
    weights of both signs, rates ``hs`` ``[B, T, H]`` and an output cotangent ``g``."""
    spec = draw(st.one_of(network_specs(max_units=6), network_specs(max_regions=2, max_units=60),
                          network_specs(max_units=6, beyond_mrnntorch=True)))  # E/I areas: parents
    names = list(spec.recurrent_names) + list(spec.parents)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    readout = ReadoutSpec(tuple(chosen), draw(st.integers(1, 4)), dale=draw(st.booleans()),
                          bias=draw(st.booleans()))
    try:
        n = readout_units(spec, readout).size
    except mc.MRNNConfigError:
        readout = ReadoutSpec(readout.regions, readout.out_features, False, readout.bias)
        n = readout_units(spec, readout).size
    O = readout.out_features
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    W = draw(arrays((O, n)))
    b = draw(arrays((O,))) if readout.bias else None
    return spec, readout, W, b, draw(arrays((B, T, spec.hidden_size))), draw(arrays((B, T, O)))


@eqx.filter_jit
def _call(readout, hs):
    # One compile per drawn shape; eager JAX would compile every small op in the call.
    return readout(hs)


def _build(spec, readout, W, b):
    t = TorchReadout.from_params(spec, readout, W, b, device="cpu", dtype=torch.float64)
    j = JaxReadout.from_params(spec, readout, W, b)
    return t, j


def _jax_run(j, hs, g, name, lr):
    """``y``, the gradients of ``L = sum(g * y)`` w.r.t. the readout and ``hs``, one
    optax step and the stepped readout's effective weight, in one compiled call
    (eager JAX would compile every small op again for each drawn shape)."""
    optimiser = (optax.sgd if name == "sgd" else optax.adam)(lr)

    @eqx.filter_jit
    def run(j, hs, g):
        grads, dhs = eqx.filter_grad(lambda pair: jnp.sum(pair[0](pair[1]) * g))((j, hs))
        params = eqx.filter(j, eqx.is_inexact_array)
        updates, _ = optimiser.update(grads, optimiser.init(params), params)
        stepped = eqx.apply_updates(j, updates)
        return j(hs), grads, dhs, stepped, stepped.effective_weight

    return run(j, jnp.asarray(hs), jnp.asarray(g))


@given(readout_cases(), st.sampled_from(["sgd", "adam"]))
def test_outputs_gradients_and_an_optimiser_step_agree(case, name):
    spec, readout, W, b, hs, g = case
    t, j = _build(spec, readout, W, b)
    lr = 0.5
    hs_t = torch.tensor(hs, requires_grad=True)
    y_t = t(hs_t)
    (y_t * torch.tensor(g)).sum().backward()
    y_j, j_grads, dhs_j, j_stepped, j_effective = _jax_run(j, hs, g, name, lr)

    expected = apply_readout({"W": W, "b": b}, readout, hs, spec)
    for got in (y_t.detach().numpy(), np.asarray(y_j)):
        np.testing.assert_allclose(got, expected, **OUT)

    # L = sum(g * y): dL/dW_eff = g^T h_read, dL/dW = sign(W) dL/dW_eff under Dale,
    # dL/db = sum g, dL/dhs = g W_eff on the units read and 0 elsewhere.
    idx = readout_units(spec, readout)
    W_eff = np.abs(W) if readout.dale else W
    g_flat, h_flat = g.reshape(-1, g.shape[-1]), hs[..., idx].reshape(-1, idx.size)
    dW = g_flat.T @ h_flat * (np.sign(W) if readout.dale else 1.0)
    dhs = np.zeros_like(hs)
    dhs[..., idx] = g @ W_eff
    for got in (t.weight.grad.numpy(), np.asarray(j_grads.weight)):
        np.testing.assert_allclose(got, dW, **GRAD)
    for got in (hs_t.grad.numpy(), np.asarray(dhs_j)):
        np.testing.assert_allclose(got, dhs, **GRAD)
    if readout.bias:
        for got in (t.bias.grad.numpy(), np.asarray(j_grads.bias)):
            np.testing.assert_allclose(got, g_flat.sum(0), **GRAD)

    (torch.optim.SGD if name == "sgd" else torch.optim.Adam)(t.parameters(), lr=lr).step()
    np.testing.assert_allclose(t.weight.detach().numpy(), np.asarray(j_stepped.weight), **GRAD)
    assert not np.array_equal(np.asarray(j_stepped.weight), W)
    if readout.bias:
        np.testing.assert_allclose(t.bias.detach().numpy(), np.asarray(j_stepped.bias), **GRAD)
    if readout.dale:
        assert (t.effective_weight >= 0).all() and np.all(np.asarray(j_effective) >= 0)


@given(network_specs(), st.integers(0, 2**31 - 1), st.booleans())
def test_same_seed_gives_the_same_readout_in_both_backends(spec, seed, dale):
    regions = spec.recurrent_names[:2]
    try:
        t = TorchReadout(spec, regions, 3, dale=dale, seed=seed, device="cpu", dtype=torch.float64)
    except mc.MRNNConfigError as err:
        with pytest.raises(mc.MRNNConfigError) as caught:
            JaxReadout(spec, regions, 3, dale=dale, seed=seed)
        assert str(caught.value) == str(err)  # one message in both backends
        return
    j = JaxReadout(spec, regions, 3, dale=dale, seed=seed)
    for key in ("W", "b"):
        assert t.params()[key].tobytes() == j.params()[key].tobytes()
    assert t.readout_index.tolist() == list(j.index)
    assert repr(t) == repr(j)


_UNWIRED = mc.NetworkSpec().with_recurrent_region("ctx", 1)  # no connection: a torch model stays open


@given(case=readout_cases(), seed=st.integers(0, 2**31 - 1))
@example(case=(_UNWIRED, ReadoutSpec("ctx", 1, bias=False), np.array([[0.27]]), None,
               np.full((1, 1, 1), 0.27), np.full((1, 1, 1), 0.27)), seed=0)
def test_torch_readout_travels_to_jax_through_a_checkpoint_file(case, seed, tmp_path_factory):
    spec, readout, W, b, hs, _ = case
    ckpt = mc.Checkpoint.initialise(spec, seed=seed)
    t = TorchReadout.from_params(spec, readout, W, b, device="cpu", dtype=torch.float64)
    path = tmp_path_factory.mktemp("readout") / "m.npz"
    t.add_to_checkpoint(ckpt).save(path)
    j = JaxReadout.from_checkpoint(mc.Checkpoint.load(path))
    assert j.readout_spec == readout
    for key in ("W", "b"):
        assert j.params()[key].tobytes() == t.params()[key].tobytes()
    np.testing.assert_allclose(np.asarray(_call(j, jnp.asarray(hs))),
                               t(torch.tensor(hs)).detach().numpy(), **OUT)

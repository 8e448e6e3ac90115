"""The torch side of the forward-call input contract: devices, mixed dtypes,
gradients through a cast, numpy into the pure functions, batch sizes.

The cross-backend table of accepted and refused dtypes is
tests/equivalence/test_input_contract.py. Comparisons are exact: accepted
values are multiples of 1/8, so casting them changes no bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_torch
from mrnn_core import MRNNConfigError
from mrnn_torch import ElmanmRNN, mRNN

SPEC = {"recurrent_regions": [{"name": "a", "num_units": 3},
                              {"name": "b", "num_units": 2, "sign": "neg"}],
        "input_regions": [{"name": "u", "num_units": 2}],
        "recurrent_connections": [{"src_region": "a", "dst_region": "b"},
                                  {"src_region": "b", "dst_region": "a"}],
        "input_connections": [{"src_region": "u", "dst_region": "a"}]}
RNG = np.random.default_rng(1)
U = RNG.integers(-4, 5, (2, 4, 2)) / 8
X0 = RNG.integers(-4, 5, (2, 5)) / 8


def model(dtype=torch.float64, cls=mRNN):
    return cls(SPEC, device="cpu", seed=0, dtype=dtype)


def test_a_tensor_on_another_device_is_refused_naming_both_devices():
    m = model()
    on_meta = torch.zeros(2, 4, 2, dtype=torch.float64, device="meta")
    with pytest.raises(MRNNConfigError, match=r"^inp: expected a tensor on cpu .* got one on meta"):
        m(on_meta)
    with pytest.raises(MRNNConfigError, match=r"^x0: expected a tensor on cpu .* got one on meta"):
        m(torch.from_numpy(U), torch.zeros(2, 5, dtype=torch.float64, device="meta"))
    with pytest.raises(MRNNConfigError, match=r"^stim_input: .* got one on meta"):
        mrnn_torch.simulate(m._params(), m.dynamics, torch.from_numpy(U), torch.from_numpy(X0),
                            stim_input=torch.zeros(2, 4, 5, dtype=torch.float64, device="meta"))


def test_states_of_mixed_lower_precisions_run_as_the_model_dtype():
    m = model(torch.float64)
    xs, hs = m(torch.from_numpy(U), torch.from_numpy(X0),
               torch.from_numpy(np.maximum(X0, 0)))
    xs_mixed, hs_mixed = m(torch.from_numpy(U).float(), torch.from_numpy(X0).half(),
                           torch.from_numpy(np.maximum(X0, 0)).float())
    assert xs_mixed.dtype == hs_mixed.dtype == torch.float64
    assert torch.equal(xs_mixed, xs) and torch.equal(hs_mixed, hs)


def test_a_gradient_reaches_an_input_that_was_cast_up():
    m = model(torch.float64)
    u = torch.from_numpy(U).float().requires_grad_()
    m(u)[1].sum().backward()
    assert u.grad is not None and u.grad.dtype == torch.float32 and u.grad.abs().sum() > 0


def test_mrnntorch_idiom_from_numpy_on_task_data_says_how_to_fix_it():
    inputs, _ = mrnn_core.flip_flop(2, 6, n_bits=2, seed=0)
    u = torch.from_numpy(np.asarray(inputs, dtype=np.float64))
    with pytest.raises(MRNNConfigError, match=r"^inp: expected dtype float32 .* got float64.*"
                                              r"inp\.to\(torch\.float32\)"):
        model(torch.float32)(u)
    assert model(torch.float64)(u)[1].shape == (2, 6, 5)


def test_pure_functions_take_numpy_arrays_and_lists():
    m = model(torch.float64)
    params, d = m._params(), m.dynamics
    want = mrnn_torch.simulate(params, d, torch.from_numpy(U), torch.from_numpy(X0))
    for inp, x0 in ((U, X0), (U.tolist(), X0.tolist())):
        got = mrnn_torch.simulate(params, d, inp, x0)
        assert all(torch.equal(g, w) for g, w in zip(got, want))
    drive = mrnn_torch.input_drive(params, d, U)
    assert torch.equal(drive, mrnn_torch.input_drive(params, d, torch.from_numpy(U)))
    W_rec_eff, _ = m.effective_weights()
    x, h = mrnn_torch.step(d, W_rec_eff, (X0, np.maximum(X0, 0)), drive[0].detach().numpy())
    # the fused simulate and one plain step differ by rounding only
    torch.testing.assert_close(x, want[0][:, 0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, want[1][:, 0], rtol=1e-12, atol=1e-12)
    with pytest.raises(MRNNConfigError, match=r"^h: expected real floating-point .* integers"):
        mrnn_torch.step(d, W_rec_eff, (X0, np.ones((2, 5), dtype=int)), drive[0])


def test_elman_refuses_a_bad_initial_state_under_its_own_name():
    m = model(torch.float32, ElmanmRNN)
    with pytest.raises(MRNNConfigError, match=r"^h0: expected dtype float32 .* got float64"):
        m(torch.from_numpy(U).float(), torch.from_numpy(X0))


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
def test_batched_initial_condition_takes_a_batch_size_of_zero_or_more(cls):
    m = model(torch.float64, cls)
    for bad in (-1, 2.5, "2", True):
        with pytest.raises(MRNNConfigError, match=r"^batch_size: expected an integer >= 0"):
            m.batched_initial_condition(bad)
    empty = m.batched_initial_condition(0)
    for state in (empty if isinstance(empty, tuple) else (empty,)):
        assert state.shape == (0, 5)

"""Forward pass and pure functions against the numpy reference, float64, rtol = atol = 1e-10.

Drawn cases cover both dynamics, every activation, constrained or not, both
layouts, stimulus, W_rec override and explicit noise draws (see torch_helpers).
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core.testing import dynamics_settings, network_specs
from .torch_helpers import (CLASSES, DEVICES, assert_close, assume_loop, cases, model_from, run,
                           tensors, torch_params)


@pytest.mark.parametrize("device", DEVICES)
@given(case=cases())
def test_model_forward_matches_reference(device, case):
    ckpt, call = case
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call)
    out = run(model_from(ckpt, device), tensors(call, device))
    assert_close(out, expected)


@given(case=cases())
def test_pure_simulate_matches_reference(case):
    ckpt, call = case
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **call)
    params = torch_params(ckpt)
    assert_close(mrnn_torch.simulate(params, ckpt.dynamics, **tensors(call)), expected)


def _first_trial(key, a, batch_first):
    if a is None or key == "W_rec":
        return a
    if key in ("x0", "h0"):
        return a[0]
    return a[0] if batch_first else a[:, 0]


@given(case=cases(max_steps=4))
def test_unbatched_call_runs_one_trial(case):
    """``[T, I]`` input with ``[H]`` states gives ``[T, H]`` outputs."""
    ckpt, call = case
    trial = {k: _first_trial(k, v, ckpt.dynamics.batch_first) for k, v in call.items()}
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, **trial)
    assert_close(run(model_from(ckpt), tensors(trial)), expected)


@given(case=cases(max_steps=5))
def test_step_and_input_drive_compose_to_simulate(case):
    """One hand-driven loop of ``input_drive`` + ``step`` gives ``simulate``'s states."""
    ckpt, call = case
    d = ckpt.dynamics
    p = torch_params(ckpt)
    c = tensors(call)
    drive = mrnn_torch.input_drive(p, d, c["inp"], stim_input=c["stim_input"],
                                   eps_x=c["eps_x"], eps_u=c["eps_u"])
    W_rec_eff = c["W_rec"] if c["W_rec"] is not None else mrnn_torch.effective_weights(p, d)[0]
    f = mrnn_torch.get_activation(d.activation)
    if d.kind == "leaky":
        x = c["x0"]
        h = f(x) if c["h0"] is None else c["h0"]
    else:
        x = h = c["h0"]
    hs = []
    for t in range(drive.shape[0]):
        x, h = mrnn_torch.step(d, W_rec_eff, (x, h), drive[t])
        hs.append(h)
    expected = mrnn_core.reference.simulate(ckpt.params, d, **call)
    expected_hs = expected[1] if d.kind == "leaky" else expected
    got = torch.stack(hs, 1 if d.batch_first else 0)
    assert_close(got, expected_hs)


@given(spec=network_specs(), dynamics=dynamics_settings(spectral_radius=True),
       seed=st.integers(0, 2**31 - 1))
@example(  # found by hypothesis: a config without connections leaves both sides open
    spec=mrnn_core.NetworkSpec().with_recurrent_region("ctx", 1),
    dynamics=mrnn_core.Dynamics(rec_constrained=False, inp_constrained=False), seed=0)
def test_constructor_draws_what_the_core_draws(spec, dynamics, seed):
    """``mRNN(spec, seed=s)`` holds exactly ``Checkpoint.initialise(spec, dynamics, seed=s)``."""
    ckpt = assume_loop(spec, dynamics, seed)
    cls = CLASSES[dynamics.kind]
    kwargs = dict(activation=dynamics.activation, noise_level_act=dynamics.noise_level_act,
                  noise_level_inp=dynamics.noise_level_inp,
                  rec_constrained=dynamics.rec_constrained,
                  inp_constrained=dynamics.inp_constrained, batch_first=dynamics.batch_first,
                  spectral_radius=dynamics.spectral_radius, device="cpu", seed=seed,
                  dtype=torch.float64)
    if dynamics.kind == "leaky":
        kwargs.update(dt=dynamics.dt, tau=dynamics.tau)
    model = cls(spec, **kwargs)
    model.finalize_connectivity()  # a side the config leaves unwired stays open until now
    got = model.to_checkpoint()
    # An Elman model has no time constant, so its "tau" entry carries no meaning.
    keys = [k for k in mrnn_core.PARAM_NAMES if dynamics.kind == "leaky" or k != "tau"]
    for key in keys:
        np.testing.assert_array_equal(got.params[key], ckpt.params[key], err_msg=key)


def test_torch_seed_makes_construction_reproducible():
    spec = mrnn_core.NetworkSpec().with_recurrent_region("a", 4).with_recurrent_connection(
        "a", "a", sparsity=0.5)
    torch.manual_seed(11)
    a = mrnn_torch.mRNN(spec, device="cpu")
    torch.manual_seed(11)
    b = mrnn_torch.mRNN(spec, device="cpu")
    c = mrnn_torch.mRNN(spec, device="cpu")
    assert torch.equal(a.W_rec, b.W_rec) and torch.equal(a.W_rec_mask, b.W_rec_mask)
    assert not torch.equal(a.W_rec, c.W_rec)


@pytest.mark.parametrize("name, x, expected", [
    ("softplus", [20.0, -30.0, 800.0, 0.0], [20.0 + np.log1p(np.exp(-20.0)), np.log1p(np.exp(-30.0)),
                                            800.0, np.log(2.0)]),
    ("sigmoid", [0.0, 40.0], [0.5, 1.0]),
    ("linear", [-3.0, 2.0], [-3.0, 2.0]),
    ("relu", [-3.0, 2.0], [0.0, 2.0]),
])
def test_activations_are_exact_where_shortcuts_would_differ(name, x, expected):
    """softplus at x = 20 must not take torch's threshold shortcut (off by ~2e-9)."""
    got = mrnn_torch.get_activation(name)(torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-15, atol=0)


def test_unknown_activation_lists_the_allowed_ones():
    with pytest.raises(mrnn_torch.MRNNConfigError,
                       match=r"unknown activation 'gelu'; allowed activations: 'relu', 'tanh'"):
        mrnn_torch.get_activation("gelu")
    with pytest.raises(mrnn_torch.MRNNConfigError, match=r"unknown activation 'not_a_real"):
        mrnn_torch.mRNN(activation="not_a_real_activation", device="cpu")

"""nn4n-style features in the torch backend (issue 9): per-region time constants (fixed or learned),
learnable initial states, frozen projections, E/I areas, density and mask
connections, balanced E/I initialisation, and checkpoints that carry them.

Numbers are checked in float64 against ``mrnn_core.reference.simulate`` at
rtol = atol = 1e-10 (see ``torch_helpers``); "unchanged" means bit-identical
(``torch.equal``).
"""

import dataclasses
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core import reference
from mrnn_torch import ElmanmRNN, MRNNConfigError, mRNN
from mrnn_torch import _fused
from mrnn_core.testing import dynamics_settings, network_specs
from .torch_helpers import (CLASSES, DEVICES, assert_close, assume_loop, cases, numpy, tensors,
                           torch_params)

F64 = torch.float64


# per-unit alpha: the pure functions ----------------------------------------------


@st.composite
def tau_cases(draw, kind=None):
    """A drawn case whose params carry per-unit time constants ``[H]``."""
    ckpt, call = draw(cases(kind=kind, max_steps=6))
    H = ckpt.spec.hidden_size
    choices = draw(st.lists(st.sampled_from([20.0, 35.0, 100.0, 250.0]), min_size=H, max_size=H))
    params = dict(ckpt.params)
    params["tau"] = np.array(choices)
    return mrnn_core.Checkpoint(ckpt.spec, ckpt.dynamics, params), call


def _reference(ckpt, call):
    c = dict(call)
    return reference.simulate(ckpt.params, ckpt.dynamics, c.pop("inp"), **c)


@pytest.mark.parametrize("recurrence", ["auto", "dense", "blocks", "autograd"])
@given(case=tau_cases())
def test_simulate_with_per_unit_tau_matches_reference(recurrence, case):
    ckpt, call = case
    if recurrence == "blocks" and call["W_rec"] is not None:
        call = {**call, "W_rec": None}  # blocks need the mask's structure
    c = tensors(call)
    out = mrnn_torch.simulate(torch_params(ckpt), ckpt.dynamics, c.pop("inp"), **c,
                              recurrence=recurrence)
    assert_close(out, _reference(ckpt, call))


@given(case=tau_cases(kind="leaky"))
def test_step_and_input_drive_take_per_unit_tau(case):
    ckpt, call = case
    params, d = torch_params(ckpt), ckpt.dynamics
    c = tensors(call)
    drive = mrnn_torch.input_drive(params, d, c["inp"], stim_input=c["stim_input"],
                                   eps_x=c["eps_x"], eps_u=c["eps_u"])
    W_eff = c["W_rec"] if c["W_rec"] is not None else mrnn_torch.effective_weights(params, d)[0]
    x = c["x0"]
    h = mrnn_torch.get_activation(d.activation)(x) if c["h0"] is None else c["h0"]
    for t in range(drive.shape[0]):
        x, h = mrnn_torch.step(d, W_eff, (x, h), drive[t], tau=params["tau"])
    xs, hs = _reference(ckpt, call)
    last = (lambda a: a[:, -1]) if d.batch_first else (lambda a: a[-1])
    assert_close((x, h), (last(xs), last(hs)))


def _two_area_spec(tau_a=None, tau_b=None, **region):
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("a", 4, tau=tau_a, **region)
            .with_recurrent_region("b", 3, sign="neg", tau=tau_b, **region)
            .with_input_region("cue", 2))
    for src in "ab":
        for dst in "ab":
            spec = spec.with_recurrent_connection(src, dst)
    return spec.with_input_connection("cue", "a")


@pytest.mark.parametrize("recurrence", ["auto", "autograd"])
def test_equal_region_taus_give_exactly_the_scalar_tau_results(recurrence):
    per_region = mRNN(_two_area_spec(50.0, 50.0), activation="tanh", tau=100.0, seed=4,
                      device="cpu", dtype=F64, noise_level_act=0.1)
    scalar = mRNN(_two_area_spec(), activation="tanh", tau=50.0, seed=4, device="cpu",
                  dtype=F64, noise_level_act=0.1)
    per_region.recurrence = scalar.recurrence = recurrence
    assert per_region.alpha == scalar.alpha == 0.2
    g = torch.Generator().manual_seed(0)
    inp = torch.randn(3, 7, 2, dtype=F64, generator=g)
    x0 = torch.randn(3, 7, dtype=F64, generator=g)
    # Hidden noise only: the input-noise constant follows the model's scalar
    # tau by contract (input space has no per-unit time constant).
    eps_x = torch.randn(3, 7, 7, dtype=F64, generator=g)
    stim = torch.randn(3, 7, 7, dtype=F64, generator=g)
    for a, b in zip(per_region(inp, x0, stim_input=stim, eps_x=eps_x),
                    scalar(inp, x0, stim_input=stim, eps_x=eps_x)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("recurrence", ["dense", "blocks"])
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_fused_per_unit_tau_gradients_equal_the_autograd_loop(recurrence, activation):
    """The fused recurrence with row-scaled W and a per-unit carry has its own
    backward; it must give autograd's gradients for every input."""
    dynamics = mrnn_core.Dynamics(activation=activation, noise_level_act=0.2)
    ckpt = mrnn_core.Checkpoint.initialise(_two_area_spec(30.0, 120.0), dynamics, seed=2)
    g = torch.Generator().manual_seed(1)
    inp = torch.randn(2, 5, 2, dtype=F64, generator=g)
    eps_x = torch.randn(2, 5, 7, dtype=F64, generator=g)
    grads = []
    for mode in (recurrence, "autograd"):
        p = torch_params(ckpt)
        leaves = [p["W_rec"], p["W_inp"], p["base_firing"],
                  0.3 * torch.ones(2, 7, dtype=F64), 0.2 * torch.ones(2, 7, dtype=F64)]
        for leaf in leaves:
            leaf.requires_grad_(True)
        xs, hs = mrnn_torch.simulate(p, dynamics, inp, leaves[3], leaves[4], eps_x=eps_x,
                                     recurrence=mode)
        loss = (hs ** 2).sum() + (xs * torch.linspace(-1, 1, 7, dtype=F64)).sum()
        grads.append(torch.autograd.grad(loss, leaves))
    for fused, plain in zip(*grads):
        assert fused.abs().max() > 0
        assert_close(fused, numpy(plain))


# learnable tau --------------------------------------------------------------------


def _learnable_tau_model(**kwargs):
    model = mRNN(activation="tanh", tau=100.0, seed=5, device="cpu", dtype=F64, **kwargs)
    model.add_recurrent_region("fast", 3, tau=20.0, learnable_tau=True)
    model.add_recurrent_region("slow", 4, sign="neg", tau=200.0)
    model.add_recurrent_region("plain", 2)
    model.add_input_region("cue", 2)
    for src in ("fast", "slow", "plain"):
        for dst in ("fast", "slow", "plain"):
            model.add_recurrent_connection(src, dst)
    model.add_input_connection("cue", "fast")
    model.finalize_connectivity()
    return model


def test_learnable_tau_is_a_log_parameter_of_its_region_only():
    model = _learnable_tau_model()
    names = dict(model.named_parameters())
    assert set(names) == {"W_rec", "W_inp", "log_tau_fast"}
    assert torch.equal(names["log_tau_fast"], torch.full((3,), 20.0, dtype=F64).log())
    expected = [20.0] * 3 + [200.0] * 4 + [100.0] * 2
    assert_close(model.tau, np.array(expected))
    assert_close(model.alpha, 10.0 / np.array(expected))
    with torch.no_grad():
        model.log_tau_fast.copy_(torch.tensor([3.0, 3.5, 4.0], dtype=F64))
    assert_close(model.tau[:3], np.exp([3.0, 3.5, 4.0]))


def test_learnable_tau_forward_matches_reference_and_gets_the_right_gradient():
    model = _learnable_tau_model()
    g = torch.Generator().manual_seed(2)
    inp = torch.randn(2, 6, 2, dtype=F64, generator=g)
    x0 = 0.4 * torch.randn(2, 9, dtype=F64, generator=g)
    eps_x = torch.randn(2, 6, 9, dtype=F64, generator=g)
    ckpt = model.to_checkpoint()
    expected = reference.simulate(ckpt.params, ckpt.dynamics, inp.numpy(), x0.numpy(),
                                  eps_x=eps_x.numpy())
    assert_close(model(inp, x0, eps_x=eps_x), expected)

    def loss(log_tau):
        p = model._params()
        p["tau"] = torch.cat([log_tau.exp(), p["tau"][3:]])
        _, hs = mrnn_torch.simulate(p, model.dynamics, inp, x0, eps_x=eps_x)
        return (hs ** 2).sum()

    torch.autograd.gradcheck(loss, (model.log_tau_fast.detach().clone().requires_grad_(),))
    _, hs = model(inp, x0, eps_x=eps_x)
    (hs ** 2).sum().backward()
    assert model.log_tau_fast.grad.abs().min() > 0


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("steps", [7, 70])  # 70: the carry's sum runs in chunks of 32 steps
def test_every_recurrence_mode_gives_the_same_learned_tau_gradient(batch_first, steps):
    """The fused recurrence differentiates a learned tau (its ``1 - alpha``
    carry gets ``sum_t g_t x_{t-1}``) exactly as the per-step autograd loop."""
    assert steps < 32 or steps > 2 * _fused._CARRY_CHUNK
    model = _learnable_tau_model()
    g = torch.Generator().manual_seed(5)
    inp = torch.randn(3, steps, 2, dtype=F64, generator=g)
    x0 = 0.4 * torch.randn(3, 9, dtype=F64, generator=g)
    eps_x = torch.randn(3, steps, 9, dtype=F64, generator=g)
    stim = 0.3 * torch.randn(3, steps, 9, dtype=F64, generator=g)
    p = model._params()
    dynamics = model.dynamics
    if not batch_first:
        dynamics = dataclasses.replace(dynamics, batch_first=False)
        inp, eps_x, stim = (a.transpose(0, 1).contiguous() for a in (inp, eps_x, stim))
    grads = {}
    for mode in ("autograd", "dense", "blocks"):
        tau = p["tau"].detach().clone().requires_grad_()
        W = p["W_rec"].detach().clone().requires_grad_()
        xs, hs = mrnn_torch.simulate({**p, "tau": tau, "W_rec": W}, dynamics, inp, x0,
                                     eps_x=eps_x, stim_input=stim, recurrence=mode)
        ((hs ** 2).sum() + (xs * hs).sum()).backward()
        grads[mode] = (tau.grad, W.grad)
    for mode in ("dense", "blocks"):
        for got, want in zip(grads[mode], grads["autograd"]):
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert grads["dense"][0].abs().min() > 0


def test_elman_ignores_tau_so_one_spec_serves_both_models():
    spec = _two_area_spec(30.0, 60.0, learnable_tau=True)
    dynamics = mrnn_core.Dynamics(kind="elman", activation="tanh")
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=0)
    model = ElmanmRNN.from_checkpoint(ckpt, device="cpu", dtype=F64)
    assert set(dict(model.named_parameters())) == {"W_rec", "W_inp"} and model.alpha == 1.0
    inp, h0 = torch.ones(2, 3, 2, dtype=F64), torch.zeros(2, 7, dtype=F64)
    assert_close(model(inp, h0), reference.simulate(ckpt.params, dynamics, inp.numpy(),
                                                    h0=h0.numpy()))


# learnable initial state ----------------------------------------------------------


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
def test_learnable_init_is_the_default_state_and_is_trained(cls):
    model = cls(activation="tanh", device="cpu", dtype=F64, seed=1)
    model.add_recurrent_region("a", 3, init=[0.1, -0.2, 0.3], learnable_init=True)
    model.add_recurrent_region("b", 2, init=0.5)
    model.add_input_region("u", 1)
    for src in "ab":
        for dst in "ab":
            model.add_recurrent_connection(src, dst)
    model.add_input_connection("u", "a")
    model.finalize_connectivity()
    assert set(dict(model.named_parameters())) == {"W_rec", "W_inp", "init_a"}
    assert model["a"].init is model.init_a
    inp = torch.randn(4, 5, 1, dtype=F64, generator=torch.Generator().manual_seed(0))
    given_state = model.initial_condition.detach().expand(4, 5)
    assert torch.equal(torch.stack(model(inp)) if cls is mRNN else model(inp),
                       torch.stack(model(inp, given_state)) if cls is mRNN
                       else model(inp, given_state))
    unbatched = model(inp[0])
    assert_close(unbatched[-1] if cls is mRNN else unbatched,
                 numpy((model(inp)[-1] if cls is mRNN else model(inp))[0]))
    hs = model(inp)[-1] if cls is mRNN else model(inp)
    hs[:, -1].sum().backward()
    assert model.init_a.grad is not None and model.init_a.grad.abs().max() > 0
    assert model["b"].init.grad is None and not model["b"].init.requires_grad


# freezing -------------------------------------------------------------------------


def _freezable(**connection):
    model = mRNN(activation="tanh", rec_constrained=False, device="cpu", dtype=F64, seed=6)
    model.add_recurrent_region("a", 3)
    model.add_recurrent_region("b", 3, trainable=False)
    model.add_recurrent_region("c", 2)
    model.add_input_region("u", 2)
    for src in "abc":
        for dst in "abc":
            frozen = (src, dst) == ("a", "c")
            model.add_recurrent_connection(src, dst, trainable=not frozen)
    model.add_input_connection("u", "a")
    model.add_input_connection("u", "b")
    model.finalize_connectivity()
    return model


def _frozen_entries(model):
    """Boolean masks of the frozen entries of W_rec and W_inp, from the layout."""
    rec = torch.zeros(8, 8, dtype=torch.bool)
    rec[3:6, :] = True  # every projection into b
    rec[6:8, 0:3] = True  # a -> c
    inp = torch.zeros(8, 2, dtype=torch.bool)
    inp[3:6, :] = True
    return rec, inp


def _loss(model):
    g = torch.Generator().manual_seed(3)
    inp = torch.randn(2, 6, 2, dtype=F64, generator=g)
    x0 = torch.randn(2, 8, dtype=F64, generator=g)
    _, hs = model(inp, x0)
    return (hs * torch.linspace(-1, 2, 8, dtype=F64)).sum() + (hs ** 2).sum()


def test_frozen_projections_get_exactly_zero_gradient_and_the_same_outputs():
    model = _freezable()
    rec, inp = _frozen_entries(model)
    _loss(model).backward()
    assert torch.equal(model.W_rec.grad[rec], torch.zeros(int(rec.sum()), dtype=F64))
    assert torch.equal(model.W_inp.grad[inp], torch.zeros(int(inp.sum()), dtype=F64))
    live = model.W_rec_mask.bool() & ~rec
    assert (model.W_rec.grad[live] != 0).all()
    assert (model.W_inp.grad[model.W_inp_mask.bool() & ~inp] != 0).all()
    unfrozen = mRNN.from_checkpoint(model.to_checkpoint().__class__(
        model._spec.with_trainable("a", "b", "c", trainable=True), model.dynamics,
        dict(model.to_checkpoint().params)), device="cpu", dtype=F64)
    x = torch.ones(1, 3, 2, dtype=F64)
    assert all(torch.equal(p, q) for p, q in zip(model(x, torch.zeros(1, 8, dtype=F64)),
                                                 unfrozen(x, torch.zeros(1, 8, dtype=F64))))


@pytest.mark.parametrize("make_optimiser", [
    lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: torch.optim.Adam(ps, lr=0.01),
], ids=["sgd-momentum", "adam"])
def test_optimiser_steps_leave_frozen_entries_bit_identical(make_optimiser):
    model = _freezable()
    rec, inp = _frozen_entries(model)
    before = model.W_rec.detach().clone(), model.W_inp.detach().clone()
    optimiser = make_optimiser(model.parameters())
    for _ in range(3):
        optimiser.zero_grad()
        _loss(model).backward()
        optimiser.step()
    assert torch.equal(model.W_rec.detach()[rec], before[0][rec])
    assert torch.equal(model.W_inp.detach()[inp], before[1][inp])
    live = model.W_rec_mask.bool() & ~rec
    assert (model.W_rec.detach()[live] != before[0][live]).all()


def test_freeze_and_unfreeze_by_region_parent_and_pair():
    model = _freezable()
    assert model.unfreeze("b", ("a", "c")) is model
    _loss(model).backward()
    assert (model.W_rec.grad[model.W_rec_mask.bool()] != 0).all()
    model.W_rec.grad = model.W_inp.grad = None
    assert model.freeze(("c", "a")) is model
    _loss(model).backward()
    assert torch.equal(model.W_rec.grad[0:3, 6:8], torch.zeros(3, 2, dtype=F64))
    assert (model.W_rec.grad[0:3, 0:6] != 0).all()


def test_freeze_errors_name_the_target_and_change_nothing():
    model = _freezable()
    spec = model._spec
    with pytest.raises(MRNNConfigError, match=r"unknown region 'nope'"):
        model.freeze("a", "nope")
    with pytest.raises(MRNNConfigError, match=r"no declared connection from 'u' to 'c'"):
        model.freeze(("u", "c"))
    assert model._spec is spec


# building: E/I areas, density, masks, routes, balance, JSON ----------------------------


def test_ei_area_with_routes_density_and_mask():
    model = mRNN(device="cpu", dtype=F64, seed=8)
    model.add_ei_area("v1", 10, tau=40.0, learnable_bias=True)
    model.add_ei_area("v2", 5, exc_pct=0.6)
    model.add_input_region("u", 2)
    assert model.hid_regions == ["v1_exc", "v1_inh", "v2_exc", "v2_inh"]
    assert [model.get_region_size(r) for r in model.hid_regions] == [8, 2, 3, 2]
    assert model["v1_inh"].sign == "neg" and model["v1_exc"].parent_region == "v1"
    assert {"base_firing_v1_exc", "base_firing_v1_inh"} <= set(dict(model.named_parameters()))
    model.add_recurrent_connection("v1", "v1", density=0.5)
    model.add_recurrent_connection("v1", "v2", routes=["E->E"], trainable=False)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]] * 2)
    model.add_recurrent_connection("v2_inh", "v1_inh", mask=mask[:, :2])
    model.add_input_connection("u", "v1", routes="E->E")
    model.finalize_connectivity()
    pairs = {(c.src_region, c.dst_region) for c in model._spec.recurrent_connections}
    assert pairs == {("v1_exc", "v1_exc"), ("v1_exc", "v1_inh"), ("v1_inh", "v1_exc"),
                     ("v1_inh", "v1_inh"), ("v1_exc", "v2_exc"), ("v2_inh", "v1_inh")}
    assert [(c.src_region, c.dst_region) for c in model._spec.input_connections] == [("u", "v1_exc")]
    assert torch.equal(model.get_projection("v1_inh", "v2_inh") != 0, mask[:, :2] != 0)
    assert_close(model.tau, np.array([40.0] * 10 + [100.0] * 5))
    expected = mrnn_core.Checkpoint.initialise(model._spec, model.dynamics, seed=8)
    for key in ("W_rec", "W_rec_mask", "W_inp_mask", "tau"):
        assert np.array_equal(model.to_checkpoint().params[key], expected.params[key]), key


def test_building_errors_name_the_culprit_and_leave_the_model_unchanged():
    model = mRNN(device="cpu", dtype=F64, seed=0)
    model.add_ei_area("m", 5)
    model.add_recurrent_region("r", 2)
    spec, regions = model._spec, dict(model.region_dict)
    connections = {n: dict(r.connections) for n, r in model.region_dict.items()}
    bad = [
        (lambda: model.add_recurrent_connection("m", "r", sparsity=0.2, density=0.5),
         r"at most one of sparsity, density and mask, got sparsity and density"),
        (lambda: model.add_recurrent_connection("r", "m", routes=["E->X"]), r"unknown route 'E->X'"),
        (lambda: model.add_recurrent_connection("r", "r", mask=np.ones((3, 2))),
         r"mask must have shape \[n_dst, n_src\] = \[2, 2\], got \[3, 2\]"),
        (lambda: model.add_recurrent_region("t", 2, tau=-5.0), r"'t': tau must be > 0"),
        (lambda: model.add_ei_area("e", 4, exc_pct=1.0), r"E/I area 'e': exc_pct=1.0"),
    ]
    for call, message in bad:
        with pytest.raises(MRNNConfigError, match=message):
            call()
        assert model._spec is spec and model.region_dict == regions
        assert {n: dict(r.connections) for n, r in model.region_dict.items()} == connections


def test_balance_ei_and_json_config_agree_with_the_core():
    config = {
        "recurrent_regions": [
            {"name": "ctx", "num_units": 10, "exc_pct": 0.7, "tau": 30.0, "learnable_init": True},
            {"name": "thal", "num_units": 3, "tau": 80.0, "learnable_tau": True,
             "trainable": False},
        ],
        "input_regions": [{"name": "cue", "num_units": 2}],
        "recurrent_connections": [
            {"src_region": "ctx", "dst_region": "ctx", "density": 0.6},
            {"src_region": "ctx", "dst_region": "thal", "routes": ["E->E", "E->I"]},
            {"src_region": "thal", "dst_region": "ctx", "trainable": False},
        ],
        "input_connections": [{"src_region": "cue", "dst_region": "ctx", "routes": ["E->E"]}],
    }
    model = mRNN(config, balance_ei=True, spectral_radius=0.9, device="cpu", dtype=F64, seed=11)
    assert model.dynamics.balance_ei and model.balance_ei
    assert {"init_ctx_exc", "init_ctx_inh", "log_tau_thal"} <= set(dict(model.named_parameters()))
    expected = mrnn_core.Checkpoint.initialise(mrnn_core.load_config(config), model.dynamics,
                                               seed=11)
    got = model.to_checkpoint()
    for key in ("W_rec", "W_rec_mask", "W_rec_sign_matrix", "W_inp", "W_inp_mask", "init", "tau"):
        assert np.array_equal(got.params[key], expected.params[key]), key
    W_eff = mrnn_core.effective_weight(got.params["W_rec"], got.params["W_rec_mask"],
                                       got.params["W_rec_sign_matrix"], True)
    mixed = (W_eff > 0).any(axis=1) & (W_eff < 0).any(axis=1)
    assert mixed.any()
    np.testing.assert_allclose(W_eff[mixed].sum(axis=1), 0.0, atol=1e-12)


# checkpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_checkpoint_round_trip_carries_learned_tau_and_init(device):
    model = mRNN(activation="tanh", device=device, dtype=F64, seed=9)
    model.add_recurrent_region("a", 3, tau=25.0, learnable_tau=True, learnable_init=True)
    model.add_recurrent_region("b", 2, sign="neg", tau=60.0)
    model.add_input_region("u", 1)
    for src in "ab":
        for dst in "ab":
            model.add_recurrent_connection(src, dst)
    model.add_input_connection("u", "a")
    model.finalize_connectivity()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    inp = torch.randn(2, 5, 1, dtype=F64, device=device,
                      generator=torch.Generator(device).manual_seed(0))
    for _ in range(3):
        optimiser.zero_grad()
        model(inp)[1].pow(2).sum().backward()
        optimiser.step()
    learned_tau, learned_init = model.tau.detach().clone(), model.init_a.detach().clone()
    assert not torch.equal(learned_tau[:3], torch.full((3,), 25.0, dtype=F64, device=device))
    assert not torch.equal(learned_init, torch.zeros(3, dtype=F64, device=device))

    ckpt = model.to_checkpoint()
    assert_close(ckpt.params["tau"], numpy(learned_tau), rtol=0, atol=0)
    loaded = mRNN.from_checkpoint(ckpt, device=device, dtype=F64)
    for name, p in model.named_parameters():
        assert torch.equal(dict(loaded.named_parameters())[name], p), name
    assert all(np.array_equal(a, ckpt.params[k]) for k, a in loaded.to_checkpoint().params.items())
    assert all(torch.equal(a, b) for a, b in zip(model(inp), loaded(inp)))

    saved = model.state_dict()
    fresh = mRNN(ckpt.spec, activation="tanh", device=device, dtype=F64, seed=0)
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.tau, model.tau) and torch.equal(fresh.init_a, model.init_a)

    # A checkpoint from elsewhere holds tau but no log_tau: tau is still exact,
    # and the parameter is its log.
    params = {k: v for k, v in ckpt.params.items() if k != "log_tau"}
    other = mRNN.from_checkpoint(mrnn_core.Checkpoint(ckpt.spec, ckpt.dynamics, params),
                                 device=device, dtype=F64)
    assert torch.equal(other.tau, model.tau.detach())
    assert_close(other.log_tau_a, numpy(model.log_tau_a))
    with torch.no_grad():  # moving the parameter moves tau as exp(log_tau) does
        other.log_tau_a.add_(0.5)
    assert_close(other.tau[:3], numpy(learned_tau[:3] * np.exp(0.5)))


# drawn networks with every new feature ----------------------------------------------


@given(spec=network_specs(beyond_mrnntorch=True, min_inputs=1),
       dynamics=dynamics_settings(spectral_radius=True, balance_ei=True),
       seed=st.integers(0, 2**31 - 1), data=st.data())
def test_drawn_networks_build_like_the_core_run_like_the_reference_and_freeze(
        spec, dynamics, seed, data):
    ckpt = assume_loop(spec, dynamics, seed)
    kwargs = dict(activation=dynamics.activation, noise_level_act=dynamics.noise_level_act,
                  noise_level_inp=dynamics.noise_level_inp,
                  rec_constrained=dynamics.rec_constrained,
                  inp_constrained=dynamics.inp_constrained, batch_first=dynamics.batch_first,
                  spectral_radius=dynamics.spectral_radius, balance_ei=dynamics.balance_ei,
                  device="cpu", seed=seed, dtype=F64)
    if dynamics.kind == "leaky":
        kwargs.update(dt=dynamics.dt, tau=dynamics.tau)
    model = CLASSES[dynamics.kind](spec, **kwargs)
    model.finalize_connectivity()
    got = model.to_checkpoint()
    for key in mrnn_core.PARAM_NAMES:
        if key == "tau" and dynamics.kind == "elman":
            continue  # ElmanmRNN takes no tau: it has no time constant
        np.testing.assert_array_equal(got.params[key], ckpt.params[key], err_msg=key)

    H, I = spec.hidden_size, spec.input_size
    B, T = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    layout = (B, T) if dynamics.batch_first else (T, B)
    inp, eps_x = rng.normal(size=(*layout, I)), rng.normal(size=(*layout, H))
    call = {"eps_x": eps_x}
    call["x0" if dynamics.kind == "leaky" else "h0"] = 0.3 * rng.normal(size=(B, H))
    out = model(torch.tensor(inp), *[torch.tensor(v) for v in call.values()][1:],
                eps_x=torch.tensor(eps_x))
    assert_close(out, reference.simulate(got.params, dynamics, inp, **call))

    hs = out[1] if dynamics.kind == "leaky" else out
    (hs * torch.tensor(rng.normal(size=hs.shape))).sum().backward()
    T_rec, T_inp = mrnn_core.trainable_masks(spec)
    assert not model.W_rec.grad[torch.tensor(T_rec) == 0].any()
    assert not model.W_inp.grad[torch.tensor(T_inp) == 0].any()
    learnable = mrnn_core.learnable_masks(spec)
    names = dict(model.named_parameters())
    for r, rows in zip(spec.recurrent_regions, model._layout.recurrent_slices.values()):
        key = r.name.replace(".", "_")
        assert (f"init_{key}" in names) == r.learnable_init == bool(learnable["init"][rows].all())
        assert (f"log_tau_{key}" in names) == (r.learnable_tau and dynamics.kind == "leaky")

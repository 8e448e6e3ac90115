"""Models with the nn4n-style features train the same in torch and JAX (issue 9).

Drawn networks have per-region and learnable time constants, learnable
initial states and biases, frozen regions and projections, density and mask
connections and E/I areas. For one loss (a drawn linear functional of the
states, started from the model's own initial state) both backends give the
same gradient for every trained quantity, at rtol = 1e-9 / atol = 1e-10
(float64: one backward pass of reordered sums), and exactly zero on every
frozen or non-learnable entry. Torch keeps per-region vectors
(``log_tau_<region>``, ``init_<region>``, ``base_firing_<region>``); JAX
keeps full ``[H]`` leaves; the test puts torch's into ``[H]`` vectors.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
import mrnn_torch
from .equiv_helpers import assert_close, cases, jax_model, torch_model
from mrnn_core import reference

PREFIX = {"base_firing": "base_firing_", "init": "init_", "log_tau": "log_tau_"}


def _torch_vector(model, what, H):
    """Gradient of torch's per-region parameters ``<what>_<region>`` as one ``[H]`` vector."""
    out = np.zeros(H)
    start = 0
    for r in model.to_checkpoint().spec.recurrent_regions:
        p = dict(model.named_parameters()).get(PREFIX[what] + r.name.replace(".", "_"))
        if p is not None and p.grad is not None:
            out[start:start + r.num_units] = p.grad.numpy()
        start += r.num_units
    return out


def _torch_grads(model, inp, A, leaky):
    model.zero_grad()
    out = model(torch.tensor(inp))
    hs = out[1] if leaky else out
    (torch.as_tensor(A) * hs).sum().backward()
    H = hs.shape[-1]
    grads = {k: (np.zeros(tuple(p.shape)) if p.grad is None else p.grad.numpy())
             for k, p in (("W_rec", model.W_rec), ("W_inp", model.W_inp))}
    for what in PREFIX:
        grads[what] = _torch_vector(model, what, H)
    return grads


def _jax_grads(model, inp, A, leaky):
    def loss(m):
        out = m(jnp.asarray(inp))
        hs = out[1] if leaky else out
        return jnp.sum(A * hs)

    g = eqx.filter_grad(loss)(model)
    return {k: np.asarray(getattr(g, k)) for k in ("W_rec", "W_inp", "base_firing", "init", "log_tau")}


@st.composite
def trained_cases(draw):
    ckpt, call = draw(cases(max_steps=6))
    spec = ckpt.spec
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    inp = call["inp"]
    A = rng.standard_normal(inp.shape[:-1] + (spec.hidden_size,))
    return ckpt, inp, A


@given(trained_cases())
def test_every_trained_quantity_gets_the_same_gradient(case):
    ckpt, inp, A = case
    leaky = ckpt.dynamics.kind == "leaky"
    spec = ckpt.spec
    t = _torch_grads(torch_model(ckpt), inp, A, leaky)
    j = _jax_grads(jax_model(ckpt), inp, A, leaky)
    for name in t:
        np.testing.assert_allclose(t[name], j[name], rtol=1e-9, atol=1e-10,
                                   err_msg=f"gradient of {name}")
    # frozen blocks and non-learnable units get exactly zero, in both backends
    T_rec, T_inp = mrnn_core.trainable_masks(spec)
    learns = mrnn_core.learnable_masks(spec)
    learns["log_tau"] = learns.pop("tau") * float(leaky)
    for grads in (t, j):
        assert np.all(grads["W_rec"][T_rec == 0] == 0)
        assert np.all(grads["W_inp"][T_inp == 0] == 0)
        for what, mask in learns.items():
            assert np.all(grads[what][mask == 0] == 0), what


def _frozen_network():
    spec = (mrnn_core.NetworkSpec()
            .with_ei_area("v1", 10, tau=30.0, learnable_tau=True, learnable_init=True)
            .with_ei_area("v2", 10, trainable=False)
            .with_input_region("cue", 2)
            .with_recurrent_connection("v1", "v1")
            .with_recurrent_connection("v1", "v2", routes=["E->E", "E->I"], density=0.5)
            .with_recurrent_connection("v2", "v1", routes=["E->E"], trainable=False)
            .with_input_connection("cue", "v1", routes="E->E"))
    return mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(activation="tanh"), seed=4)


def test_one_adam_step_moves_the_same_entries_by_the_same_amount():
    ckpt = _frozen_network()
    rng = np.random.default_rng(0)
    inp = rng.normal(size=(3, 8, 2))
    A = rng.normal(size=(3, 8, ckpt.spec.hidden_size))

    tm = torch_model(ckpt)
    opt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    opt.zero_grad()
    (torch.as_tensor(A) * tm(torch.tensor(inp))[1]).sum().backward()
    opt.step()
    t_after = tm.to_checkpoint().params

    jm = jax_model(ckpt)
    params, static = eqx.partition(jm, eqx.is_inexact_array)
    opt_j = optax.adam(1e-2)
    state = opt_j.init(params)

    def loss(p):
        return jnp.sum(A * eqx.combine(p, static)(jnp.asarray(inp))[1])

    grads = jax.grad(loss)(params)
    updates, _ = opt_j.update(grads, state, params)
    j_after = eqx.apply_updates(jm, updates).to_checkpoint().params

    before = ckpt.params
    T_rec, _ = mrnn_core.trainable_masks(ckpt.spec)
    for after in (t_after, j_after):
        np.testing.assert_array_equal(after["W_rec"][T_rec == 0], before["W_rec"][T_rec == 0])
        assert not np.array_equal(after["W_rec"], before["W_rec"])
        assert not np.array_equal(after["tau"][:10], before["tau"][:10])      # v1 learns tau
        np.testing.assert_array_equal(after["tau"][10:], before["tau"][10:])  # v2 does not
    for key in ("W_rec", "W_inp", "init", "tau", "base_firing"):
        np.testing.assert_allclose(t_after[key], j_after[key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_learned_time_constants_survive_a_checkpoint_file(backend, tmp_path):
    ckpt = _frozen_network()
    params = dict(ckpt.params)
    params["tau"] = params["tau"] * np.linspace(0.5, 2.0, len(params["tau"]))
    ckpt = mrnn_core.Checkpoint(ckpt.spec, ckpt.dynamics, params)
    model = torch_model(ckpt) if backend == "torch" else jax_model(ckpt)
    model.to_checkpoint().save(tmp_path / "m.npz")
    loaded = mrnn_core.Checkpoint.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.params["tau"], params["tau"])
    other = jax_model(loaded) if backend == "torch" else torch_model(loaded)
    np.testing.assert_array_equal(np.asarray(other.tau.detach() if backend == "jax" else other.tau),
                                  params["tau"])


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_equal_region_taus_run_exactly_the_scalar_tau_network_noise_included(backend):
    def network(**region):
        spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 4, **region)
                .with_recurrent_region("b", 3, sign="neg", **region).with_input_region("u", 2))
        for src in ("a", "b"):
            spec = spec.with_recurrent_connection(src, "a").with_recurrent_connection(src, "b")
        return spec.with_input_connection("u", "a")

    noisy = dict(activation="tanh", noise_level_act=0.05, noise_level_inp=0.05)
    per_region = mrnn_core.Checkpoint.initialise(network(tau=40.0),
                                                 mrnn_core.Dynamics(tau=100.0, **noisy), seed=2)
    scalar = mrnn_core.Checkpoint.initialise(network(), mrnn_core.Dynamics(tau=40.0, **noisy), seed=2)
    rng = np.random.default_rng(0)
    call = {"inp": rng.normal(size=(2, 9, 2)), "x0": rng.normal(size=(2, 7)), "h0": None,
            "eps_x": rng.normal(size=(2, 9, 7)), "eps_u": rng.normal(size=(2, 9, 2))}
    if backend == "torch":
        from .equiv_helpers import run_torch as run
        make = torch_model
    else:
        from .equiv_helpers import run_jax as run
        make = jax_model
    for got, want in zip(run(make(per_region), call), run(make(scalar), call)):
        np.testing.assert_array_equal(np.asarray(got.detach() if backend == "torch" else got),
                                      np.asarray(want.detach() if backend == "torch" else want))


def test_effective_weights_methods_agree_and_carry_gradients_only_where_trained():
    ckpt = _frozen_network()
    tm, jm = torch_model(ckpt), jax_model(ckpt)
    for t, j in zip(tm.effective_weights(), jm.effective_weights()):
        np.testing.assert_array_equal(t.detach().numpy(), np.asarray(j))
    W_rec_eff, W_inp_eff = tm.effective_weights()
    (W_rec_eff.square().sum() + W_inp_eff.abs().sum()).backward()  # an L2 + L1 penalty
    T_rec, T_inp = mrnn_core.trainable_masks(ckpt.spec)
    assert np.all(tm.W_rec.grad.numpy()[T_rec == 0] == 0)
    assert np.any(tm.W_rec.grad.numpy()[T_rec == 1] != 0)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_noise_constants_report_what_the_forward_pass_uses(backend):
    region_tau = mrnn_core.NetworkSpec().with_recurrent_region("a", 3, tau=40.0)
    d = mrnn_core.Dynamics(tau=100.0, noise_level_act=0.05, noise_level_inp=0.02)
    model = (torch_model if backend == "torch" else jax_model)(
        mrnn_core.Checkpoint.initialise(region_tau, d, seed=0))
    shared = mrnn_core.Dynamics(tau=40.0, noise_level_act=0.05, noise_level_inp=0.02)
    assert model.hid_noise_const == shared.hid_noise_const
    assert model.inp_noise_const == shared.inp_noise_const


@pytest.mark.parametrize("learn", [False, True])
def test_input_noise_constant_is_decided_from_the_spec_in_every_backend(learn):
    """One region with tau 20 ms (Dynamics.tau 50), so every unit starts with
    alpha = dt / 20. docs/semantics.md: a fixed common tau gives that alpha's
    input-noise constant; a learned one gives Dynamics.tau's, from the start
    and after optimiser steps have pulled the units' taus apart, so c_u never
    jumps. The reference (on the checkpoint's params, which hold log_tau
    exactly when tau learns), torch, JAX eager and JAX under jit (where tau is
    traced) agree to 1e-12 (float64) before and after the steps."""
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 3, tau=20.0, learnable_tau=learn)
            .with_input_region("cue", 2).with_recurrent_connection("ctx", "ctx")
            .with_input_connection("cue", "ctx"))
    d = mrnn_core.Dynamics(kind="leaky", activation="tanh", dt=1.0, tau=50.0,
                           noise_level_inp=0.3, rec_constrained=False, batch_first=True)
    ckpt = mrnn_core.Checkpoint.initialise(spec, d, seed=3)
    rng = np.random.default_rng(4)
    call = {"inp": rng.standard_normal((2, 5, 2)), "x0": rng.uniform(-0.5, 0.5, (2, 3)),
            "eps_u": rng.standard_normal((2, 5, 2))}
    c_shared = np.sqrt(2 * (1 / 20) * 0.3**2) / (1 / 20)
    assert c_shared != d.inp_noise_const  # the two rules give different numbers here
    want = d.inp_noise_const if learn else c_shared

    def check(t_model, j_model, label):
        expected = reference.simulate(t_model.to_checkpoint().params, d, **call)
        got_t = t_model.forward(torch.as_tensor(call["inp"]), torch.as_tensor(call["x0"]),
                                eps_u=torch.as_tensor(call["eps_u"]))
        eager = j_model(call["inp"], call["x0"], eps_u=call["eps_u"])
        jitted = eqx.filter_jit(lambda m, i, x, e: m(i, x, eps_u=e))(
            j_model, call["inp"], call["x0"], call["eps_u"])
        for got in (got_t, eager, jitted):
            assert_close(got, expected, 1e-12, 1e-12, f"input noise, {label}")
        assert float(t_model.inp_noise_const) == pytest.approx(want, rel=1e-12)
        assert float(j_model.inp_noise_const) == pytest.approx(want, rel=1e-12)

    t_model = torch_model(ckpt)
    check(t_model, jax_model(ckpt), "at the start")
    # Two SGD steps on the time constants alone, with a loss that treats units
    # differently, so a learned tau stops being common to all units.
    taus = [p for n, p in t_model.named_parameters() if "tau" in n]
    assert bool(taus) is learn
    if learn:
        opt = torch.optim.SGD(taus, lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            xs, _ = t_model.forward(torch.as_tensor(call["inp"]), torch.as_tensor(call["x0"]))
            (xs * torch.arange(1.0, 4.0, dtype=xs.dtype)).sum().backward()
            opt.step()
        tau = t_model.tau.detach().numpy()
        assert len(set(tau.tolist())) == 3  # the units' taus differ now
        check(t_model, jax_model(t_model.to_checkpoint()), "after two optimiser steps")


@pytest.mark.parametrize("act, inp_noise", [(0.1, 0.0), (1e-200, 1e-200)])
def test_time_constant_gradient_is_finite_without_input_noise(act, inp_noise):
    """A zero or tiny noise level (sigma^2 underflows to 0) gives noise constants
    with a finite gradient in tau (sqrt(2 alpha sigma^2) would differentiate
    sqrt(0): nan)."""
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 2, tau=20.0)
            .with_input_region("cue", 1).with_recurrent_connection("ctx", "ctx")
            .with_input_connection("cue", "ctx"))
    d = mrnn_core.Dynamics(kind="leaky", activation="relu", dt=1.0, tau=50.0,
                           noise_level_act=act, noise_level_inp=inp_noise)
    ckpt = mrnn_core.Checkpoint.initialise(spec, d, seed=0)
    rng = np.random.default_rng(0)
    inp, x0 = rng.standard_normal((1, 3, 1)), rng.uniform(0.1, 0.5, (1, 2))
    eps_x, eps_u = rng.standard_normal((1, 3, 2)), rng.standard_normal((1, 3, 1))
    p = {k: jnp.asarray(v) for k, v in ckpt.params.items()}

    def loss_jax(tau):
        return jnp.sum(mrnn_jax.simulate({**p, "tau": tau}, d, inp, x0, eps_x=eps_x,
                                         eps_u=eps_u)[1])

    g_jax = np.asarray(jax.grad(loss_jax)(p["tau"]))
    pt = {k: torch.tensor(np.array(v)) for k, v in ckpt.params.items()}
    tau = pt["tau"].clone().requires_grad_()
    out = mrnn_torch.simulate({**pt, "tau": tau}, d, torch.as_tensor(inp), torch.as_tensor(x0),
                              eps_x=torch.as_tensor(eps_x), eps_u=torch.as_tensor(eps_u))
    out[1].sum().backward()
    assert np.all(np.isfinite(g_jax)) and np.any(g_jax != 0)
    np.testing.assert_allclose(tau.grad.numpy(), g_jax, rtol=1e-10, atol=1e-12)

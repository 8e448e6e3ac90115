"""Ensembles across backends: the torch ensemble == the JAX ensemble == each
member run alone, forward and gradients, and a torch ensemble's checkpoints
load as a JAX ensemble that computes the same.

"Alone" is independent of both ensemble implementations: the forward pass is
the numpy reference (``mrnn_core.reference.simulate``) on the member's own
checkpoint; gradients (the numpy reference has none) are those of
``mrnn_torch.simulate``, the single-network function, on that checkpoint.

Tolerance: float64, ``rtol = atol = 1e-12``. The paths compute the same
arithmetic in other orders (batched vs single matmuls, precomputed drive,
hand-written reverse passes). The cases are small (H = 7, T = 6, at most 3
members) with values of order one, so each result carries a few dozen
roundings of 1e-16 relative: measured, the paths agree to 1.4e-15 at worst,
while comparing a member with its neighbour is off by 0.35 or more; 1e-12
leaves a wide margin on both sides.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_jax
import mrnn_torch
from mrnn_core.reference import simulate as reference_simulate

TOL = dict(rtol=1e-12, atol=1e-12)
E, B, T = 3, 2, 6
SEEDS = [5, 0, 11]



def _spec(inh_tau=None, tau=None, learn=False):
    """Two regions (the second inhibitory, with its own tau when given, so alpha is
    per unit; or both with ``tau``, the first learning it with ``learn``), an input
    region, a sparse block; H = 7, I = 2."""
    return (mrnn_core.NetworkSpec()
            .with_recurrent_region("exc", 4, tau=tau, learnable_tau=learn)
            .with_recurrent_region("inh", 3, sign="neg", tau=inh_tau or tau)
            .with_input_region("cue", 2)
            .with_recurrent_connection("exc", "exc", sparsity=0.5)
            .with_recurrent_connection("exc", "inh")
            .with_recurrent_connection("inh", "exc")
            .with_recurrent_connection("inh", "inh")
            .with_input_connection("cue", "exc")
            .with_input_connection("cue", "inh"))


SPEC, PER_REGION_TAU = _spec(), _spec(inh_tau=35.0)
H, I = SPEC.hidden_size, SPEC.input_size

# (spec, dynamics, member_values, per-member inputs, noise draws)
CASES = {
    "leaky-tanh-tau-noise-shared-inp": (
        SPEC, mrnn_core.Dynamics(activation="tanh"),
        {"tau": [30.0, 60.0, 120.0], "noise_level_act": [0.0, 0.05, 0.2],
         "noise_level_inp": [0.1, 0.0, 0.03]}, False, True),
    "leaky-relu-region-tau-per-member-inp-time-major": (
        PER_REGION_TAU, mrnn_core.Dynamics(activation="relu", batch_first=False),
        {"tau": [50.0, 80.0, 25.0], "spectral_radius": [0.5, 0.9, 1.1]}, True, False),
    # Every unit starts at tau 40 and one region learns it: the input-noise
    # constant is each member's Dynamics.tau's (decided from the spec), not 40's.
    "leaky-learned-tau-input-noise": (
        _spec(tau=40.0, learn=True), mrnn_core.Dynamics(activation="tanh"),
        {"tau": [30.0, 60.0, 120.0], "noise_level_inp": [0.1, 0.2, 0.05]}, False, True),
    "elman-tanh-noise-per-member-inp": (
        SPEC, mrnn_core.Dynamics(kind="elman", activation="tanh"),
        {"noise_level_act": [0.1, 0.0, 0.05], "noise_level_inp": [0.0, 0.2, 0.1]}, True, True),
    "elman-softplus-shared-inp-time-major": (
        SPEC, mrnn_core.Dynamics(kind="elman", activation="softplus", batch_first=False),
        None, False, False),
}


def _build(spec, dynamics, member_values, tmp_path):
    """A float64 torch ensemble (random biases, so they count) and the JAX ensemble
    loaded from its saved checkpoints."""
    drawn = mrnn_core.ensemble.seed_checkpoints(spec, SEEDS, dynamics=dynamics,
                                                member_values=member_values)
    rng = np.random.default_rng(7)
    ckpts = [mrnn_core.Checkpoint(c.spec, c.dynamics,
                                  {**c.params, "base_firing": rng.uniform(-0.3, 0.3, H)})
             for c in drawn]
    torch_ens = mrnn_torch.Ensemble.from_checkpoints(ckpts, device="cpu", dtype=torch.float64)
    paths = []
    for e, c in enumerate(torch_ens.to_checkpoints()):
        paths.append(tmp_path / f"member{e}.npz")
        c.save(paths[-1])
    return torch_ens, mrnn_jax.Ensemble.from_checkpoints(paths)


def _call_arrays(dynamics, per_member_inp, noise, seed=1):
    rng = np.random.default_rng(seed)
    lead = (B, T) if dynamics.batch_first else (T, B)
    leaky = dynamics.kind == "leaky"
    a = {"inp": rng.standard_normal(((E,) if per_member_inp else ()) + lead + (I,)),
         "stim_input": 0.2 * rng.standard_normal((E,) + lead + (H,)),
         "x0" if leaky else "h0": rng.uniform(-0.5, 0.5, (E, B, H))}
    if leaky:
        a["h0"] = rng.uniform(0.0, 0.5, (E, B, H))
    if noise:
        a["eps_x"] = rng.standard_normal((E,) + lead + (H,))
        a["eps_u"] = rng.standard_normal((E,) + lead + (I,))
    weights = {"A": rng.standard_normal((E,) + lead + (H,)),
               "C": rng.standard_normal((E,) + lead + (H,))}
    return a, weights


def _member(a, e, per_member_inp):
    return {k: (v if k == "inp" and not per_member_inp else v[e]) for k, v in a.items()}


def _loss(out, w, leaky, lib):
    """A linear functional of the states, other weights per member, step and unit."""
    hs, xs = (out[1], out[0]) if leaky else (out, None)
    loss = lib.sum(w["A"] * hs)
    return loss + lib.sum(w["C"] * xs) if leaky else loss


def _torch_run(ens, a, w):
    leaky = ens.kind == "leaky"
    t = {k: torch.tensor(v) for k, v in a.items()}
    out = ens(t.pop("inp"), **t)
    members = ens.members()
    wrt = [m.W_rec for m in members] + [m.W_inp for m in members]
    grads = torch.autograd.grad(_loss(out, {k: torch.tensor(v) for k, v in w.items()}, leaky,
                                      torch), wrt)
    outs = tuple(o.detach().numpy() for o in (out if leaky else (out,)))
    return outs, np.stack([g.numpy() for g in grads[:E]]), np.stack([g.numpy() for g in grads[E:]])


def _jax_run(ens, a, w):
    leaky = ens.kind == "leaky"
    j = {k: jnp.asarray(v) for k, v in a.items()}

    def loss(weights):
        model = eqx.tree_at(lambda en: (en.model.W_rec, en.model.W_inp), ens, weights)
        return _loss(model(j["inp"], **{k: v for k, v in j.items() if k != "inp"}), w, leaky,
                     jnp)

    out = ens(j["inp"], **{k: v for k, v in j.items() if k != "inp"})
    g_rec, g_inp = jax.grad(loss)((ens.model.W_rec, ens.model.W_inp))
    outs = tuple(np.asarray(o) for o in (out if leaky else (out,)))
    return outs, np.asarray(g_rec), np.asarray(g_inp)


def _alone(ckpt, a, w, leaky):
    """Member ``ckpt`` run alone: the numpy reference's states, and the gradients of
    ``mrnn_torch.simulate``'s loss w.r.t. its raw W_rec and W_inp."""
    ref = reference_simulate(ckpt.params, ckpt.dynamics, **a)
    params = {k: torch.tensor(np.asarray(v), requires_grad=k in ("W_rec", "W_inp"))
              for k, v in ckpt.params.items()}
    out = mrnn_torch.simulate(params, ckpt.dynamics, **{k: torch.tensor(v) for k, v in a.items()})
    g_rec, g_inp = torch.autograd.grad(
        _loss(out, {k: torch.tensor(v) for k, v in w.items()}, leaky, torch),
        (params["W_rec"], params["W_inp"]))
    return (ref if leaky else (ref,)), g_rec.numpy(), g_inp.numpy()


@pytest.mark.parametrize("case", list(CASES))
def test_torch_ensemble_equals_jax_ensemble_equals_members_alone(case, tmp_path):
    spec, dynamics, member_values, per_member_inp, noise = CASES[case]
    leaky = dynamics.kind == "leaky"
    torch_ens, jax_ens = _build(spec, dynamics, member_values, tmp_path)
    a, w = _call_arrays(dynamics, per_member_inp, noise)
    t_out, t_rec, t_inp = _torch_run(torch_ens, a, w)
    j_out, j_rec, j_inp = _jax_run(jax_ens, a, w)
    for t, j in zip(t_out, j_out, strict=True):
        np.testing.assert_allclose(t, j, err_msg="torch vs JAX ensemble states", **TOL)
    np.testing.assert_allclose(t_rec, j_rec, err_msg="dW_rec, torch vs JAX ensemble", **TOL)
    np.testing.assert_allclose(t_inp, j_inp, err_msg="dW_inp, torch vs JAX ensemble", **TOL)
    for e, ckpt in enumerate(torch_ens.to_checkpoints()):
        one = {k: v[e] for k, v in w.items()}
        ref, g_rec, g_inp = _alone(ckpt, _member(a, e, per_member_inp), one, leaky)
        for t, r in zip(t_out, ref, strict=True):
            np.testing.assert_allclose(t[e], r, err_msg=f"member {e} vs alone", **TOL)
        np.testing.assert_allclose(t_rec[e], g_rec, err_msg=f"member {e} dW_rec", **TOL)
        np.testing.assert_allclose(t_inp[e], g_inp, err_msg=f"member {e} dW_inp", **TOL)
        if "log_tau" in ckpt.params and noise:  # the value rule would give other numbers
            fixed = {k: v for k, v in ckpt.params.items() if k != "log_tau"}
            other = reference_simulate(fixed, ckpt.dynamics, **_member(a, e, per_member_inp))
            assert not np.allclose(other[1], ref[1], **TOL), f"member {e}: same either way"
    # the members really differ (else "each member alone" would prove little)
    assert not np.allclose(t_out[-1][0], t_out[-1][1])


def test_both_backends_draw_the_same_members_from_seeds():
    values = {"tau": [30.0, 60.0, 120.0], "spectral_radius": [0.5, 0.9, 1.1]}
    t = mrnn_torch.Ensemble.from_seeds(SPEC, SEEDS, activation="tanh", member_values=values,
                                       device="cpu", dtype=torch.float64)
    j = mrnn_jax.Ensemble.from_seeds(SPEC, SEEDS, activation="tanh", member_values=values)
    for e, (ct, cj) in enumerate(zip(t.to_checkpoints(), j.to_checkpoints(), strict=True)):
        assert ct.dynamics == cj.dynamics
        assert ct.params.keys() == cj.params.keys()
        for name in ct.params:
            np.testing.assert_array_equal(ct.params[name], cj.params[name],
                                          err_msg=f"member {e} {name}")

"""Property 3b: each backend's own noise has SEMANTICS.md's standard deviations.

A network with W_rec overridden to zero, zero input and zero baseline starts
at x0 = 0. Then each step's increment ``x_{t+1} - (1 - alpha) x_t`` (leaky) or
``x_{t+1}`` (Elman) is pure noise:

    alpha * (c_x eps_x + W_inp_eff c_u eps_u)   (leaky)
    sigma_x eps_x + W_inp_eff sigma_u eps_u     (Elman)

so unit i's increments have standard deviation
``alpha * sqrt(c_x^2 + c_u^2 * sum_j W_inp_eff[i, j]^2)`` (alpha = 1 and c = sigma
for Elman). With N draws per unit the sample standard deviation of a Gaussian
has standard error sigma / sqrt(2 N); we accept 5 standard errors (a false
failure once in ~10^6 runs at a fixed seed it never changes).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core
from .equiv_helpers import JAX_CLASSES, TORCH_CLASSES

B, T = 400, 25


def _case(kind):
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", 3, base_firing=0.0)
            .with_recurrent_region("i", 2, sign="neg")
            .with_input_region("cue", 2)
            .with_recurrent_connection("e", "i")
            .with_input_connection("cue", "e")
            .with_input_connection("cue", "i"))
    dynamics = mrnn_core.Dynamics(kind=kind, activation="linear", dt=10, tau=50,
                                  noise_level_act=0.05, noise_level_inp=0.2)
    return mrnn_core.Checkpoint.initialise(spec, dynamics, seed=7)


def _expected_std(ckpt):
    d = ckpt.dynamics
    p = ckpt.params
    W_inp = mrnn_core.effective_weight(p["W_inp"], p["W_inp_mask"], p["W_inp_sign_matrix"],
                                       d.inp_constrained)
    var = d.hid_noise_const**2 + d.inp_noise_const**2 * (W_inp**2).sum(axis=1)
    return d.alpha * np.sqrt(var)


def _increments(xs, alpha, kind):
    """[B, T, H] states from x0 = 0 -> [B*T, H] noise increments."""
    prev = np.concatenate([np.zeros_like(xs[:, :1]), xs[:, :-1]], axis=1)
    inc = xs - (1 - alpha) * prev if kind == "leaky" else xs
    return inc.reshape(-1, xs.shape[-1])


def _check(xs, ckpt):
    inc = _increments(xs, ckpt.dynamics.alpha, ckpt.dynamics.kind)
    expected = _expected_std(ckpt)
    n = inc.shape[0]
    np.testing.assert_allclose(inc.mean(axis=0), 0.0, atol=5 * expected.max() / np.sqrt(n))
    np.testing.assert_allclose(inc.std(axis=0), expected, rtol=5 / np.sqrt(2 * n))


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_torch_noise_std(kind):
    ckpt = _case(kind)
    model = TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    H, I = ckpt.spec.hidden_size, ckpt.spec.input_size
    torch.manual_seed(0)
    inp, zeros = torch.zeros(B, T, I, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64)
    W0 = torch.zeros(H, H, dtype=torch.float64)
    with torch.no_grad():
        out = model(inp, zeros, zeros, noise=True, W_rec=W0) if kind == "leaky" \
            else model(inp, zeros, noise=True, W_rec=W0)
    xs = out[0] if kind == "leaky" else out  # linear activation: Elman rates are states
    _check(xs.numpy() - _baseline_response(ckpt), ckpt)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_jax_noise_std(kind):
    ckpt = _case(kind)
    model = JAX_CLASSES[kind].from_checkpoint(ckpt)
    H, I = ckpt.spec.hidden_size, ckpt.spec.input_size
    inp, zeros = jnp.zeros((B, T, I)), jnp.zeros((B, H))
    W0 = jnp.zeros((H, H))
    key = jax.random.PRNGKey(0)
    out = model(inp, zeros, zeros, W_rec=W0, key=key) if kind == "leaky" \
        else model(inp, zeros, W_rec=W0, key=key)
    xs = out[0] if kind == "leaky" else out
    _check(np.asarray(xs) - _baseline_response(ckpt), ckpt)


def _baseline_response(ckpt):
    """The noise-free trajectory (zero here: zero input, zero baseline, W_rec = 0)."""
    assert not np.any(ckpt.params["base_firing"])
    return 0.0


def test_noise_draws_differ_between_calls_and_follow_the_seed():
    ckpt = _case("leaky")
    model = TORCH_CLASSES["leaky"].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    inp, x0 = torch.zeros(2, 5, 2, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64)
    torch.manual_seed(3)
    a = model(inp, x0, noise=True)[0]
    b = model(inp, x0, noise=True)[0]
    torch.manual_seed(3)
    c = model(inp, x0, noise=True)[0]
    assert not torch.equal(a, b)
    assert torch.equal(a, c)
    assert torch.equal(model(inp, x0)[0], model(inp, x0, noise=False)[0])

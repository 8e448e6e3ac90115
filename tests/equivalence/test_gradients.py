"""Property 2: torch autograd == jax.grad for a random linear functional of the states.

Loss = sum(A * hs) (+ sum(C * xs) for the leaky model), A and C drawn.
Gradients are compared for W_rec, W_inp, base_firing and the per-unit tau
(full vectors: the functional interface does not know which entries a model
trains; an Elman model has no tau, so its gradient is zero), x0 / h0 and
the input, at rtol = 1e-9, atol = 1e-10: backpropagation adds one more pass of
reordered sums over the same steps, still rounding-level in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_jax
import mrnn_torch
from .equiv_helpers import cases

WRT = ("W_rec", "W_inp", "base_firing", "tau")


def _weights(draw_seed, shapes):
    rng = np.random.default_rng(draw_seed)
    return [rng.standard_normal(s) for s in shapes]


@given(cases(), st.integers(0, 2**31))
def test_gradients_agree(case, seed):
    ckpt, call = case
    leaky = ckpt.dynamics.kind == "leaky"
    state_key = "x0" if leaky else "h0"
    out_shape = call["stim_input"].shape if call["stim_input"] is not None else None
    B, H = call[state_key].shape
    if out_shape is None:
        T = call["inp"].shape[1 if ckpt.dynamics.batch_first else 0]
        out_shape = (B, T, H) if ckpt.dynamics.batch_first else (T, B, H)
    A, C = _weights(seed, [out_shape, out_shape])

    # torch
    t_params = {k: torch.tensor(np.array(v), requires_grad=k in WRT) for k, v in ckpt.params.items()}
    t_call = {k: (None if v is None else torch.tensor(v, requires_grad=k in (state_key, "inp")))
              for k, v in call.items()}
    out = mrnn_torch.simulate(t_params, ckpt.dynamics, **t_call)
    loss = (torch.as_tensor(A) * out[1]).sum() + (torch.as_tensor(C) * out[0]).sum() if leaky \
        else (torch.as_tensor(A) * out).sum()
    loss.backward()
    # an empty W_inp (no input region) takes no part in the graph: its gradient is zero
    t_grads = {k: (torch.zeros_like(t_params[k]) if t_params[k].grad is None
                   else t_params[k].grad).numpy() for k in WRT}
    t_grads[state_key] = t_call[state_key].grad.numpy()
    t_grads["inp"] = t_call["inp"].grad.numpy()

    # jax
    def j_loss(p, state, inp):
        c = {k: (None if v is None else jnp.asarray(v)) for k, v in call.items()}
        c[state_key], c["inp"] = state, inp
        out = mrnn_jax.simulate({**{k: jnp.asarray(v) for k, v in ckpt.params.items()}, **p},
                                ckpt.dynamics, **c)
        if leaky:
            return jnp.sum(A * out[1]) + jnp.sum(C * out[0])
        return jnp.sum(A * out)

    p0 = {k: jnp.asarray(ckpt.params[k]) for k in WRT}
    gp, gs, gi = jax.grad(j_loss, argnums=(0, 1, 2))(p0, jnp.asarray(call[state_key]),
                                                  jnp.asarray(call["inp"]))
    j_grads = {**{k: np.asarray(v) for k, v in gp.items()}, state_key: np.asarray(gs),
               "inp": np.asarray(gi)}
    for name in t_grads:
        np.testing.assert_allclose(t_grads[name], j_grads[name], rtol=1e-9, atol=1e-10,
                                   err_msg=f"gradient of {name}")

"""A plain numpy simulation of SEMANTICS.md section 4: the test oracle.

Clarity beats speed here: one explicit loop over time, one line per term of
the update equation. Noise, when wanted, is given as standard-normal arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .activations import get_activation
from .dynamics import (ACTIVATIONS, Dynamics, check_activation, input_noise_constant,
                       uniform_alpha)
from .errors import MRNNConfigError
from .init import effective_weight
from .shapes import check_call_shapes


ACTIVATION_FUNCTIONS = {name: get_activation(name) for name in ACTIVATIONS}
"""The numpy function of every activation (:mod:`mrnn_core.activations`)."""


def activation_function(name: str):
    """The numpy function for activation ``name``."""
    return ACTIVATION_FUNCTIONS[check_activation(name)]


def effective_weights(params: Mapping, dynamics: Dynamics):
    """``(W_rec_eff [H, H], W_inp_eff [H, I])`` as the dynamics use them."""
    W_rec = effective_weight(params["W_rec"], params["W_rec_mask"],
                             params["W_rec_sign_matrix"], dynamics.rec_constrained)
    W_inp = effective_weight(params["W_inp"], params["W_inp_mask"],
                             params["W_inp_sign_matrix"], dynamics.inp_constrained)
    return W_rec, W_inp


def _time_major(a, batch_first, batched):
    """``[T, B, F]`` view of an array in the call's layout (None stays None)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=float)
    if not batched:
        return a[:, None, :]
    return a.transpose(1, 0, 2) if batch_first else a


def _from_time_major(a, batch_first, batched):
    if not batched:
        return a[:, 0, :]
    return a.transpose(1, 0, 2) if batch_first else a


def simulate(params: Mapping, dynamics: Dynamics, inp, x0=None, h0=None, *,
             stim_input=None, W_rec=None, eps_x=None, eps_u=None):
    """Run the network over ``T`` steps.

    **Arguments:**

    - `params`: named arrays (``W_rec``, ``W_inp``, masks, signs, ``base_firing``,
      optionally ``tau`` ``[H]``: per-unit time constants, ``alpha = dt / tau``;
      without it ``dynamics.alpha``; a ``log_tau`` entry marks them as learned,
      see :func:`input_noise_constant`).
    - `dynamics`: a :class:`Dynamics`; its ``kind`` picks the update.
    - `inp`: ``[B, T, I]`` if ``batch_first`` else ``[T, B, I]`` (or ``[T, I]``).
    - `x0`: leaky only, initial pre-activation ``[B, H]``.
    - `h0`: initial rate ``[B, H]``; leaky default ``f(x0)``; required for Elman.
    - `stim_input`: additive stimulus, output layout, feature size ``H``.
    - `W_rec`: use this ``[H, H]`` matrix as the effective recurrent weights.
    - `eps_x`, `eps_u`: standard-normal draws (output / input layout); noise
      is added when given, scaled by ``dynamics.hid_noise_const`` /
      ``inp_noise_const``.

    **Returns:** ``(xs, hs)`` for leaky, ``hs`` for Elman: the ``T`` states
    after each update, in the output layout.
    """
    leaky = dynamics.kind == "leaky"
    f = activation_function(dynamics.activation)
    W_rec_eff, W_inp_eff = effective_weights(params, dynamics)
    H, I = W_inp_eff.shape
    shape = lambda a: None if a is None else np.shape(a)
    state = x0 if leaky else h0
    if state is None:
        raise MRNNConfigError(
            "x0: the leaky model needs an initial pre-activation [B, H], got None" if leaky
            else "h0: the Elman model needs an initial state [B, H], got None")
    call = check_call_shapes(hidden_size=H, input_size=I, batch_first=dynamics.batch_first,
                             inp=shape(inp), state=shape(state),
                             state_name="x0" if leaky else "h0",
                             h0=shape(h0) if leaky else None, stim_input=shape(stim_input),
                             W_rec=shape(W_rec), eps_x=shape(eps_x), eps_u=shape(eps_u))
    tm = lambda a: _time_major(a, dynamics.batch_first, call.batched)
    u, s, ex, eu = tm(inp), tm(stim_input), tm(eps_x), tm(eps_u)
    if u is None:
        u = np.zeros((call.steps, call.batch, I))
    if W_rec is not None:
        W_rec_eff = np.asarray(W_rec, dtype=float)
    b = np.asarray(params["base_firing"], dtype=float)
    # Per-unit time constants (params["tau"], [H]) make alpha a vector; equal
    # ones give the scalar, so the numbers match a scalar-tau network exactly.
    alpha = (uniform_alpha(params["tau"], dynamics) if params.get("tau") is not None
             else dynamics.alpha)
    c_x, c_u = dynamics.hid_noise_vector(alpha), input_noise_constant(params, dynamics, alpha)

    x = np.asarray(state, dtype=float).reshape(call.batch, H)
    if leaky:
        h = f(x) if h0 is None else np.asarray(h0, dtype=float).reshape(call.batch, H)
    else:
        h = x
    xs, hs = [], []
    for t in range(call.steps):
        u_t = u[t] if eu is None else u[t] + c_u * eu[t]
        drive = h @ W_rec_eff.T + u_t @ W_inp_eff.T + b
        if ex is not None:
            drive = drive + c_x * ex[t]
        if leaky:
            x = x + alpha * (-x + drive)
            if s is not None:
                x = x + alpha * s[t]
        else:
            x = drive if s is None else drive + s[t]
        h = f(x)
        xs.append(x)
        hs.append(h)
    empty = np.zeros((0, call.batch, H))
    xs = _from_time_major(np.stack(xs) if xs else empty, dynamics.batch_first, call.batched)
    hs = _from_time_major(np.stack(hs) if hs else empty, dynamics.batch_first, call.batched)
    return (xs, hs) if leaky else hs

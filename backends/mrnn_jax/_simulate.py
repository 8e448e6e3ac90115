"""``simulate`` and ``input_drive``: the primary, pure interface of the backend.

Both check every shape with :func:`mrnn_core.check_call_shapes` in plain
Python first, so bad input raises the same :class:`mrnn_core.MRNNConfigError`
as every other backend, before anything is traced. ``simulate`` then runs one
jitted ``lax.scan`` (compiled once per shape and set of present arguments).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import (PARAM_NAMES, Dynamics, MRNNConfigError, check_call_shapes,
                       input_noise_constant, uniform_alpha)

from ._activations import get_activation
from ._compat import is_traced
from ._blocks import choose_plan, recurrent_input, split_weights
from ._functional import (_PRECISION, advance, call_input, drive, effective_weights,
                          model_dtype)
from . import _recurrence

_USED = tuple(n for n in PARAM_NAMES if n not in ("init", "tau"))  # "tau" is optional

# Batch x hidden size from which the input term is computed inside each step
# rather than as one [T, B, H] drive array before the loop: large drive arrays
# cost more in fresh memory than a matmul a step, small ones less
# (measurements: benchmarks/RESULTS.md, "Where the tuning constants come from"). A dense
# network with at most _recurrence._INPUT_FMA_MAX inputs skips both: its
# input term is a few multiply-adds inside the step's update.
_INPUT_IN_STEP_MIN = 4096


def _shape(a):
    return None if a is None else tuple(jnp.shape(a))


def call_inputs(params: Mapping, **arrays) -> dict:
    """:func:`call_input` for each named argument, against ``params["W_rec"]``'s dtype."""
    dtype = model_dtype(params["W_rec"])
    return {name: call_input(name, a, dtype) for name, a in arrays.items()}


def _empty_outputs(dtype, call, batch_first: bool, H: int, leaky: bool):
    """The outputs of a ``T = 0`` call: no states, in the call layout."""
    if not call.batched:
        shape = (0, H)
    else:
        shape = (call.batch, 0, H) if batch_first else (0, call.batch, H)
    empty = jnp.zeros(shape, dtype)
    return (empty, empty) if leaky else empty


def _check_network(params, dynamics) -> tuple[int, int]:
    """``(H, I)`` of a valid params mapping; raises naming the bad entry."""
    if not isinstance(dynamics, Dynamics):
        raise MRNNConfigError(
            f"dynamics: expected a mrnn_core.Dynamics, got {type(dynamics).__name__}")
    if not isinstance(params, Mapping):
        raise MRNNConfigError(f"params: expected a mapping of named arrays, got {type(params).__name__}")
    missing = [n for n in _USED if n not in params]
    if missing:
        raise MRNNConfigError(
            f"params: missing {', '.join(map(repr, missing))}; expected a mapping with "
            f"{', '.join(_USED)}")
    mask = _shape(params["W_inp_mask"])
    if len(mask) != 2:
        raise MRNNConfigError(f"params['W_inp_mask']: expected shape [H, I], got {mask}")
    H, I = mask
    expected = {"W_rec": (H, H), "W_rec_mask": (H, H), "W_rec_sign_matrix": (H, H),
                "W_inp": (H, I), "W_inp_sign_matrix": (H, I), "base_firing": (H,)}
    if params.get("tau") is not None:
        expected["tau"] = (H,)
    for name, want in expected.items():
        if _shape(params[name]) != want:
            raise MRNNConfigError(
                f"params[{name!r}]: expected shape {want} (H = {H}, I = {I}, read from "
                f"W_inp_mask), got {_shape(params[name])}")
    return H, I


def _alpha(params, dynamics):
    """``(alpha, tau)``: the leaky update's alpha as a static float, or ``(None, tau [H])``.

    Without ``params["tau"]`` (and for Elman) alpha is ``dynamics.alpha``.
    Concrete time constants that are all equal give the float
    (:func:`mrnn_core.uniform_alpha`), so such a network compiles and runs
    exactly the scalar-tau code; unequal or traced ones (a learned tau) give
    ``tau`` for the vector path, ``alpha = dt / tau`` per unit.
    """
    tau = params.get("tau") if dynamics.kind == "leaky" else None
    if tau is None:
        return dynamics.alpha, None
    if not is_traced(tau):
        alpha = uniform_alpha(np.asarray(tau), dynamics)
        if isinstance(alpha, float):
            return alpha, None
    return None, tau


def _time_major(a, batch_first: bool, batched: bool):
    """``[T, B, F]`` from the call layout (``[T, F]`` gains ``B = 1``)."""
    if a is None:
        return None
    if not batched:
        return a[:, None, :]
    return jnp.swapaxes(a, 0, 1) if batch_first else a


def _call_layout(a, batch_first: bool, batched: bool):
    """Inverse of :func:`_time_major`."""
    if not batched:
        return a[:, 0, :]
    return jnp.swapaxes(a, 0, 1) if batch_first else a


def input_drive(params: Mapping, dynamics: Dynamics, inp, *, stim_input=None,
                eps_x=None, eps_u=None):
    """Everything but the recurrence, for all steps at once.

    ``drive_t = W_inp_eff (u_t + c_u eps_u_t) + b + c_x eps_x_t + s_t`` with
    ``c_x = dynamics.hid_noise_vector(alpha)`` (``dynamics.hid_noise_const``,
    or ``[H]`` when ``params["tau"]`` makes alpha per unit) and
    ``c_u = mrnn_core.input_noise_constant(params, dynamics, alpha)``.

    **Arguments:**

    - `params`: the named arrays (see :func:`simulate`).
    - `dynamics`: the static settings (``batch_first`` sets the call layout).
    - `inp`: ``[B, T, I]`` if ``batch_first`` else ``[T, B, I]`` (or ``[T, I]``);
      None for a network without input regions when `stim_input` gives ``T``.
    - `stim_input`, `eps_x`: ``[B, T, H]`` / ``[T, B, H]`` (or ``[T, H]``).
    - `eps_u`: standard-normal input noise, the layout of `inp`.

    **Returns:** the drive, time-major ``[T, B, H]`` (``[T, H]`` unbatched).
    """
    H, I = _check_network(params, dynamics)
    inp, stim_input, eps_x, eps_u = call_inputs(
        params, inp=inp, stim_input=stim_input, eps_x=eps_x, eps_u=eps_u).values()
    call = check_call_shapes(hidden_size=H, input_size=I, batch_first=dynamics.batch_first,
                             inp=_shape(inp), stim_input=_shape(stim_input),
                             eps_x=_shape(eps_x), eps_u=_shape(eps_u))
    tm = partial(_time_major, batch_first=dynamics.batch_first, batched=call.batched)
    _, W_inp_eff = effective_weights(params, dynamics)
    u = tm(inp) if inp is not None else jnp.zeros((call.steps, call.batch, I), W_inp_eff.dtype)
    alpha, tau = _alpha(params, dynamics)
    alpha = alpha if tau is None else dynamics.dt / jnp.asarray(tau)
    out = drive(dynamics, W_inp_eff, jnp.asarray(params["base_firing"]), u,
                tm(stim_input), tm(eps_x), tm(eps_u), dynamics.hid_noise_vector(alpha),
                input_noise_constant(params, dynamics, alpha))
    return out if call.batched else out[:, 0, :]


def simulate(params: Mapping, dynamics: Dynamics, inp, x0=None, h0=None, *,
             stim_input=None, W_rec=None, eps_x=None, eps_u=None, recurrence="auto",
             key=None):
    """Run the network over ``T`` steps with ``jax.lax.scan`` (SEMANTICS.md section 4).

    leaky: ``x_{t+1} = x_t + alpha (-x_t + W_rec_eff h_t + W_inp_eff (u_t + c_u eps_u)
    + b + c_x eps_x + s_t)``; Elman: ``x_{t+1} = W_rec_eff h_t + W_inp_eff (u_t +
    c_u eps_u) + b + c_x eps_x + s_t``; then ``h_{t+1} = f(x_{t+1})``.
    With per-unit time constants ``params["tau"]`` ``[H]``, ``alpha = dt / tau``
    and ``c_x = sqrt(2 alpha sigma_x^2) / alpha`` are ``[H]`` vectors (each
    unit's row of the update uses its own); equal ones give the scalar code.

    Pure and transformable: ``jax.jit(simulate, static_argnums=1)``,
    ``jax.vmap`` over a batch or over stacked parameter sets, ``jax.grad``.
    Masks and sign matrices get no gradient. The dense recurrence has a
    hand-written reverse pass (``jax.custom_vjp``; per-unit and learned time
    constants included), so
    forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian``) of such a call raises; pass ``recurrence="scan"`` for
    the plain ``lax.scan``, which supports every transformation.

    **Arguments:**

    - `params`: a mapping with ``W_rec`` ``[H, H]``, ``W_inp`` ``[H, I]``, their
      ``_mask`` and ``_sign_matrix`` of the same shapes, ``base_firing``
      ``[H]`` and optionally ``tau`` ``[H]`` (per-unit time constants, leaky
      only; without it ``dynamics.tau``). A ``log_tau`` entry marks those time
      constants as learned, which sets the input-noise constant to
      ``dynamics.inp_noise_const`` (:func:`mrnn_core.input_noise_constant`);
      checkpoints and :meth:`AbstractMRNN.params` hold one exactly when some
      region learns its tau. Other extra keys are ignored, so a checkpoint's
      ``params`` works.
    - `dynamics`: a :class:`mrnn_core.Dynamics` (static: hashable, not traced).
    - `inp`: ``[B, T, I]`` if ``dynamics.batch_first`` else ``[T, B, I]``, or
      ``[T, I]`` unbatched; None when ``I = 0`` and `stim_input` gives ``T``.
    - `x0`: leaky only (Elman ignores it), the initial pre-activation ``[B, H]`` (``[H]``).
    - `h0`: the initial rate ``[B, H]``; required for Elman, ``f(x0)`` by
      default for leaky.
    - `stim_input`: additive stimulus ``s``, output layout, feature size ``H``.
    - `W_rec`: an ``[H, H]`` matrix used as ``W_rec_eff`` for this call.
    - `eps_x`, `eps_u`: standard-normal noise (output / input layout).
    - `recurrence`: how ``W_rec_eff h`` is computed each step; every choice
      gives the same numbers up to summation order. ``"dense"``: one matmul
      (fast, reverse-mode only). ``"scan"``: one matmul in a plain
      ``lax.scan`` (slower; forward mode works too).
      ``"blocks"``: only the region blocks where ``W_rec_mask`` has nonzeros
      (needs concrete masks). ``"auto"`` (default): blocks for large,
      block-sparse networks (``_blocks.choose_plan``), else dense. Traced masks
      (inside a user's ``jit``/``vmap``) hide the structure: pass it instead, a
      :class:`mrnn_core.Connectivity` or :class:`mrnn_core.NetworkSpec` whose
      blocks cover every nonzero of ``W_rec_mask``, chosen as ``"auto"``
      chooses (the models pass their spec). `W_rec=` calls are dense.
    - `key`: a PRNG key to draw `eps_x` and `eps_u` from instead (not both).

    Array arguments may be JAX arrays, numpy arrays or nested lists of real
    floating numbers; they are cast to ``params["W_rec"]``'s dtype when that
    loses nothing and refused otherwise (:func:`mrnn_jax._functional.call_input`).
    ``T = 0`` gives empty outputs.

    **Returns:** leaky ``(xs, hs)``, Elman ``hs``: the ``T`` states after each
    update (never the initial one), each ``[B, T, H]`` / ``[T, B, H]`` / ``[T, H]``.
    """
    H, I = _check_network(params, dynamics)
    leaky = dynamics.kind == "leaky"
    state_name = "x0" if leaky else "h0"
    state = x0 if leaky else h0
    if state is None:  # the reference's and torch's words exactly
        raise MRNNConfigError(
            "x0: the leaky model needs an initial pre-activation [B, H], got None" if leaky
            else "h0: the Elman model needs an initial state [B, H], got None")
    if key is not None and (eps_x is not None or eps_u is not None):
        raise MRNNConfigError(
            "key: noise is drawn from key or given as eps_x / eps_u, not both; "
            "got key together with explicit eps arrays")
    inp, state, stim_input, W_rec, eps_x, eps_u = call_inputs(
        params, inp=inp, **{state_name: state}, stim_input=stim_input, W_rec=W_rec,
        eps_x=eps_x, eps_u=eps_u).values()
    h0 = call_inputs(params, h0=h0)["h0"] if leaky else state
    call = check_call_shapes(hidden_size=H, input_size=I, batch_first=dynamics.batch_first,
                             inp=_shape(inp), state=_shape(state), state_name=state_name,
                             h0=_shape(h0) if leaky else None, stim_input=_shape(stim_input),
                             W_rec=_shape(W_rec), eps_x=_shape(eps_x), eps_u=_shape(eps_u))
    plan = choose_plan(recurrence, params["W_rec_mask"], H, W_rec is not None)
    if call.steps == 0:
        return _empty_outputs(model_dtype(params["W_rec"]), call, dynamics.batch_first, H,
                              leaky)
    used = {n: params[n] for n in _USED}
    alpha, used["tau"] = _alpha(params, dynamics)
    used["log_tau"] = params.get("log_tau")  # (only its presence counts: the noise rule)
    batch = int(jnp.shape(state)[0]) if len(jnp.shape(state)) == 2 else 1
    # Dense steps take the recurrence with the hand-written reverse pass (scalar
    # or per-unit alpha); "scan" asks for the plain lax.scan (forward-mode
    # differentiable: jvp, jacfwd, hessian).
    fast = plan is None and recurrence != "scan"
    return _scan(used, inp, state, h0 if leaky else None, stim_input, W_rec,
                 eps_x, eps_u, key, dynamics=dynamics, plan=plan,
                 alpha=alpha, fast=fast,
                 input_term=_input_term_mode(batch, H, I, fast),
                 reverse_gemm=(batch * call.steps * H <= _recurrence._GEMM_MAX_ELEMENTS
                               or H * H > _recurrence._ACCUMULATE_MAX_WEIGHTS))


def _input_term_mode(batch: int, H: int, I: int, fast: bool) -> str:
    """How ``W_inp_eff u_t + b`` enters: ``"drive"`` (one [T, B, H] array before the
    loop), ``"matmul"`` (a small matmul inside each step) or ``"fma"`` (a few
    multiply-adds fused into the step's update; the fast dense path only,
    ``I <= _INPUT_FMA_MAX``)."""
    if fast and I <= _recurrence._INPUT_FMA_MAX:
        return "fma"
    return "matmul" if batch * H >= _INPUT_IN_STEP_MIN else "drive"


@partial(jax.jit, static_argnames=("dynamics", "plan", "input_term", "reverse_gemm", "alpha",
                                   "fast"))
def _scan(params, inp, state, h0, stim_input, W_rec, eps_x, eps_u, key, *, dynamics, plan,
          input_term, reverse_gemm, alpha, fast):
    """The compiled part of :func:`simulate`: checked arrays in, outputs in the call layout.

    ``alpha`` is the static scalar, or None when ``params["tau"]`` ``[H]`` gives
    a per-unit one. ``fast``: the dense recurrence with the hand-written
    reverse pass (scalar or per-unit alpha); otherwise a plain ``lax.scan``
    (dense or block-sparse by ``plan``)."""
    leaky = dynamics.kind == "leaky"
    batched = (inp if inp is not None else stim_input).ndim == 3
    tm = partial(_time_major, batch_first=dynamics.batch_first, batched=batched)
    W_rec_eff, W_inp_eff = effective_weights(params, dynamics)
    if W_rec is not None:
        W_rec_eff = W_rec
    H, I = W_inp_eff.shape
    T, B = tm(inp if inp is not None else stim_input).shape[:2]
    dtype = jnp.result_type(W_inp_eff, params["base_firing"])
    u = tm(inp) if inp is not None else None
    eps_x, eps_u = tm(eps_x), tm(eps_u)
    if key is not None:
        key_x, key_u = jax.random.split(key)
        eps_x = jax.random.normal(key_x, (T, B, H), dtype)
        eps_u = jax.random.normal(key_u, (T, B, I), dtype)
    if params["tau"] is not None:
        alpha = dynamics.dt / params["tau"]
    c_u = input_noise_constant(params, dynamics, alpha)
    c_x = dynamics.hid_noise_vector(alpha)
    bias = params["base_firing"]
    if input_term == "drive":
        # Small state: one [T, B, H] drive array is cheap, another matmul per step is not.
        if u is None:
            u = jnp.zeros((T, B, I), dtype)
        extra = drive(dynamics, W_inp_eff, bias, u, tm(stim_input), eps_x, eps_u, c_x, c_u)
        u, bias = None, None
    else:
        if eps_u is not None:
            u = (u if u is not None else 0.0) + c_u * eps_u
        if I == 0:
            u = None
        # The drive's terms other than W_inp_eff u_t + b, summed once (or None).
        extra = None if eps_x is None else c_x * eps_x
        if stim_input is not None:
            extra = tm(stim_input) if extra is None else extra + tm(stim_input)

    x = jnp.reshape(state, (B, H))
    if not leaky:
        h = x
    elif h0 is None:
        h = get_activation(dynamics.activation)(x)
    else:
        h = jnp.reshape(h0, (B, H))

    # The leak is folded into the weights and the drive once, outside the loop:
    # x' = (1 - alpha) x + (alpha W_rec_eff) h + alpha drive_t is the update of
    # SEMANTICS.md regrouped. For a large state the input term W_inp_eff u_t + b is
    # computed inside the step (I << H), so no [T, B, H] drive array is written
    # and read back: the forward pass is bound by memory traffic there. A
    # per-unit alpha scales the rows (each unit's own equation), hence alpha[:, None].
    f = get_activation(dynamics.activation)
    rows = alpha if jnp.ndim(alpha) == 0 else alpha[:, None]
    W_scaled = rows * W_rec_eff if leaky else W_rec_eff
    W_inp_t = (rows * W_inp_eff).T if leaky else W_inp_eff.T
    if bias is not None and leaky:
        bias = alpha * bias
    if extra is not None and leaky:
        extra = alpha * extra
    if fast:
        # Dense: the scan with a hand-written reverse pass, writing its outputs
        # in the call layout directly (see _recurrence). W_rec_eff is transposed
        # once here, so each step is a plain [B, H] x [H, H] matmul.
        batch_major = batched and dynamics.batch_first
        per_unit = leaky and jnp.ndim(alpha) != 0
        leak = None if not leaky else ("per unit" if per_unit else 1.0 - alpha)
        cfg = (leak, dynamics.activation, batch_major, T, reverse_gemm, input_term == "fma")
        out = _recurrence.recurrence(cfg, W_scaled.T, None if u is None else W_inp_t, bias,
                                     x if leaky else None, h, u, extra,
                                     1.0 - alpha if per_unit else None)
        if batched:
            return out
        return jax.tree.map(lambda a: a[:, 0, :], out)
    if plan is None:
        W_t = W_scaled.T  # transposed once: each step is a plain [B, H] x [H, H] matmul

        def rec(h):
            return jnp.matmul(h, W_t, precision=_PRECISION)
    else:
        rec = partial(recurrent_input, plan, split_weights(plan, W_scaled))

    def body(carry, xs):
        x, h = carry
        u_t, extra_t = xs
        pre = rec(h) if bias is None else rec(h) + bias
        if u_t is not None:
            pre = pre + jnp.matmul(u_t, W_inp_t, precision=_PRECISION)
        if extra_t is not None:
            pre = pre + extra_t
        x, h = advance(1.0 - alpha if leaky else None, x, pre, f)
        return (x, h), ((x, h) if leaky else h)

    _, out = jax.lax.scan(body, (x, h), (u, extra), length=T)
    return jax.tree.map(partial(_call_layout, batch_first=dynamics.batch_first,
                                batched=batched), out)

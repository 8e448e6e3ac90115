"""The dynamics of SEMANTICS.md section 4 as pure functions of tensors.

Nothing here holds state: ``params`` is a mapping of named tensors
(:data:`mrnn_core.PARAM_NAMES`) and ``dynamics`` a :class:`mrnn_core.Dynamics`.
The model classes call :func:`simulate`, so this file is the one place the
forward pass lives.

Cost of :func:`simulate` over ``T`` steps: the effective weights once, the
input drive of all steps in one matmul, then per step one ``addmm`` and
elementwise work. States are collected in a list and stacked once; the drive
is split with ``unbind`` (one backward node), never indexed per step, since
each per-step slice or slice write would make backward copy a whole
``[T, B, H]`` tensor per step, i.e. cost growing as ``T**2``.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Mapping

import torch

from mrnn_core import (
    Dynamics,
    MRNNConfigError,
    check_call_shapes,
    activations,
    check_input_dtype,
    effective_weight,
    input_noise_constant,
    numpy_input,
    uniform_alpha,
)
from mrnn_core.regions import layout
from mrnn_core.regions import projection as projection
from mrnn_core.regions import region_activity as region_activity
from mrnn_core.regions import region_indices as region_indices
from mrnn_core.regions import weight_subset as weight_subset

from ._blocks import RECURRENCE_MODES, choose_plan
from ._compat import is_functorch_wrapped, version_stamp
from ._compat import unsafe_view as _unsafe_view  # also imported by the ensemble recurrence
from ._fused import Recurrence


def get_activation(name: str):
    """The elementwise function ``f`` for activation ``name``.

    One of ``relu``, ``tanh``, ``sigmoid``, ``softplus`` (beta 1,
    ``log(1 + exp(x))``) and ``linear``; anything else raises
    :class:`mrnn_core.MRNNConfigError` listing these. The table is
    :mod:`mrnn_core.activations`, on torch tensors.
    """
    return activations.get_activation(name, "torch")


def effective_weights(params: Mapping, dynamics: Dynamics):
    """``(W_rec_eff [H, H], W_inp_eff [H, I])``, the matrices the dynamics use.

    Under Dale's law (``rec_constrained`` / ``inp_constrained``)
    ``W_eff = mask * |W| * sign``, otherwise ``W_eff = W * mask``.
    """
    W_rec = effective_weight(params["W_rec"], params["W_rec_mask"],
                             params["W_rec_sign_matrix"], dynamics.rec_constrained)
    W_inp = effective_weight(params["W_inp"], params["W_inp_mask"],
                             params["W_inp_sign_matrix"], dynamics.inp_constrained)
    return W_rec, W_inp


def _shape(a):
    return None if a is None else tuple(a.shape)


def call_input(name: str, a, dtype: torch.dtype, device: torch.device):
    """One forward-call argument as a tensor of the model's ``dtype`` on its ``device``.

    The input contract (:func:`mrnn_core.check_input_dtype`, the same in the
    JAX backend): tensors, numpy arrays and nested lists of real floating
    numbers are accepted; a lower precision is cast up, a higher one,
    integers, booleans, complex numbers and strings are refused, as is a
    tensor on another device (naming both). None stays None.
    """
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        if a.dtype == dtype and a.device == device:
            return a
        if a.device != device:
            raise MRNNConfigError(
                f"{name}: expected a tensor on {device} (where the model lives), got one on "
                f"{a.device}; move it with {name}.to({str(device)!r}) or the model with "
                f"model.to({str(a.device)!r})")
        check_input_dtype(name, a.dtype, dtype, fix=f"{name}.to({dtype})")
        return a.to(dtype)
    array, weak = numpy_input(name, a)
    check_input_dtype(name, array.dtype, dtype, weak=weak,
                      fix=f"{name}.astype(np.{str(dtype).rsplit('.', 1)[-1]})")
    return torch.tensor(array, dtype=dtype, device=device)


def call_inputs(params: Mapping, **arrays) -> dict:
    """:func:`call_input` for each named argument, against the dtype and device
    of ``params["W_rec"]``."""
    W = params["W_rec"]
    return {name: call_input(name, a, W.dtype, W.device) for name, a in arrays.items()}


def _time_major(a, batch_first: bool, batched: bool):
    """``[T, B, F]`` view of a call-layout tensor (None stays None)."""
    if a is None:
        return None
    if not batched:
        return a.unsqueeze(1)
    return a.transpose(0, 1) if batch_first else a


def _alpha(params: Mapping, dynamics: Dynamics):
    """alpha of the leaky update: a Python float, or an ``[H]`` tensor.

    ``dt / params["tau"]`` when params hold per-unit time constants, else
    ``dynamics.alpha``; Elman 1. Equal time constants that need no gradient
    give the float (:func:`mrnn_core.uniform_alpha`), so such a network runs
    the scalar code and matches a scalar-tau network bit for bit. A tau that
    requires grad (learned) always stays a tensor. Reading a new tensor's
    values synchronises with its device; models pass ``tau`` only when some
    region sets its own.
    """
    if dynamics.kind != "leaky":
        return 1.0
    tau = params.get("tau") if hasattr(params, "get") else None
    if tau is None:
        return dynamics.alpha
    if not isinstance(tau, torch.Tensor):
        tau = torch.as_tensor(tau, dtype=params["W_rec"].dtype, device=params["W_rec"].device)
    H = params["W_rec"].shape[0]
    if tuple(tau.shape) != (H,):
        raise MRNNConfigError(
            f"params['tau']: expected one time constant per unit, shape ({H},), "
            f"got shape {tuple(tau.shape)}")
    if not tau.requires_grad and not _under_transform(tau):
        a = _uniform_alpha(tau, dynamics)
        if a is not None:
            return a
    return dynamics.dt / tau


_UNIFORM: dict[int, tuple] = {}


def _uniform_alpha(tau, dynamics: Dynamics):
    """:func:`mrnn_core.uniform_alpha` of a tensor if it is a float, else None.

    Remembered per tensor while it is alive and unmodified (a model passes
    the same fixed ``tau`` tensor every call), so the device is read once.
    """
    key = id(tau)
    version = version_stamp(tau)
    stamp = None if version is None else (version, dynamics.dt, dynamics.kind)
    hit = _UNIFORM.get(key)
    if stamp is not None and hit is not None and hit[0]() is tau and hit[1] == stamp:
        return hit[2]
    a = uniform_alpha(tau.detach().to("cpu", torch.float64).numpy(), dynamics)
    a = a if isinstance(a, float) else None
    if stamp is not None:
        _UNIFORM[key] = (weakref.ref(tau, lambda _ref, key=key: _UNIFORM.pop(key, None)), stamp, a)
    return a


def _drive(W_inp_eff, b, dynamics: Dynamics, u, s, eps_x, eps_u, scale=1.0, c_x=None,
           c_u=None):
    """``scale`` times the ``[T, B, H]`` drive of every step, from time-major ``[T, B, .]`` tensors.

    ``scale`` and ``c_x`` (default ``dynamics.hid_noise_const``) are floats or
    ``[H]`` tensors (per-unit alpha); ``c_u`` defaults to
    ``dynamics.inp_noise_const``. One fresh, contiguous tensor that is not
    a view (the fused recurrence overwrites it): a single ``addmm`` forms
    ``scale (u W^T + b)``, reshaped with ``_unsafe_view`` (``reshape`` would
    return a view of the 2-D result), and noise and stimulus are added into
    it in place, which autograd allows because ``addmm`` does not keep its
    output for backward.
    """
    c_x = dynamics.hid_noise_const if c_x is None else c_x
    vector = isinstance(scale, torch.Tensor)
    s0 = 1.0 if vector else scale
    if vector:
        # A per-unit scale goes into the small operands (the rows of W_inp, b,
        # c_x): no [T, B, H] product, and for a learned alpha no [T, B, H]
        # temporaries in its backward either.
        W_inp_eff, b, c_x = scale[:, None] * W_inp_eff, scale * b, scale * c_x
    if eps_u is not None:
        c_u = dynamics.inp_noise_const if c_u is None else c_u
        u = u + c_u * eps_u if isinstance(c_u, torch.Tensor) else torch.add(u, eps_u, alpha=c_u)
    H, I = W_inp_eff.shape
    rows = math.prod(u.shape[:-1])  # not -1: I may be 0
    drive = torch.addmm(b, u.reshape(rows, I), W_inp_eff.T, beta=s0, alpha=s0)
    drive = _unsafe_view(drive, (*u.shape[:-1], H))
    if eps_x is not None:
        if isinstance(c_x, torch.Tensor):
            drive.addcmul_(eps_x, c_x)
        else:
            drive.add_(eps_x, alpha=s0 * c_x)
    if s is not None:
        if vector:
            drive.addcmul_(s, scale)
        else:
            drive.add_(s, alpha=s0)
    return drive


def input_drive(params: Mapping, dynamics: Dynamics, inp, *, stim_input=None,
                eps_x=None, eps_u=None):
    """Everything a step adds besides the recurrent term, for all steps at once.

    ``drive_t = W_inp_eff (u_t + c_u eps_u_t) + b + c_x eps_x_t + s_t`` with
    ``c_x = dynamics.hid_noise_vector(alpha)`` (``dynamics.hid_noise_const``
    unless ``params["tau"]`` makes alpha per unit; then ``c_x`` is ``[H]``),
    ``c_u = mrnn_core.input_noise_constant(params, dynamics, alpha)`` and ``b = params["base_firing"]``.

    **Arguments:** ``inp`` ``[B, T, I]`` if ``dynamics.batch_first`` else
    ``[T, B, I]`` (``None`` for zero input when ``stim_input`` gives ``T``);
    ``stim_input`` and ``eps_x`` in the same layout with feature size ``H``;
    ``eps_u`` like ``inp``. Unbatched ``[T, .]`` inputs count as ``B = 1``.

    **Returns:** the drive, time-major ``[T, B, H]``.
    """
    H, I = params["W_inp"].shape
    inp, stim_input, eps_x, eps_u = call_inputs(
        params, inp=inp, stim_input=stim_input, eps_x=eps_x, eps_u=eps_u).values()
    call = check_call_shapes(hidden_size=H, input_size=I, batch_first=dynamics.batch_first,
                             inp=_shape(inp), stim_input=_shape(stim_input),
                             eps_x=_shape(eps_x), eps_u=_shape(eps_u))
    _, W_inp_eff = effective_weights(params, dynamics)
    return _drive_for_call(params, dynamics, W_inp_eff, call, inp, stim_input, eps_x, eps_u,
                           _alpha(params, dynamics))


def _drive_for_call(params, dynamics, W_inp_eff, call, inp, stim_input, eps_x, eps_u, alpha):
    tm = functools.partial(_time_major, batch_first=dynamics.batch_first, batched=call.batched)
    u = tm(inp)
    if u is None:
        u = W_inp_eff.new_zeros(call.steps, call.batch, W_inp_eff.shape[1])
    c_x = dynamics.hid_noise_vector(alpha)
    return _drive(W_inp_eff, params["base_firing"], dynamics, u, tm(stim_input),
                  tm(eps_x), tm(eps_u), c_x=c_x, c_u=input_noise_constant(params, dynamics, alpha))


def _step(f, alpha, leaky: bool, W_rec_T, state, drive_t):
    x, h = state
    z = torch.addmm(drive_t, h, W_rec_T)
    x = torch.lerp(x, z, alpha) if leaky else z
    return x, f(x)


def step(dynamics: Dynamics, W_rec_eff, state, drive_t, *, tau=None):
    """One update of ``state = (x, h)``, each ``[B, H]`` (or ``[H]``; Elman reads only ``h``).

    Leaky: ``x' = x + alpha * (-x + W_rec_eff h + drive_t)``; Elman:
    ``x' = W_rec_eff h + drive_t``; then ``h' = f(x')``. With ``drive_t``
    from :func:`input_drive` this is SEMANTICS.md's update (the stimulus of
    the leaky model enters as ``alpha * s_t``). ``alpha = dt / tau``
    elementwise when ``tau`` ``[H]`` (``params["tau"]``) is given, else
    ``dynamics.alpha``. ``x``, ``h`` and ``drive_t`` follow the input
    contract of :func:`simulate`, against ``W_rec_eff``'s dtype and device.

    **Returns:** ``(x', h')``.
    """
    f = get_activation(dynamics.activation)
    x, h = state
    x, h, drive_t = (call_input(name, a, W_rec_eff.dtype, W_rec_eff.device)
                     for name, a in (("x", x), ("h", h), ("drive_t", drive_t)))
    alpha = dynamics.alpha
    if tau is not None:
        alpha = _alpha({"tau": tau, "W_rec": W_rec_eff}, dynamics)
    unbatched = h.dim() == 1
    if unbatched:  # Elman ignores x, so it may be None there
        x = None if x is None else x.unsqueeze(0)
        h, drive_t = h.unsqueeze(0), drive_t.unsqueeze(0)
    x, h = _step(f, alpha, dynamics.kind == "leaky", W_rec_eff.T, (x, h), drive_t)
    return (x[0], h[0]) if unbatched else (x, h)


def _stack(states, call, batch_first: bool, like):
    """The ``T`` states ``[B, H]`` as one tensor in the output layout."""
    H = like.shape[-1]
    if states:
        out = torch.stack(states, dim=1 if batch_first else 0)
    else:
        out = like.new_zeros((call.batch, 0, H) if batch_first else (0, call.batch, H))
    if not call.batched:
        out = out[0] if batch_first else out[:, 0]
    return out


def simulate(params: Mapping, dynamics: Dynamics, inp, x0=None, h0=None, *,
             stim_input=None, W_rec=None, eps_x=None, eps_u=None, recurrence: str = "auto"):
    """Run the network over ``T`` steps (SEMANTICS.md section 4).

    **Arguments:**

    - `params`: named tensors ``W_rec`` ``[H, H]``, ``W_inp`` ``[H, I]``, their
      ``*_mask`` and ``*_sign_matrix``, ``base_firing`` ``[H]`` and optionally
      ``tau`` ``[H]`` (per-unit time constants: ``alpha = dt / tau``
      elementwise and the hidden noise constant per unit; equal entries give
      exactly the scalar results; without it ``dynamics.alpha``). A
      ``log_tau`` entry marks them as learned, which sets the input-noise
      constant to ``dynamics.inp_noise_const``
      (:func:`mrnn_core.input_noise_constant`).
    - `dynamics`: a :class:`mrnn_core.Dynamics`; ``kind`` picks the update.
    - `inp`: ``[B, T, I]`` if ``batch_first`` else ``[T, B, I]``, or ``[T, I]``
      unbatched; ``None`` means zero input (needs ``stim_input`` for ``T``).
    - `x0`: leaky only, the initial pre-activation ``[B, H]`` (``[H]``).
    - `h0`: the initial rate ``[B, H]``; leaky default ``f(x0)``; Elman requires it.
    - `stim_input`: additive stimulus ``s``, output layout, feature size ``H``.
    - `W_rec`: an ``[H, H]`` matrix used as ``W_rec_eff`` for this call.
    - `eps_x`, `eps_u`: standard-normal draws (output / input layout); when
      given, noise ``c_x eps_x`` / ``c_u eps_u`` is added.
    - `recurrence`: how the steps run; every choice gives the same numbers.
      ``"auto"`` (default) picks ``"blocks"`` when the mask leaves most of
      ``W_rec`` empty (see ``mrnn_torch._blocks``), else ``"dense"``;
      ``"dense"`` / ``"blocks"`` run the recurrence as one autograd node with
      a hand-written backward through time (``mrnn_torch._fused``), ``"blocks"``
      multiplying only the mask's nonzero blocks (not with ``W_rec=``);
      ``"autograd"`` is a plain per-step loop that autograd records, needed for
      double backward (``create_graph=True``). Under ``torch.func`` transforms
      ``"auto"`` uses the plain loop by itself. A ``params["tau"]`` that
      requires grad (a learned time constant) is differentiated by every mode.

    Leaky: ``x_{t+1} = x_t + alpha (-x_t + W_rec_eff h_t + W_inp_eff (u_t + c_u eps_u)
    + b + c_x eps_x) + alpha s_t`` (``alpha``, ``c_x`` scalars or ``[H]``); Elman:
    ``x_{t+1} = W_rec_eff h_t + W_inp_eff (u_t + c_u eps_u) + b + c_x eps_x + s_t``; ``h_{t+1} = f(x_{t+1})``.

    Array arguments may be tensors, numpy arrays or nested lists of real
    floating numbers; they are cast to ``params["W_rec"]``'s dtype when that
    loses nothing and refused otherwise (:func:`call_input`). ``T = 0`` gives
    empty outputs.

    **Returns:** ``(xs, hs)`` for leaky, ``hs`` for Elman: the ``T`` states
    after each update, in the output layout (``[B, T, H]`` if ``batch_first``).
    """
    leaky = dynamics.kind == "leaky"
    state = x0 if leaky else h0
    if state is None:
        raise MRNNConfigError(
            "x0: the leaky model needs an initial pre-activation [B, H], got None" if leaky
            else "h0: the Elman model needs an initial state [B, H], got None")
    H, I = params["W_inp"].shape
    inp, state, stim_input, W_rec, eps_x, eps_u = call_inputs(
        params, inp=inp, **{"x0" if leaky else "h0": state}, stim_input=stim_input,
        W_rec=W_rec, eps_x=eps_x, eps_u=eps_u).values()
    h0 = call_inputs(params, h0=h0)["h0"] if leaky else state
    call = check_call_shapes(hidden_size=H, input_size=I, batch_first=dynamics.batch_first,
                             inp=_shape(inp), state=_shape(state),
                             state_name="x0" if leaky else "h0",
                             h0=_shape(h0) if leaky else None, stim_input=_shape(stim_input),
                             W_rec=_shape(W_rec), eps_x=_shape(eps_x), eps_u=_shape(eps_u))
    if recurrence not in RECURRENCE_MODES:
        raise MRNNConfigError(
            f"recurrence: expected one of {', '.join(map(repr, RECURRENCE_MODES))}, "
            f"got {recurrence!r}")
    f = get_activation(dynamics.activation)
    override = W_rec is not None
    if W_rec is None:
        W_rec, W_inp_eff = effective_weights(params, dynamics)
    else:
        W_inp_eff = effective_weight(params["W_inp"], params["W_inp_mask"],
                                     params["W_inp_sign_matrix"], dynamics.inp_constrained)
    alpha = _alpha(params, dynamics)
    if (recurrence != "autograd" and call.steps > 0
            and not _under_transform(W_rec, W_inp_eff, state, h0, inp, stim_input, eps_x, eps_u)):
        plan = choose_plan(recurrence, params["W_rec_mask"], H, override)
        return _simulate_fused(params, dynamics, W_rec, W_inp_eff, call, plan, f, inp, state,
                               h0, stim_input, eps_x, eps_u, alpha)
    drive = _drive_for_call(params, dynamics, W_inp_eff, call, inp, stim_input, eps_x, eps_u,
                            alpha)

    x = state if call.batched else state.unsqueeze(0)
    if not leaky:
        h = x
    elif h0 is None:
        h = f(x)
    else:
        h = h0 if call.batched else h0.unsqueeze(0)
    W_rec_T = W_rec.T
    xs, hs = [], []
    for drive_t in drive.unbind(0):
        x, h = _step(f, alpha, leaky, W_rec_T, (x, h), drive_t)
        if leaky:
            xs.append(x)
        hs.append(h)
    hs = _stack(hs, call, dynamics.batch_first, drive)
    return (_stack(xs, call, dynamics.batch_first, drive), hs) if leaky else hs


def _under_transform(*tensors) -> bool:
    """Whether any tensor is wrapped by a ``torch.func`` transform (grad, vmap, ...)."""
    return any(t is not None and is_functorch_wrapped(t) for t in tensors)


def _simulate_fused(params, dynamics, W_rec, W_inp_eff, call, plan, f, inp, state, h0,
                    stim_input, eps_x, eps_u, alpha):
    """:func:`simulate` through :class:`~._fused.Recurrence`, in the call's own layout.

    The drive keeps the caller's layout (``[B, T, H]`` when ``batch_first``),
    so neither it nor the outputs are ever transposed or copied. A per-unit
    ``alpha`` ``[H]`` is folded in once: the rows of ``W_rec`` and the drive
    are scaled by it, and the recurrence keeps ``(1 - alpha) x``.
    """
    leaky = dynamics.kind == "leaky"
    time_axis = 1 if (call.batched and dynamics.batch_first) else 0
    lift = (lambda a: a) if call.batched else (lambda a: None if a is None else a.unsqueeze(1))
    u = lift(inp)
    if u is None:
        shape = [call.batch, call.batch]
        shape[time_axis] = call.steps
        u = W_inp_eff.new_zeros(*shape, W_inp_eff.shape[1])
    # The recurrence takes alpha * drive (it is the first term of every x_t)
    # and uses that tensor as its output buffer, so it is formed only once.
    drive = _drive(W_inp_eff, params["base_firing"], dynamics, u, lift(stim_input),
                   lift(eps_x), lift(eps_u), scale=alpha, c_x=dynamics.hid_noise_vector(alpha),
                   c_u=input_noise_constant(params, dynamics, alpha))
    carry = None
    if isinstance(alpha, torch.Tensor):
        W_rec, carry, alpha = alpha[:, None] * W_rec, 1 - alpha, 1.0
    x = state if call.batched else state.unsqueeze(0)
    if not leaky:
        x, h = None, x
    elif h0 is None:
        h = f(x)
    else:
        h = h0 if call.batched else h0.unsqueeze(0)
    xs, hs = Recurrence.apply(W_rec, drive, x, h, alpha, dynamics.activation, time_axis, plan,
                              carry)
    if not call.batched:
        hs = hs[:, 0]
        xs = None if xs is None else xs[:, 0]
    return (xs, hs) if leaky else hs


# Region helpers: mrnn_core.regions (written once for every array library) ------
# region_indices, region_activity, projection and weight_subset are imported
# from there at the top of this module and re-exported by mrnn_torch.


def tonic_input(params: Mapping):
    """The baseline drive ``b`` ``[H]`` (``params["base_firing"]``)."""
    return params["base_firing"]


def initial_condition(connectivity):
    """The initial pre-activation ``[H]`` each region declares (``init``), as a
    tensor of torch's default dtype (a :class:`~mrnn_core.Connectivity` or a spec)."""
    return torch.as_tensor(layout(connectivity).init, dtype=torch.get_default_dtype())

"""The arithmetic of one network step, free of layout and validation.

Everything here is a pure function of arrays and a static
:class:`mrnn_core.Dynamics`; :mod:`._simulate` adds the call layouts, the
shape checks and the ``lax.scan`` loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import Dynamics, check_input_dtype, effective_weight, numpy_input
from mrnn_core.shapes import dtype_name

from ._activations import get_activation

# Full float32 precision on GPU/TPU too (JAX's default there multiplies in
# TF32/bfloat16 passes), so float32 runs agree with torch and the reference.
_PRECISION = jax.lax.Precision.HIGHEST


def call_input(name: str, a, dtype):
    """One forward-call argument as an array of the model's ``dtype``.

    The input contract (:func:`mrnn_core.check_input_dtype`, the same in the
    torch backend): JAX arrays (traced ones included), numpy arrays and
    nested lists of real floating numbers are accepted; a lower precision is
    cast up, a higher one, integers, booleans, complex numbers and strings
    are refused. A numpy array's dtype is read as JAX stores it: without
    ``jax_enable_x64`` JAX has no float64, so numpy float64 data become
    float32 (as ``jnp.asarray`` makes them). None stays None.
    """
    if a is None:
        return None
    if isinstance(a, jax.Array):
        if a.dtype == dtype:
            return a
        check_input_dtype(name, a.dtype, dtype, fix=f"{name}.astype(jnp.{dtype_name(dtype)})")
        return a.astype(dtype)
    array, weak = numpy_input(name, a)
    seen = jax.dtypes.canonicalize_dtype(array.dtype) if array.dtype.kind == "f" else array.dtype
    check_input_dtype(name, seen, dtype, weak=weak, fix=f"{name}.astype(np.{dtype_name(dtype)})")
    return jnp.asarray(array, dtype=dtype)


def model_dtype(W):
    """The dtype a model with weights ``W`` computes in (a numpy ``W`` as JAX
    stores it: float32 without ``jax_enable_x64``)."""
    if isinstance(W, jax.Array):
        return W.dtype
    return jax.dtypes.canonicalize_dtype(np.result_type(W))


def matmul_t(a, W):
    """``a @ W.T`` for a batch of row vectors ``a`` ``[..., n_src]`` and ``W`` ``[n_dst, n_src]``."""
    return jnp.matmul(a, W.T, precision=_PRECISION)


def _effective(params: Mapping, name: str, constrained: bool):
    # Masks and sign matrices are structure, never trained: no gradient reaches them.
    mask = jax.lax.stop_gradient(jnp.asarray(params[f"{name}_mask"]))
    sign = jax.lax.stop_gradient(jnp.asarray(params[f"{name}_sign_matrix"]))
    return effective_weight(jnp.asarray(params[name]), mask, sign, constrained)


def effective_weights(params: Mapping, dynamics: Dynamics):
    """The weights the dynamics use.

    ``W_eff = mask * |W| * sign`` under Dale's law (``dynamics.rec_constrained``
    / ``inp_constrained``), else ``W * mask``. Masks and sign matrices enter
    through ``jax.lax.stop_gradient``.

    **Arguments:**

    - `params`: a mapping with ``W_rec``, ``W_rec_mask``, ``W_rec_sign_matrix``
      (``[H, H]``) and ``W_inp``, ``W_inp_mask``, ``W_inp_sign_matrix`` (``[H, I]``).
    - `dynamics`: the static settings.

    **Returns:** ``(W_rec_eff [H, H], W_inp_eff [H, I])``.
    """
    return (_effective(params, "W_rec", dynamics.rec_constrained),
            _effective(params, "W_inp", dynamics.inp_constrained))


def drive(dynamics: Dynamics, W_inp_eff, base_firing, u, stim_input=None,
          eps_x=None, eps_u=None, c_x=None, c_u=None):
    """``W_inp_eff (u + c_u eps_u) + b + c_x eps_x + s`` for any leading axes.

    ``u``, ``eps_u`` are ``[..., I]``; ``stim_input``, ``eps_x`` and the result
    ``[..., H]``; ``c_u`` a float (default ``dynamics.inp_noise_const``), ``c_x`` a float or
    ``[H]`` (per-unit alpha; default ``dynamics.hid_noise_const``). Absent
    terms (None) are left out.
    """
    if eps_u is not None:
        u = u + (dynamics.inp_noise_const if c_u is None else c_u) * eps_u
    out = matmul_t(u, W_inp_eff) + base_firing
    if eps_x is not None:
        out = out + (dynamics.hid_noise_const if c_x is None else c_x) * eps_x
    if stim_input is not None:
        out = out + stim_input
    return out


def advance(leak, x, pre, f):
    """The update every loop of this backend ends a step with (:func:`step` and the
    plain ``lax.scan`` of :mod:`._simulate`): ``x' = leak x + pre`` (leaky, with
    ``leak = 1 - alpha`` and ``pre = alpha (W_rec_eff h + drive_t)``, however the
    caller folded alpha in) or ``x' = pre`` (Elman: ``leak`` None); ``h' = f(x')``."""
    x = pre if leak is None else leak * x + pre
    return x, f(x)


def step(dynamics: Dynamics, W_rec_eff, state, drive_t, *, tau=None):
    """One update of the state ``(x, h)``.

    leaky: ``x' = x + alpha * (-x + W_rec_eff h + drive_t)``;
    Elman: ``x' = W_rec_eff h + drive_t``; then ``h' = f(x')``.

    **Arguments:**

    - `dynamics`: picks the update (``kind``), ``alpha`` and ``f``.
    - `W_rec_eff`: ``[H, H]`` effective recurrent weights.
    - `state`: ``(x, h)``, each ``[B, H]`` (or ``[H]``).
    - `drive_t`: ``[B, H]`` (or ``[H]``), one step of :func:`input_drive`.
    - `tau`: per-unit time constants ``[H]`` (``params["tau"]``): then
      ``alpha = dt / tau`` elementwise (leaky); default ``dynamics.alpha``.

    ``x``, ``h`` and ``drive_t`` follow the input contract of :func:`simulate`
    against ``W_rec_eff``'s dtype.

    **Returns:** the new ``(x, h)``.
    """
    x, h = state
    dtype = model_dtype(W_rec_eff)
    x, h, drive_t = (call_input(name, a, dtype) for name, a in (("x", x), ("h", h),
                                                                 ("drive_t", drive_t)))
    f = get_activation(dynamics.activation)
    if dynamics.kind != "leaky":
        return advance(None, x, matmul_t(h, W_rec_eff) + drive_t, f)
    alpha = dynamics.alpha if tau is None else dynamics.dt / tau
    return advance(1.0 - alpha, x, alpha * (matmul_t(h, W_rec_eff) + drive_t), f)

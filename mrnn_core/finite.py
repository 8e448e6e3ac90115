"""Find where a forward call's states first became inf or NaN.

Framework-free: the states arrive as anything ``numpy.asarray`` reads (a
backend converts its tensors first), after the call, so a forward pass that
does not ask for the check pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MRNNConfigError, NonFiniteStateError


@dataclass(frozen=True)
class NonFinite:
    """Where states first went non-finite.

    ``step`` indexes the call's time axis (``0`` is the state after the first
    update), ``trial`` the batch axis (0 for unbatched states), ``unit`` the
    hidden vector ``[0, H)``; ``region`` is the recurrent region owning that
    unit (None without a spec) and ``index_in_region`` its position there;
    ``value`` is the inf or NaN found.
    """

    step: int
    trial: int
    unit: int
    value: float
    region: str | None = None
    index_in_region: int | None = None


def _as_numpy(states) -> np.ndarray:
    """numpy values of a numpy, JAX or torch array (a torch tensor that
    requires grad or lives on a GPU is detached and copied to the CPU first)."""
    if hasattr(states, "detach"):
        states = states.detach()
    if hasattr(states, "cpu"):
        states = states.cpu()
    try:
        return np.asarray(states)
    except TypeError:  # a dtype numpy lacks (torch bfloat16): float32 keeps inf and NaN
        return np.asarray(states.float())


def first_nonfinite(states, spec=None, *, batch_first: bool = True) -> NonFinite | None:
    """The first non-finite entry of ``states``, or None when all are finite.

    **Arguments:** ``states`` ``[B, T, H]`` if ``batch_first`` else ``[T, B, H]``,
    or ``[T, H]`` unbatched (``xs`` or ``hs`` as a forward call returns them:
    numpy, JAX or torch arrays, copied to the CPU); ``spec`` a
    :class:`mrnn_core.NetworkSpec` (optional) to name the region.

    "First" is the earliest step; within it the lowest unit, then trial.

    **Returns:** a :class:`NonFinite`, or None.
    """
    a = _as_numpy(states)
    if a.ndim not in (2, 3):
        raise MRNNConfigError(
            f"states: expected [B, T, H], [T, B, H] or [T, H] states, got shape {a.shape}")
    if a.dtype.kind not in "fc":
        return None  # integers cannot hold inf or NaN
    tbh = a[:, None, :] if a.ndim == 2 else (np.swapaxes(a, 0, 1) if batch_first else a)
    bad = ~np.isfinite(tbh)
    steps = np.flatnonzero(bad.any(axis=(1, 2)))
    if steps.size == 0:
        return None
    t = int(steps[0])
    units = np.flatnonzero(bad[t].any(axis=0))
    unit = int(units[0])
    trial = int(np.flatnonzero(bad[t][:, unit])[0])
    region = index = None
    if spec is not None:
        start = 0
        for r in spec.recurrent_regions:
            if unit < start + r.num_units:
                region, index = r.name, unit - start
                break
            start += r.num_units
    return NonFinite(step=t, trial=trial, unit=unit, value=float(np.real(tbh[t, trial, unit])),
                     region=region, index_in_region=index)


def check_finite(states, spec=None, *, batch_first: bool = True, name: str = "states") -> None:
    """Raise :class:`NonFiniteStateError` if ``states`` hold inf or NaN.

    Arguments as :func:`first_nonfinite`; ``name`` names the states in the
    message (``xs``, ``hs``). Usable on the outputs of a jitted or compiled
    call: it runs on the returned arrays, outside any trace.
    """
    a = _as_numpy(states)
    where = first_nonfinite(a, spec, batch_first=batch_first)
    if where is None:
        return
    T = a.shape[0] if a.ndim == 2 or not batch_first else a.shape[1]
    region = ("" if where.region is None
              else f" (region {where.region!r}, its unit {where.index_in_region})")
    trial = "" if a.ndim == 2 else f", trial {where.trial}"
    raise NonFiniteStateError(
        f"{name}: the state became non-finite ({where.value}) at step {where.step} of {T} "
        f"(the state after update {where.step + 1}), unit {where.unit}{region}{trial}; "
        f"expected finite states. Common causes: dt / tau near or above 1, weights with a "
        f"spectral radius far above 1 under a non-saturating activation, or inf/NaN inputs"
    )

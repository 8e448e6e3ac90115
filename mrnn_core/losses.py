"""Losses and regularisers, written once for numpy, torch and JAX arrays.

Every function is small and pure, a method of :class:`Losses`; this module
binds them to numpy (float64), :mod:`mrnn_torch.losses` and
:mod:`mrnn_jax.losses` bind the same code to their arrays, so the three have
the same names, signatures and values (float64, 1e-12). The layout and
shape checks below (``check_*``, ``*_indices``) take shapes and a
:class:`NetworkSpec` only: which rows and columns a region or parent owns
is computed here, once, in numpy.

Penalties act on whatever array is passed. The usual choice is the
*effective* weights the dynamics use (``mask * |W| * sign`` under Dale's
law; ``effective_weights(params, dynamics)`` in either backend, or a JAX
model's ``.effective_weights()``): then a masked-out entry costs nothing and
the raw sign of a Dale weight does not matter.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from ._arrays import adapter
from .connectivity import _offsets
from .errors import MRNNConfigError, closest, known
from .spec import NetworkSpec

KINDS = ("l2", "l1")
"""Weight penalties: ``"l2"`` (``sum W^2``) and ``"l1"`` (``sum |W|``)."""

SIDES = ("recurrent", "input")
"""Which matrix a projection lives in: ``W_rec`` ``[H, H]`` or ``W_inp`` ``[H, I]``."""


# checks and layout (shapes and specs only; shared by every backend) ----------

def check_spec(spec) -> NetworkSpec:
    """``spec`` itself, or the ``.spec`` of a Connectivity, Checkpoint or JAX model."""
    found = spec if isinstance(spec, NetworkSpec) else getattr(spec, "spec", None)
    if not isinstance(found, NetworkSpec):
        raise MRNNConfigError(
            f"spec: expected a mrnn_core.NetworkSpec (or an object with a .spec, "
            f"such as a Connectivity or a Checkpoint), got {type(spec).__name__}")
    return found


def check_kind(kind) -> str:
    if kind not in KINDS:
        raise MRNNConfigError(
            f"kind: expected one of {', '.join(map(repr, KINDS))}, got {kind!r}"
            + closest(str(kind), KINDS))
    return kind


def check_matrix(shape, name: str = "W") -> None:
    """A weight penalty takes a 2-D matrix ``[rows, cols]``."""
    if len(shape) != 2:
        raise MRNNConfigError(
            f"{name}: expected a 2-D weight matrix [rows, cols], got {len(shape)}-D shape {tuple(shape)}")


def check_mse_shapes(outputs, targets, mask=None):
    """Check :func:`mse`'s shapes; return the shape to reshape ``mask`` to (or None).

    ``targets`` must equal ``outputs``. ``mask``'s axes line up with the
    LEADING axes of ``outputs``, each equal or 1; trailing axes of length 1
    are added, so ``[B, T]`` weighs every output of a step of ``[B, T, O]``.
    """
    outputs, targets = tuple(outputs), tuple(targets)
    if targets != outputs:
        raise MRNNConfigError(f"targets: expected the shape of outputs {outputs}, got {targets}")
    if mask is None:
        return None
    mask = tuple(mask)
    lined_up = len(mask) <= len(outputs) and all(
        m in (1, o) for m, o in zip(mask, outputs))
    if not lined_up:
        raise MRNNConfigError(
            f"mask: expected a shape matching the leading axes of outputs {outputs} "
            f"(each axis equal or 1; e.g. [B, T] for a per-step mask of [B, T, O]), got {mask}")
    return mask + (1,) * (len(outputs) - len(mask))


def check_rates(shape, spec: NetworkSpec | None = None, name: str = "hs") -> None:
    """Rates are ``[..., H]``: at least 1-D, and ``H`` units when a spec is given."""
    shape = tuple(shape)
    if not shape:
        raise MRNNConfigError(f"{name}: expected rates [..., H] with at least one axis, got a scalar")
    if spec is not None and shape[-1] != spec.hidden_size:
        raise MRNNConfigError(
            f"{name}: expected rates [..., H] with H = {spec.hidden_size} units in the last axis, "
            f"got shape {shape}")


def population_axis(shape, axis) -> int:
    """``axis`` (the units) as a non-negative index into ``shape``."""
    ndim = len(tuple(shape))
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise MRNNConfigError(
            f"axis: expected an integer in [{-ndim}, {ndim - 1}] for rates of shape "
            f"{tuple(shape)}, got {axis!r}")
    return int(axis) % ndim


def _names(regions, what: str) -> tuple[str, ...]:
    names = (regions,) if isinstance(regions, str) else tuple(regions)
    if not names or not all(isinstance(n, str) for n in names):
        raise MRNNConfigError(
            f"{what}: expected a region or parent name or a non-empty sequence of them, "
            f"got {regions!r}")
    return names


def unit_indices(spec, regions) -> np.ndarray:
    """Hidden-vector indices of the units of ``regions`` (names, parents expanded),
    ascending (network order), each once."""
    return _units(check_spec(spec), _names(regions, "regions"), "regions")


def _units(spec: NetworkSpec, names: tuple, what: str) -> np.ndarray:
    try:
        chosen = spec.expand(*names)
    except MRNNConfigError as e:
        raise MRNNConfigError(f"{what}: {e}") from None
    offsets = _offsets(spec.recurrent_regions)
    parts = [np.arange(*offsets[n]) for n in spec.recurrent_names if n in chosen]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


def region_groups(spec, regions=None) -> dict[str, np.ndarray]:
    """Name -> :func:`unit_indices` of that name alone; every recurrent region by default."""
    spec = check_spec(spec)
    names = spec.recurrent_names if regions is None else _names(regions, "regions")
    return {n: unit_indices(spec, n) for n in names}


def projection_indices(spec, src: str, dst: str, side: str = "recurrent",
                       shape=None) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: the block of the projection ``src -> dst``, network order.

    Rows are the units of ``dst`` (a recurrent region or parent); columns the
    units of ``src``: a recurrent region or parent for ``side="recurrent"``
    (``W`` ``[H, H]``), an input region for ``side="input"`` (``W`` ``[H, I]``).
    ``shape``, when given, is checked against that matrix.
    """
    spec = check_spec(spec)
    if side not in SIDES:
        raise MRNNConfigError(
            f"side: expected one of {', '.join(map(repr, SIDES))}, got {side!r}"
            + closest(str(side), SIDES))
    H = spec.hidden_size
    if side == "input":
        inputs = spec.input_names
        if src not in inputs:
            hint = " (a recurrent region or parent; use side='recurrent')" if (
                src in spec.recurrent_names or src in spec.parents) else ""
            raise MRNNConfigError(
                f"src: expected an input region for side='input', got {src!r}{hint}; "
                f"{known('input regions', inputs)}" + closest(str(src), inputs))
        cols = np.arange(*_offsets(spec.input_regions)[src])
        n_cols, layout = spec.input_size, "[H, I]"
    else:
        if src in spec.input_names:
            raise MRNNConfigError(
                f"src: {src!r} is an input region; expected a recurrent region or parent "
                f"for side='recurrent' (use side='input' with W_inp [H, I])")
        cols = _side_units(spec, src, "src")
        n_cols, layout = H, "[H, H]"
    rows = _side_units(spec, dst, "dst")
    if shape is not None:
        check_matrix(shape)
        if tuple(shape) != (H, n_cols):
            raise MRNNConfigError(
                f"W: expected the {side} matrix {layout} = {(H, n_cols)}, got {tuple(shape)}")
    return rows, cols


def _side_units(spec: NetworkSpec, name, what: str) -> np.ndarray:
    if not isinstance(name, str):
        raise MRNNConfigError(f"{what}: expected a region or parent name, got {name!r}")
    return _units(spec, (name,), what)


def rate_l2_units(shape, spec, regions, per_region):
    """None (all units), one index array, or name -> index array for :func:`rate_l2`."""
    if spec is None:
        if regions is not None or per_region:
            raise MRNNConfigError(
                "spec: expected a NetworkSpec to find the units of named regions "
                "(regions= or per_region=True), got None")
        check_rates(shape)
        return None
    spec = check_spec(spec)
    check_rates(shape, spec)
    if per_region:
        return region_groups(spec, regions)
    return None if regions is None else unit_indices(spec, regions)


def check_weights(weights, which):
    """The names of ``weights`` (a mapping of 2-D arrays) to penalise; all by default."""
    if not isinstance(weights, Mapping):
        raise MRNNConfigError(
            f"weights: expected a mapping of name -> 2-D weight matrix "
            f"(e.g. {{'W_rec': W_rec_eff, 'W_inp': W_inp_eff}}), got {type(weights).__name__}")
    names = tuple(weights) if which is None else _names(which, "which")
    for n in names:
        if n not in weights:
            raise MRNNConfigError(
                f"which: unknown weight {n!r}; {known('weights', weights)}" + closest(n, weights))
    return names


# the definitions (written once; every backend binds them to its arrays) ------

class Losses:
    """The loss functions below, bound to one array library (``library``).

    ``mrnn_core.losses`` binds them to numpy (float64); ``mrnn_torch.losses``
    and ``mrnn_jax.losses`` to torch tensors and JAX arrays: the same code,
    so the same numbers. Every check runs on shapes and specs, in numpy.
    """

    def __init__(self, library: str):
        self.library = library

    @property
    def _xp(self):
        return adapter(self.library)

    def mse(self, outputs, targets, mask=None):
        """Task loss: the (masked) mean squared error.

        ``mse = sum(m * (y - y*)^2) / max(sum(m), 1)``, with ``m`` the mask
        broadcast to the full shape of ``outputs`` (so a per-step mask ``[B, T]``
        counts each of the ``O`` outputs of a kept step). With a 0/1 mask this is
        the mean over the kept entries; an all-zero mask gives 0 (the ``max``
        avoids 0/0 and needs no branch under jit). A weighted mask summing to
        less than 1 is divided by 1, not by its sum. No mask: the mean over every entry.

        **Arguments:** ``outputs`` and ``targets`` of one shape, e.g. ``[B, T, O]``;
        ``mask`` (optional, numbers or booleans) whose axes match the leading axes
        of ``outputs``, each equal or 1: ``[B, T, O]``, ``[B, T]``, ``[1, T]``...

        **Returns:** a scalar.
        """
        xp = self._xp
        y, t = xp.as_input(outputs), xp.as_input(targets)
        m = None if mask is None else xp.as_input(mask, like=y)
        shape = check_mse_shapes(y.shape, t.shape, None if m is None else m.shape)
        err = (y - t) ** 2
        if shape is None:
            return err.mean()
        m = xp.astype(m, y.dtype).reshape(shape)
        return (m * err).sum() / xp.clamp_min(xp.broadcast_to(m, y.shape).sum(), 1.0)

    def weight_l2(self, W):
        """Squared Frobenius norm ``sum_ij W_ij^2`` of ``W`` ``[rows, cols]``; a scalar."""
        W = self._xp.as_input(W)
        check_matrix(W.shape)
        return (W ** 2).sum()

    def weight_l1(self, W):
        """Entrywise L1 norm ``sum_ij |W_ij|`` of ``W`` ``[rows, cols]``; a scalar."""
        W = self._xp.as_input(W)
        check_matrix(W.shape)
        return abs(W).sum()

    def projection_penalty(self, W, spec, src: str, dst: str, kind: str = "l2",
                           side: str = "recurrent"):
        """The L2 or L1 penalty of one projection's block of ``W``.

        ``penalty = sum_{i in dst, j in src} W_ij^2`` (``kind="l2"``) or ``|W_ij|``
        (``"l1"``). ``src``/``dst`` are region or parent names (a parent means the
        union of its children's units). ``side="recurrent"``: ``W`` is ``[H, H]``;
        ``side="input"``: ``src`` is an input region and ``W`` is ``[H, I]``.
        ``spec`` gives the layout (a NetworkSpec, or anything with a ``.spec``).
        """
        xp = self._xp
        W = xp.as_input(W)
        kind = check_kind(kind)
        rows, cols = projection_indices(spec, src, dst, side, W.shape)
        block = xp.take(xp.take(W, rows, 0), cols, 1)
        return self.weight_l2(block) if kind == "l2" else self.weight_l1(block)

    def weight_penalty(self, weights, kind: str = "l2", which=None):
        """The sum of :func:`weight_l2` (or :func:`weight_l1`) over named matrices.

        ``weights`` maps names to 2-D matrices, e.g. ``{"W_rec": W_rec_eff,
        "W_inp": W_inp_eff, "readout": readout_W}``; ``which`` picks names
        (default: all). ``penalty = sum_k sum_ij W^(k)_ij^2`` (or ``|W^(k)_ij|``).
        """
        kind = check_kind(kind)
        names = check_weights(weights, which)
        f = self.weight_l2 if kind == "l2" else self.weight_l1
        start = np.float64(0.0) if self.library == "numpy" else 0
        return sum((f(weights[n]) for n in names), start)

    def rate_l2(self, hs, spec=None, regions=None, per_region: bool = False):
        """Firing-rate penalty: the mean squared rate.

        ``rate_l2 = mean_{..., i in units} h_i^2`` over every entry of ``hs``
        ``[..., H]``, or over the units of ``regions`` only (names or parents,
        their units pooled, each once). ``per_region=True`` returns a dict
        name -> that mean for each name in ``regions`` (default: every recurrent
        region). Naming regions needs ``spec`` for the layout.
        """
        xp = self._xp
        h = xp.as_input(hs)
        groups = rate_l2_units(h.shape, spec, regions, per_region)
        if groups is None:
            return (h ** 2).mean()
        if isinstance(groups, dict):
            return {n: (xp.take(h, idx, -1) ** 2).mean() for n, idx in groups.items()}
        return (xp.take(h, groups, -1) ** 2).mean()

    def rate_std(self, hs, axis: int = -1):
        """Spread of rates across units: the population (``ddof=0``) standard deviation.

        ``std_i h = sqrt(mean_i (h_i - mean_i h)^2)`` along ``axis`` (the units,
        default last of ``[..., H]``), then averaged over the remaining axes.
        Its gradient where every unit has the same rate is taken as 0 (not NaN).
        """
        h = self._xp.as_input(hs)
        check_rates(h.shape)
        return self._std(h, population_axis(h.shape, axis)).mean()

    def rate_cv(self, hs, eps: float = 1e-8, axis: int = -1):
        """Coefficient of variation of rates across units.

        ``cv = std_i h / (mean_i h + eps)`` along ``axis`` (population std, as
        :func:`rate_std`), then averaged over the remaining axes. Meant for
        non-negative rates (relu, softplus, sigmoid); ``eps`` keeps a silent
        population finite.
        """
        xp = self._xp
        h = xp.as_input(hs)
        check_rates(h.shape)
        axis = population_axis(h.shape, axis)
        return (self._std(h, axis) / (xp.mean(h, axis) + eps)).mean()

    def _std(self, h, axis: int):
        xp = self._xp
        var = xp.mean((h - xp.mean(h, axis, keepdims=True)) ** 2, axis)
        # sqrt's gradient is infinite at 0 (all units equal, e.g. a silent
        # network at initialisation); route those entries through sqrt(1) so
        # the value stays 0 and the gradient is 0 instead of NaN. A NaN
        # variance (NaN rates) stays NaN: a loss never hides a broken run.
        spread = var != 0
        return xp.where(spread, xp.sqrt(xp.where(spread, var, xp.ones_like(var))),
                        xp.zeros_like(var))


NAMES = ("mse", "weight_l2", "weight_l1", "projection_penalty", "weight_penalty", "rate_l2",
         "rate_std", "rate_cv")
"""The loss functions every library's module exports, in :func:`bind`'s order."""


def bind(library: str) -> tuple:
    """The functions of :data:`NAMES`, in that order, bound to ``library``
    ("numpy", "torch" or "jax"): what each backend's ``losses`` module exports."""
    losses = Losses(library)
    return tuple(getattr(losses, n) for n in NAMES)


(mse, weight_l2, weight_l1, projection_penalty, weight_penalty, rate_l2, rate_std,
 rate_cv) = bind("numpy")

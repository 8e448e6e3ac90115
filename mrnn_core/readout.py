"""A linear readout of chosen regions: the spec, its default weights and the numpy reference.

A readout maps rates ``hs`` ``[..., H]`` to outputs ``[..., O]`` through the
``n`` hidden units of the regions it names (parents expand to their children):

    y = hs[..., idx] @ W_eff.T + b,    W_eff = |W| if dale else W

``idx`` ``[n]`` (:func:`readout_units`) lists those units in hidden-vector
order; ``W`` is ``[O, n]`` and ``b`` is ``[O]``. A Dale readout reads only
excitatory (``sign == "pos"``) regions and uses non-negative weights ``|W|``,
so each output is an excitatory projection, as in nn4n's E/I networks.

The torch and JAX ``Readout`` modules compute the same numbers; a readout
travels between them as ``{"W", "b"}`` numpy arrays or inside a
:class:`mrnn_core.Checkpoint` (``readout_W``, ``readout_b``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import MRNNConfigError, closest
from .spec import NetworkSpec

READOUT_KEYS = ("readout_W", "readout_b")
"""The names of a readout's ``W`` ``[O, n]`` and ``b`` ``[O]`` in checkpoint params."""

_DICT_KEYS = ("regions", "out_features", "dale", "bias")


@dataclass(frozen=True)
class ReadoutSpec:
    """Which regions a readout reads and how: pure data, validated on construction.

    **Fields:**

    - `regions`: region or parent names (a single name is accepted and kept
      as a 1-tuple); non-empty.
    - `out_features`: ``O``, an integer >= 1.
    - `dale`: read only excitatory regions, with weights ``|W| >= 0``.
    - `bias`: add a trained ``b`` ``[O]``; without it ``b`` is zero.
    """

    regions: tuple[str, ...]
    out_features: int
    dale: bool = False
    bias: bool = True

    def __post_init__(self):
        regions = (self.regions,) if isinstance(self.regions, str) else self.regions
        try:
            regions = tuple(regions)
        except TypeError:
            raise MRNNConfigError(
                f"readout regions: expected a region name or a sequence of names, "
                f"got {self.regions!r}") from None
        if not regions:
            raise MRNNConfigError(
                "readout regions: expected at least one region or parent name, got none")
        for name in regions:
            if not isinstance(name, str) or not name:
                raise MRNNConfigError(
                    f"readout regions: expected non-empty region names, got {name!r} in {regions!r}")
        O = self.out_features
        if isinstance(O, bool) or not isinstance(O, numbers.Integral) or O < 1:
            raise MRNNConfigError(f"readout out_features: expected an integer >= 1, got {O!r}")
        for key in ("dale", "bias"):
            if not isinstance(getattr(self, key), bool):
                raise MRNNConfigError(
                    f"readout {key}: expected true or false, got {getattr(self, key)!r}")
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "out_features", int(O))

    def to_dict(self) -> dict:
        """A JSON-ready mapping: ``regions`` (a list), ``out_features``, ``dale``, ``bias``."""
        return {"regions": list(self.regions), "out_features": self.out_features,
                "dale": self.dale, "bias": self.bias}

    @classmethod
    def from_dict(cls, d: Mapping) -> ReadoutSpec:
        """The spec :meth:`to_dict` wrote; unknown or missing keys are errors naming them."""
        if not isinstance(d, Mapping):
            raise MRNNConfigError(f"readout: expected a mapping, got {type(d).__name__} {d!r}")
        for key in d:
            if key not in _DICT_KEYS:
                raise MRNNConfigError(
                    f"readout: unknown key {key!r}; valid keys: "
                    + ", ".join(repr(k) for k in _DICT_KEYS) + closest(str(key), _DICT_KEYS))
        for key in ("regions", "out_features"):
            if key not in d:
                raise MRNNConfigError(f"readout: missing required key {key!r}")
        return cls(**d)


def _check_readout_spec(readout) -> ReadoutSpec:
    if not isinstance(readout, ReadoutSpec):
        raise MRNNConfigError(f"readout: expected a ReadoutSpec, got {type(readout).__name__}")
    return readout


def readout_units(spec: NetworkSpec, readout: ReadoutSpec) -> np.ndarray:
    """``idx`` ``[n]`` (int64): the hidden units ``readout`` reads, in hidden-vector order.

    Every named region or parent contributes all its units; a unit named twice
    is read once. With ``dale=True`` only units of excitatory regions are
    kept, and a readout left with none is an error.
    """
    _check_readout_spec(readout)
    try:
        names = set(spec.expand(*readout.regions))
    except MRNNConfigError as err:
        raise MRNNConfigError(f"readout regions {readout.regions!r}: {err}") from None
    keep = np.zeros(spec.hidden_size, dtype=bool)
    start = 0
    for r in spec.recurrent_regions:
        if r.name in names and (r.sign == "pos" or not readout.dale):
            keep[start:start + r.num_units] = True
        start += r.num_units
    if not keep.any():
        raise MRNNConfigError(
            f"readout regions {readout.regions!r}: dale=True reads only excitatory "
            f"(sign 'pos') regions, but none of these is excitatory; name an excitatory "
            f"region or pass dale=False")
    return np.flatnonzero(keep)


def init_readout(spec: NetworkSpec, readout: ReadoutSpec, rng) -> dict:
    """Default weights ``{"W": [O, n], "b": [O]}`` (float64), drawn from ``rng``
    (a ``numpy.random.Generator``, or a seed for one).

    ``torch.nn.Linear``'s rule with ``k = 1 / sqrt(n)``: ``W ~ U(-k, k)`` and
    ``b ~ U(-k, k)``; a Dale readout draws ``W ~ U(0, k)`` (so ``|W| = W``).
    ``W`` is drawn first, then ``b``; without a bias ``b`` is zero and not drawn.
    """
    n = readout_units(spec, readout).size
    try:
        rng = np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise MRNNConfigError(
            f"readout seed: expected a non-negative integer (or a numpy Generator), "
            f"got {rng!r}") from None
    k = 1.0 / math.sqrt(n)
    shape = (readout.out_features, n)
    W = rng.uniform(0.0 if readout.dale else -k, k, size=shape)
    b = rng.uniform(-k, k, size=readout.out_features) if readout.bias else np.zeros(readout.out_features)
    return {"W": W, "b": b}


def check_readout_params(spec: NetworkSpec, readout: ReadoutSpec, W, b=None) -> dict:
    """``{"W": [O, n], "b": [O]}`` as float64 copies, after checking that they are
    real and finite and of the right shapes.

    ``b`` may be ``None`` (zero) for a readout without bias; a readout without
    bias rejects a nonzero ``b``, which it could not represent.
    """
    n = readout_units(spec, readout).size
    O = readout.out_features
    W = _real_finite("readout W", W)
    if W.shape != (O, n):
        raise MRNNConfigError(
            f"readout W: expected shape {(O, n)} (out_features, units read from "
            f"{readout.regions!r}), got {W.shape}")
    b = np.zeros(O) if b is None else _real_finite("readout b", b)
    if b.shape != (O,):
        raise MRNNConfigError(f"readout b: expected shape {(O,)} (out_features,), got {b.shape}")
    if not readout.bias and np.any(b != 0):
        raise MRNNConfigError(
            "readout b: the readout has bias=False, so b must be zero (or None), "
            f"got nonzero entries (max |b| = {np.max(np.abs(b)):.3g})")
    return {"W": W, "b": b}


def _real_finite(label: str, value) -> np.ndarray:
    """``value`` as a float64 copy, refusing complex, string or object arrays and NaN/inf."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise MRNNConfigError(f"{label}: expected a real numeric array, got a value numpy "
                              f"cannot read as one ({err})") from None
    if a.dtype.kind not in "biuf":
        raise MRNNConfigError(f"{label}: expected a real numeric array, got dtype {a.dtype}")
    a = np.array(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        where = [int(i) for i in np.argwhere(~np.isfinite(a))[0]]
        raise MRNNConfigError(f"{label}: expected finite values, got {a[tuple(where)]!r} at "
                              f"index {where}")
    return a


def check_readout_input(hidden_size: int, shape) -> None:
    """Reject rates whose last axis is not ``H`` (``shape`` is ``hs.shape``)."""
    shape = tuple(shape)
    if not shape or shape[-1] != hidden_size:
        raise MRNNConfigError(
            f"readout input hs: expected shape [..., {hidden_size}] (last axis = the "
            f"network's {hidden_size} hidden units), got {list(shape)}")


def apply_readout(params: Mapping, readout: ReadoutSpec, hs, spec: NetworkSpec) -> np.ndarray:
    """The numpy reference: ``hs`` ``[..., H]`` -> ``y = hs[..., idx] @ W_eff.T + b`` ``[..., O]``.

    ``params`` holds ``W`` ``[O, n]`` and ``b`` ``[O]``; ``W_eff = |W|`` if
    ``readout.dale`` else ``W``.
    """
    p = check_readout_params(spec, readout, params["W"], params.get("b"))
    hs = np.asarray(hs, dtype=np.float64)
    check_readout_input(spec.hidden_size, hs.shape)
    W_eff = np.abs(p["W"]) if readout.dale else p["W"]
    return hs[..., readout_units(spec, readout)] @ W_eff.T + p["b"]


def describe_readout(readout: ReadoutSpec, in_units: int) -> str:
    """``"regions=(...), in_units=n, out_features=O"`` plus non-default flags: both backends' repr."""
    text = f"regions={readout.regions!r}, in_units={in_units}, out_features={readout.out_features}"
    return text + (", dale=True" if readout.dale else "") + ("" if readout.bias else ", bias=False")


def check_checkpoint_readout(spec: NetworkSpec, readout, params: Mapping | None = None) -> None:
    """What :class:`mrnn_core.Checkpoint` checks of its ``readout`` field: a
    :class:`ReadoutSpec` whose regions exist, and (when ``params`` is given)
    ``readout_W`` ``[O, n]`` and ``readout_b`` ``[O]`` in ``params``. The
    values are checked with the other arrays by :func:`mrnn_core.validate.check_params`."""
    if not isinstance(readout, ReadoutSpec):
        raise MRNNConfigError(
            f"Checkpoint.readout: expected a ReadoutSpec or None, got {type(readout).__name__}")
    n = readout_units(spec, readout).size
    if params is None:
        return
    for key, shape in zip(READOUT_KEYS, ((readout.out_features, n), (readout.out_features,))):
        if key not in params:
            raise MRNNConfigError(
                f"Checkpoint.params: missing {key!r}, expected shape {shape} since "
                f"Checkpoint.readout is set")
        if np.shape(params[key]) != shape:
            raise MRNNConfigError(
                f"Checkpoint.params[{key!r}]: expected shape {shape} for the readout of "
                f"{readout.regions!r}, got {np.shape(params[key])}")


def checkpoint_with_readout(checkpoint, readout: ReadoutSpec, W, b=None,
                            built_for: NetworkSpec | None = None):
    """A copy of ``checkpoint`` that also holds this readout (spec and arrays, float64).

    ``built_for``: the network the weights were made for; the checkpoint's
    network must then give the readout the same units (else an error).
    """
    from .checkpoint import Checkpoint

    if not isinstance(checkpoint, Checkpoint):
        raise MRNNConfigError(
            f"checkpoint: expected a mrnn_core.Checkpoint, got {type(checkpoint).__name__}")
    theirs = readout_units(checkpoint.spec, _check_readout_spec(readout))
    if built_for is not None:
        ours = readout_units(built_for, readout)
        if checkpoint.spec.hidden_size != built_for.hidden_size or not np.array_equal(ours, theirs):
            raise MRNNConfigError(
                f"checkpoint: in its network (H = {checkpoint.spec.hidden_size}) the readout "
                f"of {readout.regions!r} reads units {theirs.tolist()}, expected the units "
                f"{ours.tolist()} it reads in its own network (H = {built_for.hidden_size})")
    p = check_readout_params(checkpoint.spec, readout, W, b)
    params = {**checkpoint.params, READOUT_KEYS[0]: p["W"], READOUT_KEYS[1]: p["b"]}
    return dataclasses.replace(checkpoint, params=params, readout=readout)


def checkpoint_readout(checkpoint) -> tuple[ReadoutSpec, dict]:
    """``(readout_spec, {"W", "b"})`` stored in ``checkpoint``; an error if it holds none."""
    from .checkpoint import check_is_checkpoint

    check_is_checkpoint(checkpoint, "Readout.from_checkpoint")
    readout = checkpoint.readout
    if readout is None:
        raise MRNNConfigError(
            "checkpoint: it holds no readout (Checkpoint.readout is None); save one with "
            "Readout.add_to_checkpoint(checkpoint)")
    return readout, {"W": np.array(checkpoint.params[READOUT_KEYS[0]]),
                     "b": np.array(checkpoint.params[READOUT_KEYS[1]])}

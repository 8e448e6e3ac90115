"""One validation of a model's named arrays, whatever route they come in by.

``Checkpoint(...)`` (and so ``Checkpoint.load`` and both backends'
``from_checkpoint``) calls :func:`check_params`; torch's ``load_state_dict``
calls :func:`check_structure` and :func:`check_array` on the tensors it is
given. The rules are the ones a JSON config is held to, so the array route
accepts exactly the networks a spec can describe:

- every array is real and finite; weights, biases, ``init``, ``tau``,
  ``log_tau`` and readout arrays have a floating dtype (float16, float32 or
  float64); masks and sign matrices may also be boolean or integer, since only
  their values matter;
- masks are 0/1 and zero in every block the spec does not connect (an
  undeclared pair, a ``zero_connection``, ``sparsity=1``, ``density=0``); a
  connection with an explicit ``mask`` fixes its block to that mask; a dense,
  sparse or density block may hold any 0/1 pattern (mRNNTorch files, pruned
  or lesioned networks);
- sign matrices equal ``mask * sign of the source region`` (Dale's law);
- ``tau`` > 0;
- no array beyond the known names (:func:`known_keys`).

Every error is an :class:`MRNNConfigError` naming the array, the entry and,
for structure, the block ``'src' -> 'dst'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from .connectivity import region_slices
from .errors import MRNNConfigError, closest
from .init import PARAM_NAMES
from .readout import READOUT_KEYS, ReadoutSpec, readout_units
from .spec import NetworkSpec

OPTIONAL_NAMES = ("log_tau",)
"""Arrays a checkpoint may hold besides :data:`PARAM_NAMES`: ``log_tau`` ``[H]``
(the trained parameter of learnable time constants)."""
STRUCTURE_NAMES = ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")


def known_keys(readout: ReadoutSpec | None = None) -> tuple[str, ...]:
    """Every array name a checkpoint may hold: :data:`PARAM_NAMES`, ``log_tau``
    and, with a readout, ``readout_W`` and ``readout_b``."""
    return PARAM_NAMES + OPTIONAL_NAMES + (READOUT_KEYS if readout is not None else ())


def expected_shapes(spec: NetworkSpec, readout: ReadoutSpec | None = None) -> dict[str, tuple]:
    """Array name -> the shape this network gives it."""
    H, I = spec.hidden_size, spec.input_size
    shapes = {"W_rec": (H, H), "W_rec_mask": (H, H), "W_rec_sign_matrix": (H, H),
              "W_inp": (H, I), "W_inp_mask": (H, I), "W_inp_sign_matrix": (H, I),
              "base_firing": (H,), "init": (H,), "tau": (H,), "log_tau": (H,)}
    if readout is not None:
        O, n = readout.out_features, readout_units(spec, readout).size
        shapes.update({READOUT_KEYS[0]: (O, n), READOUT_KEYS[1]: (O,)})
    return shapes


def _describe_dtype(a: np.ndarray) -> str:
    return {"c": "complex", "U": "string", "S": "bytes", "O": "object", "V": "structured",
            "M": "datetime", "m": "timedelta"}.get(a.dtype.kind, "") + f" dtype {a.dtype}"


def check_array(label: str, value, shape: tuple | None = None, structure: bool = False) -> np.ndarray:
    """``value`` as a numpy array, after checking its dtype, shape and finiteness.

    **Arguments:**

    - `label`: how messages name the array (e.g. ``"Checkpoint.params['W_rec']"``).
    - `value`: anything ``numpy.asarray`` takes.
    - `shape`: the expected shape, or ``None`` to skip that check.
    - `structure`: a mask or sign matrix (boolean and integer dtypes allowed).

    **Returns:** the array (not copied when ``value`` already is one).
    """
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise MRNNConfigError(f"{label}: expected a numeric array, got a value numpy cannot "
                              f"read as one ({err})") from None
    is_float = a.dtype.kind == "f" and a.dtype.itemsize in (2, 4, 8)  # either byte order
    if structure:
        if a.dtype.kind not in "biu" and not is_float:
            raise MRNNConfigError(
                f"{label}: expected a real array (bool, integer, float16, float32 or float64), "
                f"got {_describe_dtype(a).strip()}")
    elif not is_float:
        raise MRNNConfigError(
            f"{label}: expected a real floating-point array (float16, float32 or float64), "
            f"got {_describe_dtype(a).strip()}")
    if shape is not None and a.shape != tuple(shape):
        raise MRNNConfigError(f"{label}: expected shape {tuple(shape)} for this network, "
                              f"got {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise MRNNConfigError(f"{label}: expected finite values, got {float(a[where])} at index "
                              f"{list(where)}")
    return a


def check_positive(label: str, tau: np.ndarray, spec: NetworkSpec) -> None:
    """Reject a ``[H]`` time-constant vector with an entry <= 0, naming unit and region."""
    bad = np.flatnonzero(~(np.asarray(tau) > 0))
    if bad.size:
        unit = int(bad[0])
        raise MRNNConfigError(
            f"{label}: expected finite time constants > 0, got {float(tau[unit])!r} for unit {unit} "
            f"(region {_region_of(spec.recurrent_regions, unit)!r})")


def _region_of(regions, index: int) -> str:
    stop = 0
    for r in regions:
        stop += r.num_units
        if index < stop:
            return r.name
    return "?"


@lru_cache(maxsize=64)
def _rules(spec: NetworkSpec, side: str):
    """``(allowed [H, n], fixed [(rows, cols, block)], sign [n])`` of one side.

    ``allowed`` is True where a mask may be 1 (declared, non-empty blocks);
    ``fixed`` lists the blocks an explicit ``mask`` pins; ``sign`` is +1/-1 per
    source unit.
    """
    sources = spec.recurrent_regions if side == "rec" else spec.input_regions
    connections = spec.recurrent_connections if side == "rec" else spec.input_connections
    dst, src = region_slices(spec.recurrent_regions), region_slices(sources)
    allowed = np.zeros((spec.hidden_size, sum(r.num_units for r in sources)), dtype=bool)
    fixed = []
    for c in connections:
        rows, cols = dst[c.dst_region], src[c.src_region]
        if c.is_empty:
            continue
        allowed[rows, cols] = True
        if c.mask is not None:
            fixed.append((rows, cols, c.mask_array()))
    sign = np.concatenate([np.full(r.num_units, 1.0 if r.sign == "pos" else -1.0)
                           for r in sources]) if sources else np.zeros(0)
    allowed.setflags(write=False)
    return allowed, tuple(fixed), sign



def _block(spec: NetworkSpec, side: str, row: int, col: int) -> str:
    sources = spec.recurrent_regions if side == "rec" else spec.input_regions
    return (f"[{row}, {col}] (block {_region_of(sources, col)!r} -> "
            f"{_region_of(spec.recurrent_regions, row)!r})")


def check_structure(spec: NetworkSpec, arrays: Mapping[str, np.ndarray],
                    labels: Mapping[str, str] | None = None) -> None:
    """Masks and sign matrices as the spec implies (see the module docstring).

    **Arguments:**

    - `spec`: the network.
    - `arrays`: some of ``W_rec_mask``, ``W_rec_sign_matrix``, ``W_inp_mask``,
      ``W_inp_sign_matrix`` (already of the right shape); a side whose mask is
      absent is skipped; a sign matrix is checked against its mask.
    - `labels`: how messages name each array (default: its name).
    """
    labels = labels or {}
    for side, prefix in (("rec", "W_rec"), ("inp", "W_inp")):
        if prefix + "_mask" not in arrays:
            continue
        allowed, fixed, sign = _rules(spec, side)
        m = np.asarray(arrays[prefix + "_mask"])
        name = labels.get(prefix + "_mask", prefix + "_mask")
        bad = np.argwhere(~((m == 0) | (m == 1)))
        if bad.size:
            r, c = (int(i) for i in bad[0])
            raise MRNNConfigError(f"{name}{_block(spec, side, r, c)}: expected 0 or 1, "
                                  f"got {m[r, c]!r}")
        bad = np.argwhere((m != 0) & ~allowed)
        if bad.size:
            r, c = (int(i) for i in bad[0])
            raise MRNNConfigError(
                f"{name}{_block(spec, side, r, c)}: expected 0, since the spec does not "
                f"connect this block (undeclared, zero_connection or empty), got {m[r, c]!r}")
        for rows, cols, block in fixed:
            diff = np.argwhere(m[rows, cols] != block)
            if diff.size:
                r, c = int(diff[0][0]) + rows.start, int(diff[0][1]) + cols.start
                raise MRNNConfigError(
                    f"{name}{_block(spec, side, r, c)}: expected {block[r - rows.start, c - cols.start]:g}, "
                    f"the value of the connection's explicit mask, got {m[r, c]!r}")
        if prefix + "_sign_matrix" in arrays:
            s = np.asarray(arrays[prefix + "_sign_matrix"])
            want = m * sign[None, :]
            bad = np.argwhere(s != want)
            if bad.size:
                r, c = (int(i) for i in bad[0])
                src = _region_of(spec.recurrent_regions if side == "rec" else spec.input_regions, c)
                raise MRNNConfigError(
                    f"{labels.get(prefix + '_sign_matrix', prefix + '_sign_matrix')}"
                    f"{_block(spec, side, r, c)}: expected {want[r, c] + 0.0:g} (mask * the sign "
                    f"{'+1' if sign[c] > 0 else '-1'} of source region {src!r}), got {s[r, c]!r}")


def check_params(spec: NetworkSpec, params: Mapping, readout: ReadoutSpec | None = None,
                 where: str = "Checkpoint.params") -> dict[str, np.ndarray]:
    """Check a full mapping of named arrays against ``spec`` (and ``readout``).

    **Arguments:**

    - `spec`: the network the arrays describe.
    - `params`: name -> array; must hold :data:`PARAM_NAMES` (and the readout's
      arrays when `readout` is set), may hold ``log_tau``, nothing else.
    - `readout`: a :class:`ReadoutSpec` or ``None``.
    - `where`: how messages name the mapping.

    **Returns:** name -> numpy array (the checked arrays, not copied).
    """
    keys = known_keys(readout)
    unknown = [k for k in params if k not in keys]
    if unknown:
        hint = (" (readout arrays need a Checkpoint.readout: use Readout.add_to_checkpoint)"
                if any(k in READOUT_KEYS for k in unknown) else closest(str(unknown[0]), keys))
        raise MRNNConfigError(
            f"{where}: unknown array(s) {', '.join(map(repr, unknown))}; expected only "
            f"{', '.join(keys)}{hint}")
    required = PARAM_NAMES + (READOUT_KEYS if readout is not None else ())
    missing = [k for k in required if k not in params]
    if missing:
        raise MRNNConfigError(f"{where}: missing {', '.join(map(repr, missing))}; expected "
                              f"at least {', '.join(required)}")
    shapes = expected_shapes(spec, readout)
    out = {k: check_array(f"{where}[{k!r}]", params[k], shapes[k], structure=k in STRUCTURE_NAMES)
           for k in params}
    check_structure(spec, out, {k: f"{where}[{k!r}]" for k in STRUCTURE_NAMES})
    check_positive(f"{where}['tau']", out["tau"], spec)
    if readout is not None and not readout.bias and np.any(out[READOUT_KEYS[1]] != 0):
        raise MRNNConfigError(
            f"{where}[{READOUT_KEYS[1]!r}]: expected zeros, since the readout has bias=False, "
            f"got max |b| = {float(np.max(np.abs(out[READOUT_KEYS[1]]))):.3g}")
    return out


__all__ = ["OPTIONAL_NAMES", "STRUCTURE_NAMES", "known_keys", "expected_shapes",
           "check_array", "check_positive", "check_structure", "check_params"]

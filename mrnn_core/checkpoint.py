"""A whole model as plain data, saved to one ``.npz`` file.

This is how a model travels between backends: torch -> Checkpoint -> JAX and
back is lossless because parameters are plain named numpy arrays. Every
route in (``Checkpoint(...)``, :meth:`Checkpoint.load`, both backends'
``from_checkpoint``) goes through :func:`mrnn_core.validate.check_params`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .config import parse_json, spec_from_dict, spec_to_dict
from .connectivity import (Connectivity, Streams, build_connectivity, learns_tau,
                           connectivity_from_arrays, unit_tau)
from .dynamics import Dynamics, check_alpha
from .errors import MRNNConfigError, MRNNFileError
from .files import atomic_write, read_npz
from .init import initial_params
from .readout import ReadoutSpec, check_checkpoint_readout
from .spec import NetworkSpec
from .validate import check_params, expected_shapes, known_keys

FORMAT_VERSION = 2
"""Version of the file layout. 2 added per-unit ``tau`` (and a learned
``log_tau``) to the arrays and an optional ``__readout__``; version-1 files
still load (their ``tau`` comes from the spec and dynamics)."""
_META_KEYS = ("__format_version__", "__spec__", "__dynamics__")
_READOUT_META = "__readout__"  # present only when the checkpoint holds a readout


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """``(spec, dynamics, params)``: everything needed to rebuild a model.

    **Fields:**

    - `spec`: the :class:`NetworkSpec`.
    - `dynamics`: the :class:`Dynamics` settings.
    - `params`: a read-only mapping of named numpy arrays; it must hold
      :data:`PARAM_NAMES` (``W_rec`` ``[H, H]``, ``W_inp`` ``[H, I]``, their
      masks and sign matrices, ``base_firing``, ``init`` and ``tau`` ``[H]``),
      may hold ``log_tau`` ``[H]`` (learned time constants: it is added, as
      ``log(tau)``, when some region learns its tau and dropped when none
      does) and nothing else
      (an unknown array is an error naming it). A missing ``tau`` (older
      files) is filled from the spec and dynamics. The arrays are checked as
      :mod:`mrnn_core.validate` describes (finite, real, masks and signs as
      the spec implies, ``tau > 0``): a bad one raises
      :class:`MRNNConfigError` naming it. Masks and sign matrices given as
      bool or integer arrays are stored as float64; other arrays keep their
      dtype.
    - `readout`: a :class:`mrnn_core.readout.ReadoutSpec` or ``None``; when
      set, `params` holds its ``readout_W`` ``[O, n]`` and ``readout_b`` ``[O]``.
    """

    spec: NetworkSpec
    dynamics: Dynamics
    params: MappingProxyType = field(default_factory=dict)
    readout: ReadoutSpec | None = None

    def __post_init__(self):
        if not isinstance(self.spec, NetworkSpec):
            raise MRNNConfigError(f"Checkpoint.spec: expected a NetworkSpec, got {type(self.spec).__name__}")
        if not isinstance(self.dynamics, Dynamics):
            raise MRNNConfigError(f"Checkpoint.dynamics: expected a Dynamics, got {type(self.dynamics).__name__}")
        if not hasattr(self.params, "items"):
            raise MRNNConfigError(
                f"Checkpoint.params: expected a mapping of names to arrays, got "
                f"{type(self.params).__name__}")
        params = {}
        for key, value in dict(self.params).items():
            if not isinstance(key, str) or key.startswith("__"):
                raise MRNNConfigError(
                    f"Checkpoint.params: key {key!r} is not a valid array name (a string not "
                    f"starting with '__'); expected only {', '.join(known_keys(self.readout))}")
            params[key] = value
        if "tau" not in params:
            # Files and mappings from before per-region tau: the spec and
            # dynamics say what every unit's time constant is.
            params["tau"] = unit_tau(self.spec, self.dynamics)
        if self.readout is not None:
            check_checkpoint_readout(self.spec, self.readout, params)
        checked = dict(check_params(self.spec, params, self.readout))
        # log_tau is there exactly when some region learns its tau: it marks the
        # time constants as learned for the pure simulate functions (the
        # input-noise rule, mrnn_core.input_noise_constant).
        if not learns_tau(self.spec, self.dynamics):
            checked.pop("log_tau", None)
        elif "log_tau" not in checked:
            checked["log_tau"] = np.log(checked["tau"])
        params = {}
        for key, a in checked.items():
            # bool/integer masks and signs become float64 (exact), as every backend
            # holds them; big-endian arrays (from another machine) native order
            dtype = np.float64 if a.dtype.kind in "biu" else a.dtype.newbyteorder("=")
            a = np.array(a, dtype=dtype)
            a.setflags(write=False)
            params[key] = a
        object.__setattr__(self, "params", MappingProxyType(params))

    @classmethod
    def initialise(cls, spec, dynamics: Dynamics | None = None, seed=None) -> Checkpoint:
        """A fresh model: structure and default weights drawn from ``seed``.

        Every unit's ``alpha = dt / tau`` must pass :func:`mrnn_core.dynamics.check_alpha`.
        """
        dynamics = dynamics or Dynamics()
        streams = Streams.from_seed(seed)
        connectivity = build_connectivity(spec, streams=streams)
        check_alpha(unit_tau(connectivity.spec, dynamics), dynamics, where="spec",
                    spec=connectivity.spec)
        params = initial_params(connectivity, dynamics, streams=streams)
        return cls(connectivity.spec, dynamics, params)

    @property
    def connectivity(self) -> Connectivity:
        """The structure this checkpoint's masks, signs and baselines describe."""
        p = self.params
        return connectivity_from_arrays(self.spec, p["W_rec_mask"], p["W_rec_sign_matrix"],
                                        p["W_inp_mask"], p["W_inp_sign_matrix"],
                                        p["base_firing"], p["init"])

    def save(self, path) -> None:
        """Write one ``.npz`` file: every array plus the spec, dynamics and readout as JSON."""
        meta = {
            "__format_version__": np.array(FORMAT_VERSION),
            "__spec__": np.array(json.dumps(spec_to_dict(self.spec))),
            "__dynamics__": np.array(json.dumps(self.dynamics.to_dict())),
        }
        if self.readout is not None:
            meta[_READOUT_META] = np.array(json.dumps(self.readout.to_dict()))
        with atomic_write(path) as f:
            np.savez(f, **meta, **dict(self.params))

    @classmethod
    def load(cls, path) -> Checkpoint:
        """Read a file written by :meth:`save`; arrays come back bit-identical.

        The file must be a regular file (a FIFO, device or directory is
        refused before it is read); each array's size is bounded by what the
        embedded spec implies, and the arrays are validated like
        ``Checkpoint(...)``. **Raises** :class:`mrnn_core.MRNNFileError`
        (a :class:`MRNNConfigError`) naming the file and what is wrong.
        """
        path = os.fspath(path)
        what = "checkpoint file"
        found = {}

        def limits(meta):
            found.update(_read_meta(path, meta))
            shapes = expected_shapes(found["spec"], found["readout"])
            names = known_keys(found["readout"])
            return {k: shapes[k] for k in names}

        try:
            arrays = read_npz(path, what, limits)
            params = {k: v for k, v in arrays.items() if not k.startswith("__")}
            return cls(found["spec"], found["dynamics"], params, found["readout"])
        except MRNNFileError:
            raise
        except MRNNConfigError as err:
            raise MRNNFileError(f"{what} {path!r}: {err}") from None


def _read_meta(path: str, meta: dict) -> dict:
    """The spec, dynamics and readout of a checkpoint file's ``__`` members."""
    where = f"checkpoint file {path!r}"
    unknown = [k for k in meta if k not in _META_KEYS + (_READOUT_META,)]
    if unknown:
        raise MRNNFileError(f"{where}: unknown member(s) {', '.join(map(repr, unknown))}; "
                            f"expected {', '.join(_META_KEYS)} and optionally {_READOUT_META}")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise MRNNFileError(f"{where}: missing {', '.join(missing)}; expected a file written "
                            f"by Checkpoint.save")
    version = meta["__format_version__"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise MRNNFileError(f"{where}: format version {_show(version)}: expected an integer "
                            f"from 1 to {FORMAT_VERSION}")
    if int(version) > FORMAT_VERSION:
        raise MRNNFileError(f"{where}: format version {int(version)} is newer than this mrnn "
                            f"reads (expected <= {FORMAT_VERSION}); upgrade mrnn")
    if int(version) < 1:
        raise MRNNFileError(f"{where}: format version {int(version)}: expected an integer "
                            f"from 1 to {FORMAT_VERSION}")
    out = {}
    for key, label in (("__spec__", "spec"), ("__dynamics__", "dynamics"), (_READOUT_META, "readout")):
        if key not in meta:
            out[label] = None
            continue
        a = meta[key]
        if a.shape != () or a.dtype.kind != "U":
            raise MRNNFileError(f"{where}: {key} must be one JSON string, got {_show(a)}")
        try:
            d = parse_json(str(a), f"{path}[{label}]", label=key)
        except MRNNConfigError as err:
            raise MRNNFileError(f"{where}: {err}") from None
        if not isinstance(d, dict):
            raise MRNNFileError(f"{where}: {key} must be a JSON object, got {type(d).__name__}")
        try:
            if label == "spec":
                out[label] = spec_from_dict(d, source=f"{path}[spec]")
            elif label == "dynamics":
                out[label] = Dynamics.from_dict(d)
            else:
                out[label] = ReadoutSpec.from_dict(d)
        except MRNNConfigError as err:
            raise MRNNFileError(f"{where}: {key}: {err}") from None
        except (TypeError, KeyError, AttributeError) as err:
            raise MRNNFileError(f"{where}: {key} does not describe a {label}: {err}") from None
    return out


def _show(a: np.ndarray) -> str:
    text = repr(a.tolist()) if a.size <= 4 else f"an array of shape {a.shape}"
    return f"{text} (dtype {a.dtype})"


def check_is_checkpoint(value, call: str) -> None:
    """Reject anything but a :class:`Checkpoint`; a path gets a pointer to :meth:`Checkpoint.load`."""
    if isinstance(value, Checkpoint):
        return
    if isinstance(value, (str, bytes, os.PathLike)):
        raise MRNNConfigError(
            f"{call}: got the path {os.fsdecode(value)!r}, expected a mrnn_core.Checkpoint; "
            f"read the file first: {call}(mrnn_core.Checkpoint.load(path))")
    raise MRNNConfigError(f"{call}: expected a mrnn_core.Checkpoint, got {type(value).__name__}")

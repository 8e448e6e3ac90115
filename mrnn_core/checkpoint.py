"""A whole model as plain data, saved to one ``.npz`` file.

This is how a model travels between backends: torch -> Checkpoint -> JAX and
back is lossless because parameters are plain named numpy arrays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .config import parse_json, spec_from_dict, spec_to_dict
from .connectivity import (Connectivity, Streams, build_connectivity,
                           connectivity_from_arrays, unit_tau)
from .dynamics import Dynamics, check_alpha
from .errors import MRNNConfigError
from .files import atomic_write
from .init import PARAM_NAMES, initial_params
from .readout import ReadoutSpec, check_checkpoint_readout
from .spec import NetworkSpec

FORMAT_VERSION = 2
"""Version of the file layout. 2 added per-unit ``tau`` (and a learned
``log_tau``) to the arrays and an optional ``__readout__``; version-1 files
still load (their ``tau`` comes from the spec and dynamics)."""
_META_KEYS = ("__format_version__", "__spec__", "__dynamics__")
_READOUT_META = "__readout__"  # present only when the checkpoint holds a readout


def _expected_shapes(spec: NetworkSpec) -> dict[str, tuple[int, ...]]:
    H, I = spec.hidden_size, spec.input_size
    return {"W_rec": (H, H), "W_rec_mask": (H, H), "W_rec_sign_matrix": (H, H),
            "W_inp": (H, I), "W_inp_mask": (H, I), "W_inp_sign_matrix": (H, I),
            "base_firing": (H,), "init": (H,), "tau": (H,)}


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """``(spec, dynamics, params)``: everything needed to rebuild a model.

    **Fields:**

    - `spec`: the :class:`NetworkSpec`.
    - `dynamics`: the :class:`Dynamics` settings.
    - `params`: a read-only mapping of named numpy arrays; it must hold
      :data:`PARAM_NAMES` (``W_rec`` ``[H, H]``, ``W_inp`` ``[H, I]``, their
      masks and sign matrices, ``base_firing``, ``init`` and ``tau`` ``[H]``)
      and may hold more. A missing ``tau`` (older files) is filled from the
      spec and dynamics.
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
        params = {}
        for key, value in dict(self.params).items():
            if key.startswith("__"):
                raise MRNNConfigError(f"Checkpoint.params: key {key!r} is reserved (starts with '__')")
            a = np.array(value)
            a.setflags(write=False)
            params[key] = a
        if "tau" not in params:
            # Files and mappings from before per-region tau: the spec and
            # dynamics say what every unit's time constant is.
            params["tau"] = unit_tau(self.spec, self.dynamics)
            params["tau"].setflags(write=False)
        missing = [k for k in PARAM_NAMES if k not in params]
        if missing:
            raise MRNNConfigError(
                f"Checkpoint.params: missing {', '.join(map(repr, missing))}; "
                f"expected at least {', '.join(PARAM_NAMES)}"
            )
        for key, shape in _expected_shapes(self.spec).items():
            if params[key].shape != shape:
                raise MRNNConfigError(
                    f"Checkpoint.params[{key!r}]: expected shape {shape} for this network, "
                    f"got {params[key].shape}"
                )
        if self.readout is not None:
            check_checkpoint_readout(self.spec, self.readout, params)
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
        """Read a file written by :meth:`save`; arrays come back bit-identical."""
        path = os.fspath(path)
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise MRNNConfigError(f"checkpoint file {path!r} does not exist") from None
        except (OSError, ValueError) as err:
            raise MRNNConfigError(f"checkpoint file {path!r} is not an mrnn checkpoint (.npz): {err}") from None
        with data:
            missing = [k for k in _META_KEYS if k not in data.files]
            if missing:
                raise MRNNConfigError(
                    f"checkpoint file {path!r}: missing {', '.join(missing)}; "
                    f"expected a file written by Checkpoint.save"
                )
            version = int(data["__format_version__"])
            if version > FORMAT_VERSION:
                raise MRNNConfigError(
                    f"checkpoint file {path!r}: format version {version} is newer than "
                    f"this mrnn reads (expected <= {FORMAT_VERSION}); upgrade mrnn"
                )
            spec = spec_from_dict(parse_json(str(data["__spec__"]), f"{path}[spec]"),
                                  source=f"{path}[spec]")
            dynamics = Dynamics.from_dict(parse_json(str(data["__dynamics__"]),
                                                     f"{path}[dynamics]"))
            readout = None
            if _READOUT_META in data.files:
                readout = ReadoutSpec.from_dict(parse_json(str(data[_READOUT_META]),
                                                           f"{path}[readout]"))
            params = {k: data[k] for k in data.files if k not in _META_KEYS + (_READOUT_META,)}
        return cls(spec, dynamics, params, readout)

"""Frozen, validated descriptions of regions, connections and whole networks.

A :class:`NetworkSpec` is pure data: names, sizes, signs and which region
projects to which. It holds no weights and draws nothing at random; see
:func:`mrnn_core.build_connectivity` for the materialised masks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from .errors import MRNNConfigError, closest, known

SIGN_ALIASES = {"pos": "pos", "exc": "pos", "neg": "neg", "inhib": "neg"}
"""Accepted sign spellings and the canonical sign each one means."""


def _check_name(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MRNNConfigError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _check_num_units(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise MRNNConfigError(
            f"{where}: num_units must be an integer >= 1, got {value!r}"
        )
    return int(value)


def _check_sign(value, where: str) -> str:
    if value not in SIGN_ALIASES:
        raise MRNNConfigError(
            f"{where}: unknown sign {value!r}; allowed signs: "
            + ", ".join(repr(s) for s in SIGN_ALIASES)
            + closest(str(value), SIGN_ALIASES)
        )
    return SIGN_ALIASES[value]


def _check_float(value, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MRNNConfigError(f"{where}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise MRNNConfigError(f"{where}: {key} must be finite, got {value!r}")
    return float(value)


def _check_per_unit(value, num_units: int, where: str, key: str):
    """A scalar, or one finite number per unit (kept as a tuple)."""
    if getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:
        values = list(value.tolist() if hasattr(value, "tolist") else value)
        if len(values) != num_units:
            raise MRNNConfigError(
                f"{where}: {key} must be one number or {num_units} numbers "
                f"(one per unit), got {len(values)} numbers"
            )
        return tuple(_check_float(v, where, key) for v in values)
    return _check_float(value, where, key)


def _check_bool(value, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise MRNNConfigError(f"{where}: {key} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class RecurrentRegionSpec:
    """One recurrent population: ``num_units`` contiguous entries of the hidden state.

    ``sign`` is the sign of every weight leaving the region under Dale's law
    (``"pos"``/``"exc"`` or ``"neg"``/``"inhib"``; stored canonically as
    ``"pos"``/``"neg"``). ``base_firing`` is the constant drive ``b`` of its
    units and ``init`` their initial pre-activation; each is one number or one
    number per unit. ``parent_region`` groups cell types under one name.
    """

    name: str
    num_units: int
    sign: str = "pos"
    base_firing: float | tuple[float, ...] = 0.0
    init: float | tuple[float, ...] = 0.0
    parent_region: str | None = None
    learnable_bias: bool = False

    def __post_init__(self):
        name = _check_name(self.name, "recurrent region name")
        where = f"recurrent region {name!r}"
        n = _check_num_units(self.num_units, where)
        set_ = object.__setattr__
        set_(self, "num_units", n)
        set_(self, "sign", _check_sign(self.sign, where))
        set_(self, "base_firing", _check_per_unit(self.base_firing, n, where, "base_firing"))
        set_(self, "init", _check_per_unit(self.init, n, where, "init"))
        if self.parent_region is not None:
            _check_name(self.parent_region, f"{where}: parent_region")
        _check_bool(self.learnable_bias, where, "learnable_bias")


@dataclass(frozen=True)
class InputRegionSpec:
    """One group of ``num_units`` input channels; ``sign`` applies under Dale's law."""

    name: str
    num_units: int
    sign: str = "pos"

    def __post_init__(self):
        name = _check_name(self.name, "input region name")
        where = f"input region {name!r}"
        object.__setattr__(self, "num_units", _check_num_units(self.num_units, where))
        object.__setattr__(self, "sign", _check_sign(self.sign, where))


@dataclass(frozen=True)
class ConnectionSpec:
    """A projection ``src_region -> dst_region``.

    ``sparsity`` ``s`` (0 <= s <= 1, ``None`` = dense) is the fraction of each
    source unit's outgoing weights that are *removed*: every column of the
    block loses ``ceil(s * n_dst)`` entries (the behaviour of mRNNTorch, whose
    docstrings call it the fraction kept). ``zero_connection=True`` declares
    the block but keeps it empty.
    """

    src_region: str
    dst_region: str
    sparsity: float | None = None
    zero_connection: bool = False

    def __post_init__(self):
        _check_name(self.src_region, "connection src_region")
        _check_name(self.dst_region, "connection dst_region")
        where = f"connection {self.src_region!r} -> {self.dst_region!r}"
        if self.sparsity is not None:
            s = _check_float(self.sparsity, where, "sparsity")
            if not 0.0 <= s <= 1.0:
                raise MRNNConfigError(
                    f"{where}: sparsity must be between 0 and 1 (or None for dense), "
                    f"got {self.sparsity!r}"
                )
            object.__setattr__(self, "sparsity", s)
        _check_bool(self.zero_connection, where, "zero_connection")

    @property
    def is_empty(self) -> bool:
        """True when the block can carry no signal (zero connection or sparsity 1)."""
        return self.zero_connection or self.sparsity == 1.0


@dataclass(frozen=True)
class NetworkSpec:
    """A whole mRNN: ordered recurrent and input regions and their connections.

    Order is insertion order; it fixes the layout of the hidden vector
    (``H = hidden_size`` entries) and the input vector (``I = input_size``).
    Every construction is validated; the ``with_*`` methods return a new spec
    and leave this one untouched.
    """

    recurrent_regions: tuple[RecurrentRegionSpec, ...] = ()
    input_regions: tuple[InputRegionSpec, ...] = ()
    recurrent_connections: tuple[ConnectionSpec, ...] = ()
    input_connections: tuple[ConnectionSpec, ...] = ()

    def __post_init__(self):
        for key in ("recurrent_regions", "input_regions",
                    "recurrent_connections", "input_connections"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        self._validate()

    def _validate(self):
        seen = {}
        for region in self.recurrent_regions + self.input_regions:
            kind = "recurrent" if isinstance(region, RecurrentRegionSpec) else "input"
            if region.name in seen:
                # Recurrent regions are scanned first, so a clash across kinds
                # always pairs an earlier recurrent region with an input one.
                holders = (f"two {kind} regions" if seen[region.name] == kind
                           else "a recurrent and an input region")
                raise MRNNConfigError(
                    f"duplicate region name {region.name!r}: given to {holders}; "
                    f"region names must be unique across recurrent and input regions"
                )
            seen[region.name] = kind
        rec = [r.name for r in self.recurrent_regions]
        inp = [r.name for r in self.input_regions]
        self._check_connections(self.recurrent_connections, rec, rec, "recurrent", inp)
        self._check_connections(self.input_connections, inp, rec, "input", inp)

    @staticmethod
    def _check_connections(connections, sources, destinations, kind, inputs):
        pairs = set()
        for c in connections:
            where = f"{kind} connection {c.src_region!r} -> {c.dst_region!r}"
            if c.src_region not in sources:
                raise MRNNConfigError(
                    f"{where}: unknown source region {c.src_region!r}; "
                    f"{known(f'{kind} source regions', sources)}"
                    + closest(c.src_region, sources)
                )
            if c.dst_region in inputs:
                raise MRNNConfigError(
                    f"{where}: {c.dst_region!r} is an input region and cannot "
                    f"receive connections; expected one of the recurrent regions"
                )
            if c.dst_region not in destinations:
                raise MRNNConfigError(
                    f"{where}: unknown destination region {c.dst_region!r}; "
                    f"{known('recurrent regions', destinations)}"
                    + closest(c.dst_region, destinations)
                )
            if (c.src_region, c.dst_region) in pairs:
                raise MRNNConfigError(
                    f"{where}: duplicate connection; this pair is already declared"
                )
            pairs.add((c.src_region, c.dst_region))

    # building ----------------------------------------------------------------

    def with_recurrent_region(self, name: str, num_units: int, **fields) -> NetworkSpec:
        """A new spec with one more recurrent region (fields of :class:`RecurrentRegionSpec`)."""
        region = RecurrentRegionSpec(name, num_units, **fields)
        return replace(self, recurrent_regions=self.recurrent_regions + (region,))

    def with_input_region(self, name: str, num_units: int, sign: str = "pos") -> NetworkSpec:
        """A new spec with one more input region."""
        region = InputRegionSpec(name, num_units, sign)
        return replace(self, input_regions=self.input_regions + (region,))

    def with_recurrent_connection(self, src_region: str, dst_region: str,
                                  sparsity: float | None = None,
                                  zero_connection: bool = False) -> NetworkSpec:
        """A new spec with one more recurrent connection ``src_region -> dst_region``."""
        c = ConnectionSpec(src_region, dst_region, sparsity, zero_connection)
        return replace(self, recurrent_connections=self.recurrent_connections + (c,))

    def with_input_connection(self, src_region: str, dst_region: str,
                              sparsity: float | None = None,
                              zero_connection: bool = False) -> NetworkSpec:
        """A new spec with one more connection from an input region to a recurrent one."""
        c = ConnectionSpec(src_region, dst_region, sparsity, zero_connection)
        return replace(self, input_connections=self.input_connections + (c,))

    # lookup ------------------------------------------------------------------

    @property
    def recurrent_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.recurrent_regions)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.input_regions)

    @property
    def hidden_size(self) -> int:
        """``H``: total units of the recurrent regions."""
        return sum(r.num_units for r in self.recurrent_regions)

    @property
    def input_size(self) -> int:
        """``I``: total channels of the input regions."""
        return sum(r.num_units for r in self.input_regions)

    def region(self, name: str) -> RecurrentRegionSpec | InputRegionSpec:
        """The region called ``name`` (recurrent or input)."""
        for r in self.recurrent_regions + self.input_regions:
            if r.name == name:
                return r
        names = self.recurrent_names + self.input_names
        raise MRNNConfigError(
            f"unknown region {name!r}; {known('regions', names)}" + closest(name, names)
        )

    @property
    def parents(self) -> dict[str, tuple[str, ...]]:
        """Parent name -> its child regions, in insertion order."""
        out: dict[str, list[str]] = {}
        for r in self.recurrent_regions:
            if r.parent_region is not None:
                out.setdefault(r.parent_region, []).append(r.name)
        return {k: tuple(v) for k, v in out.items()}

    def expand(self, *names: str, allow_input: bool = False) -> tuple[str, ...]:
        """Region names with every parent name replaced by its children.

        Keeps the caller's order and drops repeats. A parent name wins over a
        region of the same name. Unknown names raise, listing the known ones.
        """
        parents = self.parents
        valid = set(self.recurrent_names) | (set(self.input_names) if allow_input else set())
        out: list[str] = []
        for name in names:
            if name in parents:
                children = parents[name]
            elif name in valid:
                children = (name,)
            else:
                choices = list(self.recurrent_names) + list(parents)
                if allow_input:
                    choices += list(self.input_names)
                hint = ""
                if name in self.input_names and not allow_input:
                    hint = f"; {name!r} is an input region, expected a recurrent region or parent"
                raise MRNNConfigError(
                    f"unknown region {name!r}{hint}; "
                    f"{known('regions and parents', choices)}" + closest(name, choices)
                )
            out.extend(c for c in children if c not in out)
        return tuple(out)

    # serialisation -----------------------------------------------------------

    def to_dict(self) -> dict:
        """mRNNTorch's JSON layout (the four lists), every field written out."""
        from .config import spec_to_dict

        return spec_to_dict(self)

    def save(self, path) -> None:
        """Write the spec as mRNNTorch-format JSON to ``path``."""
        from .config import save_config

        save_config(self, path)

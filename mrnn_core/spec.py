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


def _check_mask(value, where: str) -> tuple[tuple[float, ...], ...]:
    """A 2-D array-like of 0/1 entries, kept as a tuple of row tuples."""
    import numpy as np

    try:
        a = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=float)
    except (TypeError, ValueError):
        raise MRNNConfigError(f"{where}: mask must be a 2-D array of 0/1, got {value!r}") from None
    if a.ndim != 2:
        raise MRNNConfigError(
            f"{where}: mask must be a 2-D array [n_dst, n_src] of 0/1, got {a.ndim} dimensions"
        )
    bad = a[(a != 0) & (a != 1)]
    if bad.size:
        raise MRNNConfigError(f"{where}: mask entries must be 0 or 1, got {float(bad.flat[0])!r}")
    return tuple(tuple(float(v) for v in row) for row in a)


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

    Beyond mRNNTorch (nn4n-style options):

    - ``tau``: the region's own time constant (ms, > 0); ``None`` uses
      ``Dynamics.tau``. Its units then update with ``alpha = dt / tau``.
    - ``learnable_tau``: train the region's per-unit time constants (kept
      positive by the backends, which learn ``log(tau)``).
    - ``learnable_init``: train the region's initial state ``init``.
    - ``trainable=False``: freeze every weight into the region (its rows of
      ``W_rec`` and ``W_inp``), reservoir-style.
    """

    name: str
    num_units: int
    sign: str = "pos"
    base_firing: float | tuple[float, ...] = 0.0
    init: float | tuple[float, ...] = 0.0
    parent_region: str | None = None
    learnable_bias: bool = False
    tau: float | None = None
    learnable_tau: bool = False
    learnable_init: bool = False
    trainable: bool = True

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
        if self.tau is not None:
            tau = _check_float(self.tau, where, "tau")
            if tau <= 0:
                raise MRNNConfigError(f"{where}: tau must be > 0 (ms), got {self.tau!r}")
            set_(self, "tau", tau)
        for key in ("learnable_tau", "learnable_init", "trainable"):
            _check_bool(getattr(self, key), where, key)


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

    Two other ways to thin a block (at most one of the three per connection):
    ``density`` ``p`` keeps every entry independently with probability ``p``
    (nn4n's rule: the count per column varies), and ``mask`` gives the 0/1
    block ``[n_dst, n_src]`` explicitly. ``trainable=False`` freezes the
    projection's weights.
    """

    src_region: str
    dst_region: str
    sparsity: float | None = None
    zero_connection: bool = False
    density: float | None = None
    mask: tuple[tuple[float, ...], ...] | None = None
    trainable: bool = True

    def __post_init__(self):
        _check_name(self.src_region, "connection src_region")
        _check_name(self.dst_region, "connection dst_region")
        where = f"connection {self.src_region!r} -> {self.dst_region!r}"
        for key in ("sparsity", "density"):
            if getattr(self, key) is not None:
                v = _check_float(getattr(self, key), where, key)
                if not 0.0 <= v <= 1.0:
                    raise MRNNConfigError(
                        f"{where}: {key} must be between 0 and 1 (or None for dense), "
                        f"got {getattr(self, key)!r}"
                    )
                object.__setattr__(self, key, v)
        if self.mask is not None:
            object.__setattr__(self, "mask", _check_mask(self.mask, where))
        given = [k for k in ("sparsity", "density", "mask") if getattr(self, k) is not None]
        if len(given) > 1:
            raise MRNNConfigError(
                f"{where}: give at most one of sparsity, density and mask, "
                f"got {' and '.join(given)}"
            )
        _check_bool(self.zero_connection, where, "zero_connection")
        _check_bool(self.trainable, where, "trainable")

    @property
    def is_empty(self) -> bool:
        """True when the block can carry no signal (zero connection, sparsity 1,
        density 0 or an all-zero mask)."""
        if self.mask is not None:
            return self.zero_connection or not any(any(row) for row in self.mask)
        return self.zero_connection or self.sparsity == 1.0 or self.density == 0.0

    def mask_array(self):
        """The explicit ``mask`` as a float ``[n_dst, n_src]`` numpy array (or None)."""
        import numpy as np

        return None if self.mask is None else np.array(self.mask, dtype=float).reshape(
            len(self.mask), -1)


ROUTES = ("E->E", "E->I", "I->E", "I->I")
"""Population routes between E/I areas: source sign -> destination sign."""


def _check_routes(routes, where: str) -> set[str]:
    if routes is None:
        return set(ROUTES)
    if isinstance(routes, str):
        routes = (routes,)
    out = set()
    for r in routes:
        key = r.replace(" ", "").upper() if isinstance(r, str) else r
        if isinstance(key, str) and len(key) == 2:
            key = f"{key[0]}->{key[1]}"
        if key not in ROUTES:
            raise MRNNConfigError(
                f"{where}: unknown route {r!r}; allowed routes: "
                + ", ".join(repr(x) for x in ROUTES)
            )
        out.add(key)
    if not out:
        raise MRNNConfigError(f"{where}: routes is empty; expected some of {', '.join(ROUTES)}")
    return out


def ei_area_regions(name: str, num_units, exc_pct=0.8, **fields):
    """The ``(excitatory, inhibitory)`` child regions of an E/I area (see
    :meth:`NetworkSpec.with_ei_area`)."""
    name = _check_name(name, "E/I area name")
    where = f"E/I area {name!r}"
    n = _check_num_units(num_units, where)
    pct = _check_float(exc_pct, where, "exc_pct")
    n_exc = math.floor(pct * n + 0.5)
    if not 0.0 <= pct <= 1.0 or n_exc < 1 or n - n_exc < 1:
        raise MRNNConfigError(
            f"{where}: exc_pct={exc_pct!r} of num_units={n} gives {n_exc} excitatory and "
            f"{n - n_exc} inhibitory units; expected exc_pct in (0, 1) leaving at least "
            f"one unit in each population"
        )
    for key in ("sign", "parent_region", "name", "num_units"):
        if key in fields:
            raise MRNNConfigError(
                f"{where}: {key!r} cannot be set on an E/I area (the area fixes its "
                f"children's {key}); expected other region fields"
            )
    halves = ({}, {})
    for key, value in fields.items():
        per_unit = isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0
        if key in ("base_firing", "init") and per_unit:
            value = list(value.tolist() if hasattr(value, "tolist") else value)
            if len(value) != n:
                raise MRNNConfigError(
                    f"{where}: {key} must be one number or {n} numbers (one per unit), "
                    f"got {len(value)} numbers"
                )
            halves[0][key], halves[1][key] = tuple(value[:n_exc]), tuple(value[n_exc:])
        else:
            halves[0][key] = halves[1][key] = value
    return (RecurrentRegionSpec(f"{name}_exc", n_exc, sign="pos", parent_region=name, **halves[0]),
            RecurrentRegionSpec(f"{name}_inh", n - n_exc, sign="neg", parent_region=name, **halves[1]))


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
        self._check_parent_names()
        rec = [r.name for r in self.recurrent_regions]
        inp = [r.name for r in self.input_regions]
        self._check_connections(self.recurrent_connections, rec, rec, "recurrent", inp)
        self._check_connections(self.input_connections, inp, rec, "input", inp)
        sizes = {r.name: r.num_units for r in self.recurrent_regions + self.input_regions}
        for kind, conns in (("recurrent", self.recurrent_connections),
                            ("input", self.input_connections)):
            for c in conns:
                if c.mask is None:
                    continue
                want = (sizes[c.dst_region], sizes[c.src_region])
                got = (len(c.mask), len(c.mask[0]) if c.mask else 0)
                if got != want:
                    raise MRNNConfigError(
                        f"{kind} connection {c.src_region!r} -> {c.dst_region!r}: mask must "
                        f"have shape [n_dst, n_src] = {list(want)}, got {list(got)}"
                    )

    def _check_parent_names(self):
        """Region, parent and input-region names form one namespace: a parent
        name is never a region's name (its own included), so a name always
        selects one set of units, and parents cannot form a cycle."""
        recurrent = {r.name: r for r in self.recurrent_regions}
        inputs = set(self.input_names)
        rule = ("expected a group name that no region uses (region, parent and "
                "input-region names form one namespace)")
        for r in self.recurrent_regions:
            parent = r.parent_region
            if parent is None:
                continue
            where = f"recurrent region {r.name!r}: parent_region {parent!r}"
            if parent == r.name:
                raise MRNNConfigError(f"{where} is the region's own name; {rule}")
            if parent in inputs:
                raise MRNNConfigError(f"{where} is the name of input region {parent!r}; {rule}")
            if parent in recurrent:
                chain = [r.name, parent]
                while chain[-1] in recurrent and chain.count(chain[-1]) == 1:
                    if recurrent[chain[-1]].parent_region is None:
                        break
                    chain.append(recurrent[chain[-1]].parent_region)
                if chain.count(chain[-1]) > 1:
                    cycle = chain[chain.index(chain[-1]):]
                    raise MRNNConfigError(
                        f"{where}: parent regions form a cycle "
                        f"({' -> '.join(repr(n) for n in cycle)}); a parent groups regions and "
                        f"is not itself a region: {rule}"
                    )
                raise MRNNConfigError(f"{where} is the name of recurrent region {parent!r}; {rule}")

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
                                  zero_connection: bool = False, *,
                                  density: float | None = None, mask=None,
                                  trainable: bool = True, routes=None) -> NetworkSpec:
        """A new spec with the recurrent connection(s) ``src_region -> dst_region``.

        A parent name (e.g. an E/I area) on either side expands to one
        connection per pair of children; ``routes`` (any of ``"E->E"``,
        ``"E->I"``, ``"I->E"``, ``"I->I"``; default all) keeps only the pairs
        whose source and destination signs match (E = ``pos``, I = ``neg``).
        """
        new = self._expand_connection("recurrent", src_region, dst_region, routes, dict(
            sparsity=sparsity, zero_connection=zero_connection, density=density,
            mask=mask, trainable=trainable))
        return replace(self, recurrent_connections=self.recurrent_connections + new)

    def with_input_connection(self, src_region: str, dst_region: str,
                              sparsity: float | None = None,
                              zero_connection: bool = False, *,
                              density: float | None = None, mask=None,
                              trainable: bool = True, routes=None) -> NetworkSpec:
        """A new spec with the connection(s) from an input region to a recurrent
        region or parent (expanded as in :meth:`with_recurrent_connection`)."""
        new = self._expand_connection("input", src_region, dst_region, routes, dict(
            sparsity=sparsity, zero_connection=zero_connection, density=density,
            mask=mask, trainable=trainable))
        return replace(self, input_connections=self.input_connections + new)

    def _side_children(self, name: str, regions) -> tuple[str, ...]:
        """``(name,)`` for a region of ``regions``; a parent's children; else ``(name,)``
        so that validation reports the unknown name."""
        if name in {r.name for r in regions}:
            return (name,)
        return self.parents.get(name, (name,))

    def _expand_connection(self, kind: str, src: str, dst: str, routes, fields: dict):
        sources = self.recurrent_regions if kind == "recurrent" else self.input_regions
        srcs = self._side_children(_check_name(src, f"{kind} connection src_region"), sources)
        dsts = self._side_children(_check_name(dst, f"{kind} connection dst_region"),
                                   self.recurrent_regions)
        where = f"{kind} connection {src!r} -> {dst!r}"
        expanded = len(srcs) > 1 or len(dsts) > 1 or srcs != (src,) or dsts != (dst,)
        if expanded and fields.get("mask") is not None:
            raise MRNNConfigError(
                f"{where}: mask= needs a single source and destination region, got a "
                f"parent ({src!r} -> {', '.join(srcs)}; {dst!r} -> {', '.join(dsts)}); "
                f"give one mask per child connection"
            )
        keep = _check_routes(routes, where)
        sign = {r.name: r.sign for r in self.recurrent_regions + self.input_regions}
        letter = {"pos": "E", "neg": "I"}
        pairs = [(s_, d) for s_ in srcs for d in dsts
                 if s_ not in sign or d not in sign
                 or f"{letter[sign[s_]]}->{letter[sign[d]]}" in keep]
        if not pairs:
            raise MRNNConfigError(
                f"{where}: routes {sorted(keep)} match no pair of populations "
                f"(sources {list(srcs)}, destinations {list(dsts)})"
            )
        return tuple(ConnectionSpec(s_, d, **fields) for s_, d in pairs)

    def with_ei_area(self, name: str, num_units: int, exc_pct: float = 0.8,
                     **fields) -> NetworkSpec:
        """A new spec with an E/I area: two child regions under parent ``name``.

        ``f"{name}_exc"`` (sign ``pos``) gets ``round(exc_pct * num_units)``
        units and ``f"{name}_inh"`` (sign ``neg``) the rest, as nn4n's
        ``exc_pct`` does. ``fields`` are :class:`RecurrentRegionSpec` fields
        given to both children (a per-unit ``base_firing``/``init`` of length
        ``num_units`` is split between them).
        """
        return replace(self, recurrent_regions=self.recurrent_regions
                       + ei_area_regions(name, num_units, exc_pct, **fields))

    def with_trainable(self, *targets, trainable: bool) -> NetworkSpec:
        """A new spec with ``trainable`` set on the named projections.

        A target is a recurrent region or parent name (every projection into
        it, recurrent and input, and the region's own flag, so later
        connections into it follow) or a ``(src, dst)`` pair of names
        (parents expand; the pair must match declared connections).
        """
        _check_bool(trainable, "with_trainable", "trainable")
        regions, pairs = set(), set()
        for t in targets:
            if isinstance(t, str):
                regions.update(self.expand(t))
            elif isinstance(t, (tuple, list)) and len(t) == 2 and all(isinstance(n, str) for n in t):
                srcs = (self.expand(t[0], allow_input=True) if t[0] not in self.input_names
                        else (t[0],))
                found = {(c.src_region, c.dst_region)
                         for c in self.recurrent_connections + self.input_connections
                         if c.src_region in srcs and c.dst_region in self.expand(t[1])}
                if not found:
                    raise MRNNConfigError(
                        f"freeze/unfreeze target {tuple(t)!r}: no declared connection "
                        f"from {t[0]!r} to {t[1]!r}; expected a declared (src, dst) pair"
                    )
                pairs |= found
            else:
                raise MRNNConfigError(
                    f"freeze/unfreeze target {t!r}: expected a region or parent name or a "
                    f"(src, dst) pair of names, got {type(t).__name__}"
                )
        if trainable:
            frozen = [d for _, d in pairs
                      if not self.region(d).trainable and d not in regions]
            if frozen:
                raise MRNNConfigError(
                    f"cannot unfreeze a projection into frozen region {frozen[0]!r}; "
                    f"unfreeze the region itself first"
                )
        flip = lambda c: (c.dst_region in regions or (c.src_region, c.dst_region) in pairs)
        return replace(
            self,
            recurrent_regions=tuple(replace(r, trainable=trainable) if r.name in regions else r
                                    for r in self.recurrent_regions),
            recurrent_connections=tuple(replace(c, trainable=trainable) if flip(c) else c
                                        for c in self.recurrent_connections),
            input_connections=tuple(replace(c, trainable=trainable) if flip(c) else c
                                    for c in self.input_connections),
        )

    def with_frozen(self, *targets) -> NetworkSpec:
        """``with_trainable(*targets, trainable=False)``: reservoir-style frozen weights."""
        return self.with_trainable(*targets, trainable=False)

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

        Keeps the caller's order and drops repeats (a name never means both a
        region and a parent: see ``_check_parent_names``). Unknown names
        raise, listing the known ones.
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

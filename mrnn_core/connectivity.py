"""Materialised structure: masks, sign matrices, baselines and region slices.

Every matrix is laid out ``[destination, source]`` (rows receive), like
``torch.nn.Linear.weight``: ``W_rec_mask`` is ``[H, H]``, ``W_inp_mask``
is ``[H, I]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import load_config
from .errors import MRNNConfigError, closest, known
from .spec import NetworkSpec


@dataclass(frozen=True)
class Streams:
    """Independent numpy generators, one per kind of random draw.

    Drawing the recurrent and the input structure from separate streams lets
    a backend finalise them at different times and still get exactly what
    :func:`build_connectivity` gives for the same seed.
    """

    recurrent_mask: np.random.Generator
    input_mask: np.random.Generator
    recurrent_weight: np.random.Generator
    input_weight: np.random.Generator

    @classmethod
    def from_seed(cls, seed) -> Streams:
        children = np.random.SeedSequence(seed).spawn(4)
        return cls(*(np.random.default_rng(c) for c in children))


def _offsets(regions) -> dict[str, tuple[int, int]]:
    out, start = {}, 0
    for r in regions:
        out[r.name] = (start, start + r.num_units)
        start += r.num_units
    return out


def region_slices(regions) -> dict[str, slice]:
    """Region name -> its ``slice`` of the vector that ``regions`` (in order) tile."""
    return {k: slice(*v) for k, v in _offsets(regions).items()}


def sparse_block_mask(n_dst: int, n_src: int, sparsity: float | None,
                      rng: np.random.Generator) -> np.ndarray:
    """A ``[n_dst, n_src]`` 0/1 mask that removes ``ceil(sparsity * n_dst)`` rows per column.

    The removed rows are chosen uniformly at random, independently for every
    column (source unit); ``None`` gives all ones.
    """
    mask = np.ones((n_dst, n_src))
    if sparsity is None:
        return mask
    n_zero = math.ceil(sparsity * n_dst)
    for col in range(n_src):
        mask[rng.permutation(n_dst)[:n_zero], col] = 0.0
    return mask


def connection_block_mask(c, n_dst: int, n_src: int, rng: np.random.Generator) -> np.ndarray:
    """The ``[n_dst, n_src]`` 0/1 block of connection ``c``.

    ``sparsity`` removes ``ceil(s * n_dst)`` entries per column (mRNNTorch);
    ``density`` keeps each entry independently with probability ``p`` (nn4n);
    an explicit ``mask`` is used as given and draws nothing.
    """
    if c.mask is not None:
        return c.mask_array()
    if c.density is not None:
        return (rng.random((n_dst, n_src)) < c.density).astype(float)
    return sparse_block_mask(n_dst, n_src, c.sparsity, rng)


def _structure(spec: NetworkSpec, sources, connections, rng):
    dst = _offsets(spec.recurrent_regions)
    src = _offsets(sources)
    H = spec.hidden_size
    n_src = sum(r.num_units for r in sources)
    mask = np.zeros((H, n_src))
    sign = np.zeros((H, n_src))
    signs = {r.name: (1.0 if r.sign == "pos" else -1.0) for r in sources}
    for c in connections:
        (d0, d1), (s0, s1) = dst[c.dst_region], src[c.src_region]
        if c.zero_connection:
            continue
        block = connection_block_mask(c, d1 - d0, s1 - s0, rng)
        mask[d0:d1, s0:s1] = block
        sign[d0:d1, s0:s1] = block * signs[c.src_region]
    return mask, sign


def recurrent_structure(spec: NetworkSpec, rng: np.random.Generator):
    """``(W_rec_mask, W_rec_sign_matrix)``, each ``[H, H]``; undeclared blocks are zero."""
    return _structure(spec, spec.recurrent_regions, spec.recurrent_connections, rng)


def input_structure(spec: NetworkSpec, rng: np.random.Generator):
    """``(W_inp_mask, W_inp_sign_matrix)``, each ``[H, I]``; undeclared blocks are zero."""
    return _structure(spec, spec.input_regions, spec.input_connections, rng)


def per_unit_vector(spec: NetworkSpec, field: str) -> np.ndarray:
    """The ``[H]`` concatenation of every recurrent region's ``field`` (``base_firing``/``init``)."""
    parts = [np.broadcast_to(np.asarray(getattr(r, field), dtype=float), (r.num_units,))
             for r in spec.recurrent_regions]
    return np.concatenate(parts) if parts else np.zeros(0)


def unit_tau(spec: NetworkSpec, dynamics) -> np.ndarray:
    """``[H]`` time constants: each region's ``tau``, or ``dynamics.tau`` where unset."""
    parts = [np.full(r.num_units, dynamics.tau if r.tau is None else r.tau, dtype=float)
             for r in spec.recurrent_regions]
    return np.concatenate(parts) if parts else np.zeros(0)


def trainable_masks(spec: NetworkSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(rec [H, H], inp [H, I])`` 0/1: 0 on the blocks of frozen projections.

    A projection is frozen when its connection has ``trainable=False`` or its
    destination region has ``trainable=False``. Entries outside every
    declared connection stay 1 (the mask zeroes them anyway).
    """
    dst = _offsets(spec.recurrent_regions)
    frozen_rows = {r.name for r in spec.recurrent_regions if not r.trainable}
    out = []
    for sources, conns in ((spec.recurrent_regions, spec.recurrent_connections),
                           (spec.input_regions, spec.input_connections)):
        src = _offsets(sources)
        T = np.ones((spec.hidden_size, sum(r.num_units for r in sources)))
        for c in conns:
            if not c.trainable or c.dst_region in frozen_rows:
                (d0, d1), (s0, s1) = dst[c.dst_region], src[c.src_region]
                T[d0:d1, s0:s1] = 0.0
        out.append(T)
    return out[0], out[1]


def learns_tau(spec: NetworkSpec, dynamics) -> bool:
    """Whether some region learns its time constant (``learnable_tau``, leaky only)."""
    return dynamics.kind == "leaky" and any(r.learnable_tau for r in spec.recurrent_regions)


def learnable_masks(spec: NetworkSpec) -> dict[str, np.ndarray]:
    """``{"base_firing", "init", "tau"}`` -> ``[H]`` 0/1, 1 on units whose
    region learns that quantity (``learnable_bias``/``learnable_init``/``learnable_tau``)."""
    flags = {"base_firing": "learnable_bias", "init": "learnable_init", "tau": "learnable_tau"}
    return {key: np.concatenate([np.full(r.num_units, float(getattr(r, flag)))
                                 for r in spec.recurrent_regions])
            if spec.recurrent_regions else np.zeros(0)
            for key, flag in flags.items()}


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Connectivity:
    """The finalised, immutable structure of a network.

    **Fields:**

    - `spec`: the :class:`NetworkSpec` it was built from.
    - `W_rec_mask`, `W_rec_sign_matrix`: ``[H, H]``.
    - `W_inp_mask`, `W_inp_sign_matrix`: ``[H, I]``.
    - `base_firing`, `init`: ``[H]``.
    - `bias_trainable`: ``[H]`` booleans, True where the region's bias learns.

    Arrays are read-only float64 numpy arrays.
    """

    spec: NetworkSpec
    W_rec_mask: np.ndarray
    W_rec_sign_matrix: np.ndarray
    W_inp_mask: np.ndarray
    W_inp_sign_matrix: np.ndarray
    base_firing: np.ndarray
    init: np.ndarray
    bias_trainable: np.ndarray

    @property
    def hidden_size(self) -> int:
        return self.spec.hidden_size

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def recurrent_slices(self) -> dict[str, slice]:
        """Recurrent region name -> its ``slice`` of the hidden vector, in order."""
        return region_slices(self.spec.recurrent_regions)

    @property
    def input_slices(self) -> dict[str, slice]:
        """Input region name -> its ``slice`` of the input vector, in order."""
        return region_slices(self.spec.input_regions)

    def region_indices(self, name: str) -> tuple[int, int]:
        """``(start, end)`` of a recurrent region in the hidden vector, or of an
        input region in the input vector. A parent name is not a region."""
        offsets = {**_offsets(self.spec.input_regions), **_offsets(self.spec.recurrent_regions)}
        if name in offsets and name not in self.parents:
            return offsets[name]
        if name in self.parents:
            raise MRNNConfigError(
                f"{name!r} is a parent region; indices exist only for single regions "
                f"(its children: {', '.join(map(repr, self.parents[name]))})"
            )
        names = list(offsets)
        raise MRNNConfigError(
            f"unknown region {name!r}; {known('regions', names)}" + closest(name, names)
        )

    def region_slice(self, name: str) -> slice:
        """The slice of the hidden (or input) vector that region ``name`` owns."""
        return slice(*self.region_indices(name))

    @property
    def parents(self) -> dict[str, tuple[str, ...]]:
        """Parent name -> child region names, in insertion order."""
        return self.spec.parents

    def children(self, parent: str) -> tuple[str, ...]:
        """The regions grouped under ``parent``."""
        if parent not in self.parents:
            raise MRNNConfigError(
                f"unknown parent region {parent!r}; {known('parents', self.parents)}"
                + closest(parent, self.parents)
            )
        return self.parents[parent]

    def expand(self, *names: str, allow_input: bool = False) -> tuple[str, ...]:
        """Region names, parents replaced by their children; the caller's order."""
        return self.spec.expand(*names, allow_input=allow_input)

    def unit_indices(self, *names: str, allow_input: bool = False) -> np.ndarray:
        """Integer indices of the units of ``names`` (parents expanded), caller's order."""
        parts = [np.arange(*self.region_indices(n))
                 for n in self.expand(*names, allow_input=allow_input)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=int)

    def in_network_order(self, *names: str) -> tuple[str, ...]:
        """The recurrent regions named (parents expanded), in network order."""
        chosen = set(self.expand(*names))
        return tuple(r for r in self.spec.recurrent_names if r in chosen)

    def excluded(self, *names: str, inputs: bool = False) -> list[str]:
        """The regions not named, in network order: recurrent regions (parents
        expand), or with ``inputs`` the input regions (each name must be one)."""
        if not inputs:
            chosen = set(self.expand(*names))
            return [r for r in self.spec.recurrent_names if r not in chosen]
        for name in names:
            if name not in self.spec.input_names:
                raise MRNNConfigError(
                    f"get_excluded_inp_regions: {name!r} is not an input region; "
                    f"{known('input regions', self.spec.input_names)}"
                )
        return [r for r in self.spec.input_names if r not in names]

    def combine_index(self, regions_a, regions_b, shape_a, shape_b) -> np.ndarray:
        """Where each hidden unit sits in ``concat([states_a, states_b], -1)``.

        ``states_a`` (shape ``shape_a``) holds the regions of ``regions_a`` in
        that list's order, parents expanded, and likewise ``b``. The lists must
        be disjoint and cover every recurrent region. **Returns:** ``[H]``
        integer indices ``perm`` with ``concat(...)[..., perm]`` in network
        order (``combine_states`` of both backends).
        """
        a, b = self.expand(*regions_a), self.expand(*regions_b)
        both = [r for r in a if r in b]
        if both:
            raise MRNNConfigError(
                f"combine_states: region lists must be disjoint; both name {both}"
            )
        missing = [r for r in self.spec.recurrent_names if r not in a and r not in b]
        if missing:
            raise MRNNConfigError(
                f"combine_states: regions {missing} are in neither list; expected the two "
                f"lists to cover every recurrent region"
            )
        shape_a, shape_b = tuple(shape_a), tuple(shape_b)
        if shape_a[:-1] != shape_b[:-1]:
            raise MRNNConfigError(
                f"combine_states: states_a and states_b must agree on every dimension but "
                f"the last, got {shape_a} and {shape_b}"
            )
        where = {}  # region -> its (start, end) in the concatenation
        offset = 0
        for label, shape, names in (("states_a", shape_a, a), ("states_b", shape_b, b)):
            sizes = [self.region_slice(r).stop - self.region_slice(r).start for r in names]
            if shape[-1:] != (sum(sizes),):
                raise MRNNConfigError(
                    f"combine_states: {label} should hold {sum(sizes)} units for regions "
                    f"{list(names)}, got last dimension {shape[-1] if shape else None}"
                )
            for name, size in zip(names, sizes):
                where[name] = (offset, offset + size)
                offset += size
        return np.concatenate([np.arange(*where[r]) for r in self.spec.recurrent_names]
                              or [np.zeros(0, dtype=int)])


def connectivity_from_arrays(spec: NetworkSpec, W_rec_mask, W_rec_sign_matrix,
                             W_inp_mask, W_inp_sign_matrix,
                             base_firing=None, init=None) -> Connectivity:
    """Wrap given structure arrays (e.g. from a checkpoint), checking their shapes."""
    H, I = spec.hidden_size, spec.input_size
    arrays = {"W_rec_mask": (W_rec_mask, (H, H)), "W_rec_sign_matrix": (W_rec_sign_matrix, (H, H)),
              "W_inp_mask": (W_inp_mask, (H, I)), "W_inp_sign_matrix": (W_inp_sign_matrix, (H, I))}
    for key, (value, shape) in arrays.items():
        if np.shape(value) != shape:
            raise MRNNConfigError(
                f"{key}: expected shape {shape} for this network, got {np.shape(value)}"
            )
    bias_trainable = np.concatenate(
        [np.full(r.num_units, r.learnable_bias) for r in spec.recurrent_regions]
    ) if spec.recurrent_regions else np.zeros(0, dtype=bool)
    bias_trainable.setflags(write=False)
    return Connectivity(
        spec=spec,
        W_rec_mask=_frozen(W_rec_mask), W_rec_sign_matrix=_frozen(W_rec_sign_matrix),
        W_inp_mask=_frozen(W_inp_mask), W_inp_sign_matrix=_frozen(W_inp_sign_matrix),
        base_firing=_frozen(per_unit_vector(spec, "base_firing") if base_firing is None else base_firing),
        init=_frozen(per_unit_vector(spec, "init") if init is None else init),
        bias_trainable=bias_trainable,
    )


def build_connectivity(spec, seed=None, streams: Streams | None = None) -> Connectivity:
    """Materialise ``spec`` (a spec, a config path or a dict) into a :class:`Connectivity`.

    **Arguments:**

    - `spec`: a :class:`NetworkSpec`, or anything :func:`load_config` reads.
    - `seed`: seed of the sparse-mask draws (``None``: fresh entropy).
    - `streams`: alternatively, the :class:`Streams` to draw from.

    Undeclared blocks are zero; a block with sparsity ``s`` drops
    ``ceil(s * n_dst)`` entries in each column; signs follow the source region.
    """
    spec = load_config(spec)
    streams = streams or Streams.from_seed(seed)
    W_rec_mask, W_rec_sign = recurrent_structure(spec, streams.recurrent_mask)
    W_inp_mask, W_inp_sign = input_structure(spec, streams.input_mask)
    return connectivity_from_arrays(spec, W_rec_mask, W_rec_sign, W_inp_mask, W_inp_sign)


__all__ = ["Connectivity", "Streams", "build_connectivity", "connectivity_from_arrays",
           "recurrent_structure", "input_structure", "sparse_block_mask", "per_unit_vector",
           "connection_block_mask", "unit_tau", "trainable_masks", "learnable_masks"]

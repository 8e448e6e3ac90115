"""Region objects with mRNNTorch's API (``model[name]``, ``region_dict``, ``inp_dict``).

The spec is the truth: region objects are created as it grows; a finalised
side's connections and learned region vectors read the model's tensors on
access (:mod:`mrnn_torch.region`), so they need no updating."""

from __future__ import annotations

import dataclasses

from mrnn_core import MRNNConfigError, NetworkSpec
from mrnn_core.connectivity import region_slices as _slices
from mrnn_core.regions import layout

from .region import InputRegion, RecurrentRegion, _BlockView


class RegionsMixin:
    """Region objects and access of :class:`~mrnn_torch.mRNNBase` (see the module docstring)."""

    # the spec and its regions ------------------------------------------------

    @property
    def _layout(self):
        """The spec's layout as a :class:`mrnn_core.Connectivity` (placeholder masks:
        only names, slices and parents are read; :func:`mrnn_core.regions.layout`)."""
        return layout(self._spec)

    def _attach_recurrent(self, r) -> None:
        region = RecurrentRegion(r.num_units, r.base_firing, r.init, r.sign, r.parent_region,
                                 r.learnable_bias, self._device, dtype=self._dtype, name=r.name)
        self.region_dict[r.name] = region
        self._register_region_params(r, region)

    def _adopt(self, spec: NetworkSpec) -> None:
        """Make ``spec`` (a valid spec extending the model's, e.g. by one
        ``add_*`` call; all of it for a new model) the model's: region objects
        and placeholder connections for what it adds, parameters for their
        learnable vectors. Refused (changing nothing) if parameter names clash."""
        old = self._spec
        new = spec.recurrent_regions[len(old.recurrent_regions):]
        for i, r in enumerate(new):
            self._check_bias_key(r, new[:i])
        for r in new:
            self._attach_recurrent(r)
        for r in spec.input_regions[len(old.input_regions):]:
            self.inp_dict[r.name] = InputRegion(r.num_units, r.sign, self._device,
                                                dtype=self._dtype, name=r.name)
        self._attach_connections(self.region_dict, spec.recurrent_connections,
                                 len(old.recurrent_connections))
        self._attach_connections(self.inp_dict, spec.input_connections,
                                 len(old.input_connections))
        self._set_spec(spec)

    def _attach_connections(self, sources, connections, start: int) -> None:
        """Placeholder region connections for ``connections[start:]`` (the new ones)."""
        for c in connections[start:]:
            sources[c.src_region].add_connection(
                c.dst_region, self.region_dict[c.dst_region].num_units,
                zero_connection=c.zero_connection)

    def _set_spec(self, spec: NetworkSpec) -> None:
        self._spec = spec
        self._refresh_region_masks()

    def _refresh_region_masks(self) -> None:
        H = self._spec.hidden_size
        self.region_mask_dict = {}
        for name, rows in _slices(self._spec.recurrent_regions).items():
            mask = self._zeros(H)
            mask[rows] = 1.0
            self.region_mask_dict[name] = mask

    def _view_blocks(self, matrix: str, regions: dict, sources) -> None:
        """Once ``matrix`` is drawn, each of ``regions`` (its sources) connects to every
        recurrent region (undeclared: zero connections) by a view of its block."""
        cols = _slices(sources)
        for dst, rows in _slices(self._spec.recurrent_regions).items():
            for src, region in regions.items():
                zero = getattr(region.connections.get(dst), "zero_connection", True)
                region.connections[dst] = _BlockView(self._tensors, matrix, (rows, cols[src]), zero)

    # regions by name ---------------------------------------------------------

    def __getitem__(self, name: str):
        """The recurrent or input region called ``name``."""
        if isinstance(name, str) and name in self.region_dict:
            return self.region_dict[name]
        if isinstance(name, str) and name in self.inp_dict:
            return self.inp_dict[name]
        self._spec.region(name)  # raises, listing the known regions
        raise MRNNConfigError(f"{name!r} names no region")

    def __setitem__(self, name: str, region) -> None:
        """Replace region ``name`` with ``region`` of the same kind and size.

        The replacement keeps the model's connectivity (its connections are
        the model's); its own ``base_firing``, ``init``, ``parent_region`` and
        ``learnable_bias`` take effect (the model's ``tau``, ``learnable_tau``,
        ``learnable_init`` and ``trainable`` for ``name`` stay). Its sign may
        change only while that side is not finalised.
        """
        recurrent = name in self.region_dict
        old = self[name]
        kind = RecurrentRegion if recurrent else InputRegion
        if not isinstance(region, kind):
            raise MRNNConfigError(
                f"model[{name!r}] = ...: {name!r} is {'a recurrent' if recurrent else 'an input'} "
                f"region; expected {kind.__name__}, got {type(region).__name__}"
            )
        if region.num_units != old.num_units:
            raise MRNNConfigError(
                f"model[{name!r}] = ...: expected a region of {old.num_units} units, "
                f"got {region.num_units}"
            )
        if region.sign != old.sign and (self.rec_finalized if recurrent else self.inp_finalized):
            raise MRNNConfigError(
                f"model[{name!r}] = ...: its sign matrix is finalised with sign {old.sign!r}, "
                f"got a region of sign {region.sign!r}"
            )
        own = dict(base_firing=tuple(region.base_firing.tolist()), init=tuple(region.init.tolist()),
                   parent_region=region.parent_region,
                   learnable_bias=region.learnable_bias) if recurrent else {}
        new = dataclasses.replace(self._spec.region(name), sign=region.sign, **own)
        side = "recurrent_regions" if recurrent else "input_regions"
        spec = dataclasses.replace(self._spec, **{side: tuple(
            new if r.name == name else r for r in getattr(self._spec, side))})
        region.to(device=self._device, dtype=self._dtype)
        if recurrent:
            self._register_region_params(new, region, keep_tau=True)
        region.name, region.connections = name, old.connections
        (self.region_dict if recurrent else self.inp_dict)[name] = region
        self._set_spec(spec)

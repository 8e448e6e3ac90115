"""Region containers with mRNNTorch's API: a region owns its outgoing connections.

A :class:`Region` holds ``connections`` (destination name -> :class:`Connection`,
each laid out ``[n_dst, n_src]``) and ``masks["ones"]`` / ``masks["zeros"]``
(``[num_units]``). :class:`RecurrentRegion` adds ``base_firing`` and ``init``;
:class:`InputRegion` is a region of input channels.

Inside a model its tensors are the truth. A connection added through a model
holds placeholders (zero weights, a dense or empty mask) until that side is
finalised; from then on each connection is a view that reads its block of the
model's current ``W_rec`` / ``W_inp``, mask and sign matrix at every access,
as a learned ``base_firing`` / ``init`` reads the model's parameter.
``region.to(...)`` moves the tensors a region holds (``masks``, placeholders).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mrnn_core import ConnectionSpec, InputRegionSpec, MRNNConfigError, RecurrentRegionSpec
from mrnn_core import sparse_block_mask

from ._device import resolve_device, resolve_dtype

__all__ = ["Connection", "Region", "RecurrentRegion", "InputRegion"]


@dataclass(eq=False)  # tensors have no single truth value: equal means the same connection
class Connection:
    """One projection from a region to ``dst``: tensors ``[n_dst, n_src]``.

    ``parameter`` holds the raw weights, ``weight_mask`` the 0/1 mask,
    ``sign_matrix`` ``mask * (+1 or -1 by the source's sign)``;
    ``zero_connection`` is True for a block declared (or filled) empty.
    """

    parameter: torch.Tensor | None = None
    weight_mask: torch.Tensor | None = None
    sign_matrix: torch.Tensor | None = None
    zero_connection: bool | None = None


class _BlockView(Connection):
    """A finalised model's connection: block ``block`` of ``matrix`` (``"W_rec"``/``"W_inp"``),
    its mask and sign matrix, read from ``tensors`` at each access (detached views)."""

    def __init__(self, tensors, matrix: str, block: tuple, zero_connection: bool | None):
        self._source, self.zero_connection = (tensors, matrix, block), zero_connection

    def _read(self, suffix: str) -> torch.Tensor:
        tensors, matrix, block = self._source
        return tensors[matrix + suffix].detach()[block]

    def _view(suffix: str, field: str):  # noqa: N805 (a property factory, used below)
        def refuse(self, value):
            matrix = self._source[1] + suffix
            raise AttributeError(
                f"connection.{field}: on a finalised model it is a view of model.{matrix}; "
                f"write into it in place (connection.{field}.copy_(...)) or set "
                f"model.{matrix}; got an assignment of {type(value).__name__}")
        return property(lambda self: self._read(suffix), refuse)

    parameter = _view("", "parameter")
    weight_mask = _view("_mask", "weight_mask")
    sign_matrix = _view("_sign_matrix", "sign_matrix")
    del _view


def plain(value):
    """A number or a list of numbers from a float, a sequence, an array or a tensor."""
    return value.tolist() if hasattr(value, "tolist") else value


def _torch_seeded_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


class Region(nn.Module):
    """A group of ``num_units`` units whose outgoing weights share ``sign``.

    **Arguments:** ``num_units`` (int >= 1), ``sign`` (``"pos"``/``"exc"`` or
    ``"neg"``/``"inhib"``, stored as ``"pos"``/``"neg"``), ``device``
    (``None``: CUDA when available, else CPU), and keyword-only ``dtype``
    (default: torch's) and ``name`` (used in error messages).
    """

    def __init__(self, num_units: int, sign: str = "pos", device=None, *,
                 dtype=None, name: str | None = None):
        super().__init__()
        spec = InputRegionSpec(name or "region", num_units, sign)
        self._init_common(spec, device, dtype)

    def _init_common(self, spec, device, dtype) -> None:
        self.name = spec.name
        self.num_units = spec.num_units
        self.sign = spec.sign
        self._device = resolve_device(device)
        self._dtype = resolve_dtype(dtype)
        self.connections: dict[str, Connection] = {}
        self.masks = {"ones": self._full(1.0), "zeros": self._full(0.0)}

    def _full(self, value) -> torch.Tensor:
        return torch.full((self.num_units,), float(value), device=self._device, dtype=self._dtype)

    def _tensor(self, value) -> torch.Tensor:
        """``[num_units]`` from one number or one number per unit."""
        t = torch.as_tensor(value, dtype=self._dtype, device=self._device)
        return t.expand(self.num_units).clone() if t.dim() == 0 else t.clone()

    @property
    def device(self) -> torch.device:
        """The device every tensor of this region lives on."""
        return self._device

    # connections ---------------------------------------------------------------

    def add_connection(self, dst_region_name: str, dst_region_units: int,
                       sparsity: float | None = None, zero_connection: bool = False) -> None:
        """Declare the projection from this region to ``dst_region_name``.

        ``sparsity`` ``s`` is the fraction of each source unit's weights
        *removed*: every column loses ``ceil(s * dst_region_units)`` entries,
        drawn from a numpy generator seeded by torch's RNG (mRNNTorch's
        behaviour, although its docstrings call ``s`` the fraction kept).
        ``zero_connection=True`` declares an empty block (mask and signs 0).
        The weights start at zero. A pair may be declared once.
        """
        spec = ConnectionSpec(self.name, dst_region_name, sparsity, zero_connection)
        n_dst = dst_region_units
        if isinstance(n_dst, bool) or not isinstance(n_dst, numbers.Integral) or n_dst < 1:
            raise MRNNConfigError(
                f"connection {self.name!r} -> {dst_region_name!r}: dst_region_units must be "
                f"an integer >= 1, got {dst_region_units!r}"
            )
        if dst_region_name in self.connections:
            raise MRNNConfigError(
                f"connection {self.name!r} -> {dst_region_name!r}: duplicate connection; "
                f"this region already projects to {dst_region_name!r}"
            )
        if spec.zero_connection:
            mask = np.zeros((n_dst, self.num_units))
        elif spec.sparsity is None:
            mask = np.ones((n_dst, self.num_units))
        else:
            mask = sparse_block_mask(n_dst, self.num_units, spec.sparsity, _torch_seeded_rng())
        mask = torch.as_tensor(mask, dtype=self._dtype, device=self._device)
        sign = mask * (1.0 if self.sign == "pos" else -1.0)
        self.connections[dst_region_name] = Connection(
            parameter=torch.zeros_like(mask), weight_mask=mask, sign_matrix=sign,
            zero_connection=spec.zero_connection)

    def has_connection_to(self, region: str) -> bool:
        """True when this region already declares a connection to ``region``."""
        return region in self.connections

    def _key(self, idx) -> str:
        names = list(self.connections)
        if isinstance(idx, bool) or not isinstance(idx, (int, str)):
            raise MRNNConfigError(
                f"region {self.name!r}: index a connection by destination name or position, "
                f"got {type(idx).__name__} {idx!r}"
            )
        if isinstance(idx, int):
            if not -len(names) <= idx < len(names):
                raise MRNNConfigError(
                    f"region {self.name!r}: connection index {idx} out of range; "
                    f"it has {len(names)} connections"
                )
            return names[idx]
        if idx not in self.connections:
            known = ", ".join(map(repr, names)) or "none yet"
            raise MRNNConfigError(
                f"region {self.name!r} has no connection to {idx!r}; its destinations: {known}"
            )
        return idx

    def __getitem__(self, idx: str | int) -> Connection:
        """The connection to a destination name, or the ``idx``-th one declared."""
        return self.connections[self._key(idx)]

    def __setitem__(self, idx: str | int, connection: Connection) -> None:
        if not isinstance(connection, Connection):
            raise MRNNConfigError(
                f"region {self.name!r}: expected a Connection, got {type(connection).__name__}"
            )
        key = idx if isinstance(idx, str) else self._key(idx)
        self.connections[key] = connection

    # device and dtype ----------------------------------------------------------

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        probe = fn(torch.empty(0, device=self._device, dtype=self._dtype))
        self._device, self._dtype = probe.device, probe.dtype
        self.masks = {k: fn(v) for k, v in self.masks.items()}
        for c in self.connections.values():  # a placeholder's tensors (a view holds none)
            vars(c).update({k: fn(v) for k, v in vars(c).items() if isinstance(v, torch.Tensor)})
        return self

    def extra_repr(self) -> str:
        return f"num_units={self.num_units}, sign={self.sign!r}"


class RecurrentRegion(Region):
    """A recurrent population: ``num_units`` contiguous entries of the hidden state.

    **Arguments:** as :class:`Region`, plus ``base_firing`` (the baseline drive
    ``b`` of its units, one number or one per unit), ``init`` (their initial
    pre-activation), ``parent_region`` (a group name such as ``"alm"`` for
    ``alm_exc`` and ``alm_inhib``) and ``learnable_bias``.

    **Attributes:** ``base_firing`` ``[num_units]`` (an ``nn.Parameter`` when
    ``learnable_bias``) and ``init`` ``[num_units]``; in a model, learned ones are its.
    """

    def __init__(self, num_units: int, base_firing=0.0, init=0.0, sign: str = "pos",
                 parent_region: str | None = None, learnable_bias: bool = False,
                 device=None, *, dtype=None, name: str | None = None):
        nn.Module.__init__(self)
        spec = RecurrentRegionSpec(name or "region", num_units, sign, plain(base_firing),
                                   plain(init), parent_region, learnable_bias)
        self._init_common(spec, device, dtype)
        self.parent_region = spec.parent_region
        self.learnable_bias = spec.learnable_bias
        self.register_buffer("init", self._tensor(spec.init), persistent=False)
        if spec.learnable_bias:
            self.base_firing = nn.Parameter(self._tensor(spec.base_firing))
        else:
            self.register_buffer("base_firing", self._tensor(spec.base_firing), persistent=False)

    def __getattr__(self, name: str):
        source = self.__dict__.get("_learned", {}).get(name)  # see _learn_from
        return super().__getattr__(name) if source is None else source[0][source[1]]

    def _learn_from(self, what: str, tensors, key: str) -> None:
        """Read ``what`` as ``tensors[key]`` (a model's parameter) at each access from now on."""
        if what not in self.__dict__.setdefault("_learned", {}):
            delattr(self, what)  # its own tensor
        self._learned[what] = (tensors, key)

    def extra_repr(self) -> str:
        extra = f", parent_region={self.parent_region!r}" if self.parent_region else ""
        extra += ", learnable_bias=True" if self.learnable_bias else ""
        return super().extra_repr() + extra


class InputRegion(Region):
    """A group of ``num_units`` input channels; ``sign`` applies under Dale's law."""

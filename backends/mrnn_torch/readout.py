"""Readout: a linear map from chosen regions' rates to outputs, as an ``nn.Module``.

The numbers are :func:`mrnn_core.readout.apply_readout`'s; the JAX backend's
``mrnn_jax.readout.Readout`` computes the same from the same arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mrnn_core import MRNNConfigError, NetworkSpec
from mrnn_core import readout as core

from ._base import mRNNBase
from ._device import resolve_device, resolve_dtype


def _network(model_or_spec):
    """``(spec, device, dtype)`` of a model; a bare spec has no device or dtype of its own."""
    if isinstance(model_or_spec, mRNNBase):
        return model_or_spec._spec, model_or_spec.device, model_or_spec._dtype
    if isinstance(model_or_spec, NetworkSpec):
        return model_or_spec, None, None
    raise MRNNConfigError(
        f"Readout: expected an mrnn_torch model or a mrnn_core.NetworkSpec to read from, "
        f"got {type(model_or_spec).__name__}")


def _contiguous(index: np.ndarray) -> slice | None:
    """``index`` as a slice when it is one unbroken run (reading a view, not a copy)."""
    start, stop = int(index[0]), int(index[-1]) + 1
    return slice(start, stop) if stop - start == index.size else None


class Readout(nn.Module):
    """``y = hs[..., idx] @ W_eff.T + b``: outputs ``[..., O]`` from rates ``hs`` ``[..., H]``.

    ``idx`` are the units of ``regions`` (region or parent names), in
    hidden-vector order (:func:`mrnn_core.readout.readout_units`); ``W_eff =
    |weight|`` with ``dale=True`` (which also reads only excitatory regions),
    else ``weight``. Equivalent to ``nn.Linear(n, O)`` applied to the chosen units::

        y = hs[..., readout.readout_index] @ readout.effective_weight.T + readout.bias

    **Arguments:** ``model_or_spec`` (an mrnn_torch model or a
    :class:`mrnn_core.NetworkSpec`), ``regions``, ``out_features`` (``O``),
    ``dale``, ``bias``, ``seed`` (the numpy seed of the default weights,
    :func:`mrnn_core.readout.init_readout`; ``None`` draws it from torch's RNG,
    so ``torch.manual_seed`` makes it reproducible), ``device`` and ``dtype``
    (default: the model's; for a spec, CUDA when available and torch's dtype).

    **Parameters** (the ``state_dict`` keys, as ``nn.Linear``'s): ``weight``
    ``[O, n]``, ``bias`` ``[O]`` (``None`` when ``bias=False``). The buffer
    ``readout_index`` ``[n]`` (int64) is derived from the spec and not saved.
    """

    def __init__(self, model_or_spec, regions, out_features: int, dale: bool = False,
                 bias: bool = True, seed=None, device=None, dtype=None):
        super().__init__()
        spec, model_device, model_dtype = _network(model_or_spec)
        readout = core.ReadoutSpec(regions, out_features, dale, bias)
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        params = core.init_readout(spec, readout, seed)
        self._setup(spec, readout, params, model_device if device is None else device,
                    model_dtype if dtype is None else dtype)

    def _setup(self, spec: NetworkSpec, readout: core.ReadoutSpec, params: dict, device, dtype):
        device, dtype = resolve_device(device), resolve_dtype(dtype)
        index = core.readout_units(spec, readout)
        self.spec = spec
        self.readout_spec = readout
        self._slice = _contiguous(index)
        self.register_buffer("readout_index", torch.as_tensor(index, device=device),
                             persistent=False)
        as_tensor = lambda a: torch.tensor(a, device=device, dtype=dtype)  # noqa: E731
        self.weight = nn.Parameter(as_tensor(params["W"]))
        if readout.bias:
            self.bias = nn.Parameter(as_tensor(params["b"]))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_params(cls, spec: NetworkSpec, readout_spec: core.ReadoutSpec, W, b=None,
                    device=None, dtype=None) -> Readout:
        """A readout holding exactly ``W`` ``[O, n]`` and ``b`` ``[O]`` (numpy arrays; nothing drawn).

        ``device`` CUDA when available if ``None``; ``dtype`` torch's default if ``None``.
        """
        if not isinstance(spec, NetworkSpec):
            raise MRNNConfigError(
                f"Readout.from_params: expected a mrnn_core.NetworkSpec, got {type(spec).__name__}")
        params = core.check_readout_params(spec, readout_spec, W, b)
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._setup(spec, readout_spec, params, device, dtype)
        return self

    @classmethod
    def from_checkpoint(cls, checkpoint, device=None, dtype=None) -> Readout:
        """The readout a :class:`mrnn_core.Checkpoint` holds (its ``readout`` field)."""
        readout, params = core.checkpoint_readout(checkpoint)
        return cls.from_params(checkpoint.spec, readout, params["W"], params["b"], device, dtype)

    @property
    def effective_weight(self) -> torch.Tensor:
        """``W_eff`` ``[O, n]``: ``|weight|`` for a Dale readout, else ``weight``."""
        return self.weight.abs() if self.readout_spec.dale else self.weight

    def forward(self, hs: torch.Tensor) -> torch.Tensor:
        """``hs`` ``[..., H]`` (any leading axes, e.g. ``[B, T, H]``) -> ``[..., O]``."""
        core.check_readout_input(self.spec.hidden_size, hs.shape)
        read = hs[..., self._slice] if self._slice is not None else hs.index_select(-1, self.readout_index)
        return F.linear(read, self.effective_weight, self.bias)

    def params(self) -> dict:
        """``{"W": [O, n], "b": [O]}`` as float64 numpy copies (``b`` zero without bias)."""
        # np.array copies: a CPU float64 tensor's .numpy() would share its storage.
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy().copy()  # noqa: E731
        b = np.zeros(self.readout_spec.out_features) if self.bias is None else as_numpy(self.bias)
        return {"W": as_numpy(self.weight), "b": b}

    def add_to_checkpoint(self, checkpoint):
        """A copy of ``checkpoint`` that also holds this readout (``readout_W``, ``readout_b``).

        ``checkpoint`` must describe a network in which this readout reads the same units.
        """
        return core.checkpoint_with_readout(checkpoint, self.readout_spec, **self.params(),
                                       built_for=self.spec)

    def extra_repr(self) -> str:
        """What it reads and its non-default flags (:func:`mrnn_core.readout.describe_readout`)."""
        return core.describe_readout(self.readout_spec, self.readout_index.numel())


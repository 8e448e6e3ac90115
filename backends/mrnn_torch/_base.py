"""mRNNBase: build a network region by region, finalise it from mrnn_core, run it.

The model keeps a :class:`mrnn_core.NetworkSpec` that every ``add_*`` call
extends (so the core validates, and a rejected call leaves the model as it
was), the region objects of mRNNTorch's API, and, once finalised, the
tensors below. The dynamics are :func:`mrnn_torch.simulate`.

The class is assembled from one mixin per responsibility:
:mod:`._build` (``add_*``, freezing, finalising: edits of the spec),
:mod:`._regions` (region objects, ``model[name]``), :mod:`._params`
(parameters, buffers, device and dtype), :mod:`._state` (time constants,
noise, initial state, the forward call) and :mod:`._checkpoint`
(``load_state_dict``, ``to_checkpoint`` / ``from_checkpoint``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from mrnn_core import Dynamics, MRNNConfigError, NetworkSpec, describe, load_config, unit_tau
from mrnn_core.dynamics import check_alpha

from ._build import BuildMixin
from ._checkpoint import CheckpointMixin, _check_before_load
from ._compat import tensors_of
from ._device import resolve_device, resolve_dtype
from ._functional import get_activation
from ._helpers import RegionHelpers
from ._params import _PENDING, _STRUCTURE, ParamsMixin, _fill_missing_biases, _fill_pending
from ._params import _hide_pending
from ._regions import RegionsMixin
from ._state import StateMixin
from .region import InputRegion, RecurrentRegion


class _DynamicsField:
    """A model attribute that reads, and on assignment replaces, a field of
    ``model.dynamics`` (so the frozen record stays the one source of truth)."""

    def __init__(self, field: str):
        self.field = field

    def __get__(self, model, owner=None):
        return self if model is None else getattr(model.dynamics, self.field)

    def __set__(self, model, value):
        model._replace_dynamics(f"model.{self.field} = {value!r}", **{self.field: value})


class mRNNBase(BuildMixin, RegionsMixin, ParamsMixin, StateMixin, CheckpointMixin, RegionHelpers,
               nn.Module):
    """A multi-regional RNN with mRNNTorch's API; subclasses pick the dynamics.

    **Arguments:** ``config`` (an mRNNTorch JSON path, a dict in that format,
    or a :class:`mrnn_core.NetworkSpec`; ``None`` to build by hand),
    ``activation`` (``relu``, ``tanh``, ``sigmoid``, ``softplus``, ``linear``),
    ``noise_level_act`` / ``noise_level_inp`` (``sigma_x`` / ``sigma_u``),
    ``rec_constrained`` / ``inp_constrained`` (Dale's law), ``batch_first``,
    ``spectral_radius`` (target radius of the effective ``W_rec`` at
    finalisation), ``config_finalize`` (right after reading ``config``,
    finalise the recurrent side if the config lists recurrent connections and
    the input side if it lists input connections (or has no input regions),
    as mRNNTorch does; a side
    the config leaves unwired stays open for ``add_*`` calls and
    ``finalize_connectivity()``; pass False to keep both open), ``device`` (``None``: CUDA when available, else CPU);
    keyword-only ``dt``, ``tau`` (the default time constant of regions that
    set none), ``balance_ei`` (at finalisation, before spectral-radius
    scaling, scale each unit's inhibitory recurrent weights so its expected
    excitatory and inhibitory input cancel), ``seed`` (masks and initial weights are drawn
    by :mod:`mrnn_core` from it; ``None`` draws it from torch's RNG, so
    ``torch.manual_seed`` makes construction reproducible), ``dtype``
    (default: torch's) and ``allow_unstable_alpha`` (leaky: accept
    ``alpha = dt / tau > 1``, which is refused by default for every unit, at
    construction, ``add_*`` calls and ``model.dt`` / ``model.tau``
    assignments; see :func:`mrnn_core.dynamics.check_alpha`).

    **Parameters and buffers** (the ``state_dict`` keys, as in mRNNTorch):
    ``W_rec`` ``[H, H]`` and ``W_inp`` ``[H, I]`` (parameters, ``None`` until
    finalised; before that, ``parameters()`` lists an empty stand-in for each,
    which finalising fills and makes ``W_rec`` / ``W_inp``, so an optimiser
    built before ``finalize_connectivity()`` still trains them; the stand-ins
    are not in the ``state_dict``); buffers ``W_rec_mask``,
    ``W_rec_sign_matrix`` ``[H, H]`` and ``W_inp_mask``, ``W_inp_sign_matrix``
    ``[H, I]``, never trained; and a parameter ``base_firing_<region>`` ``[n]`` per region with
    ``learnable_bias``, ``init_<region>`` ``[n]`` per region with
    ``learnable_init`` (its initial pre-activation, used when a call gives no
    ``x0``/``h0``) and ``log_tau_<region>`` ``[n]`` per region with
    ``learnable_tau`` (``tau = exp(log_tau)``, so it stays positive; the
    created or loaded value is kept exactly); ``.``
    in a region name becomes ``_``. A state_dict without these keys (as
    mRNNTorch saves) still loads strictly.

    **Time constants:** ``model.tau`` ``[H]`` holds each unit's time constant
    (its region's ``tau``, learned or fixed, else ``dynamics.tau``);
    ``alpha = dt / tau`` per unit.

    **Freezing:** a connection or region with ``trainable=False`` (from the
    config, ``add_*(..., trainable=False)`` or :meth:`freeze`) gets exactly
    zero gradient in its block of ``W_rec`` / ``W_inp``, so optimiser steps
    leave it unchanged; weight decay, which acts on the raw parameter
    whatever its gradient, still shrinks it (use a parameter group without
    decay, or none, if that matters).

    Every matrix is ``[destination, source]``; ``H`` / ``I`` are the total
    recurrent units / input channels, regions in insertion order.

    **Speed:** ``model.recurrence`` (default ``"auto"``) is passed to
    :func:`mrnn_torch.simulate`: ``"dense"``, ``"blocks"`` (only the mask's
    nonzero blocks) or ``"autograd"`` (plain loop, for double backward).
    """

    _kind = "leaky"
    recurrence = "auto"

    rec_constrained = _DynamicsField("rec_constrained")
    inp_constrained = _DynamicsField("inp_constrained")
    batch_first = _DynamicsField("batch_first")
    spectral_radius = _DynamicsField("spectral_radius")
    balance_ei = _DynamicsField("balance_ei")
    allow_unstable_alpha = _DynamicsField("allow_unstable_alpha")
    dt = _DynamicsField("dt")
    noise_level_act = sigma_recur = _DynamicsField("noise_level_act")
    noise_level_inp = sigma_input = _DynamicsField("noise_level_inp")


    def __init__(self, config=None, activation: str = "relu", noise_level_act: float = 0.01,
                 noise_level_inp: float = 0.01, rec_constrained: bool = True,
                 inp_constrained: bool = True, batch_first: bool = True,
                 spectral_radius: float | None = None, config_finalize: bool = True,
                 device=None, *, dt: float = 10.0, tau: float = 100.0, seed=None, dtype=None,
                 balance_ei: bool = False, allow_unstable_alpha: bool = False):
        super().__init__()
        self._tensors = tensors_of(self)  # what region views read (see mrnn_torch.region)
        self.dynamics = Dynamics(self._kind, activation, dt, tau, noise_level_act,
                                 noise_level_inp, rec_constrained, inp_constrained,
                                 batch_first, spectral_radius, balance_ei, allow_unstable_alpha)
        self._device = resolve_device(device)
        self._dtype = resolve_dtype(dtype)
        spec = NetworkSpec() if config is None else load_config(config)
        check_alpha(unit_tau(spec, self.dynamics), self.dynamics, where="spec", spec=spec)
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        try:
            np.random.SeedSequence(seed)
        except (TypeError, ValueError):
            raise MRNNConfigError(f"seed: expected a non-negative integer or None, got {seed!r}") from None
        self.seed = seed
        self.config_finalize = config_finalize
        self.rec_finalized = self.inp_finalized = False
        self.region_dict: dict[str, RecurrentRegion] = {}
        self.inp_dict: dict[str, InputRegion] = {}
        self.region_mask_dict: dict[str, torch.Tensor] = {}
        self._bias_keys: dict[str, str] = {}
        self._init_keys: dict[str, str] = {}
        self._tau_keys: dict[str, str] = {}
        self._spec = NetworkSpec()
        self._trainable_cache = self._tau_cache = None
        self.register_parameter("W_rec", None)
        self.register_parameter("W_inp", None)
        for key in _PENDING.values():
            self.register_parameter(key, nn.Parameter(self._zeros(0, 0)))
        self.register_state_dict_post_hook(_hide_pending)
        self.register_load_state_dict_pre_hook(_fill_pending)
        for name in _STRUCTURE:
            self.register_buffer(name, None)
        # Fixed time constants [H] that differ from what the spec and dynamics
        # say (a checkpoint's, e.g. learned elsewhere); None: the spec's.
        self.register_buffer("_tau_override", None, persistent=False)
        self.register_load_state_dict_pre_hook(_check_before_load)
        self.register_load_state_dict_pre_hook(_fill_missing_biases)
        self._adopt(spec)
        if config is not None and config_finalize:
            # mRNNTorch finalises a side only when the config lists connections
            # for it, so a config of regions can still be wired by hand; a
            # config without input regions has no input side left to wire.
            if spec.recurrent_connections:
                self.finalize_rec_connectivity()
            if spec.input_connections or not spec.input_regions:
                self.finalize_inp_connectivity()

    # small pieces ------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """The device every tensor of the model (regions included) lives on."""
        return self._device

    @property
    def activation(self):
        """The activation ``f`` as a function of a tensor."""
        return get_activation(self.dynamics.activation)

    @property
    def activation_name(self) -> str:
        return self.dynamics.activation

    def _replace_dynamics(self, call: str, **changes) -> None:
        """Set ``dynamics`` fields, refusing (and changing nothing) when a
        changed ``dt``, ``tau`` or ``allow_unstable_alpha`` makes some unit's
        ``alpha = dt / tau`` unsafe (:func:`mrnn_core.dynamics.check_alpha`;
        learned time constants at their current values)."""
        try:
            new = dataclasses.replace(self.dynamics, **changes)
        except MRNNConfigError as err:
            raise MRNNConfigError(f"{call}: {err}") from None
        old = self.dynamics
        if (new.dt, new.tau, new.allow_unstable_alpha) != (old.dt, old.tau,
                                                           old.allow_unstable_alpha):
            check_alpha(self._unit_tau_under(new), new, where=call, spec=self._spec)
        self.dynamics = new

    @property
    def total_num_units(self) -> int:
        """``H``, the recurrent units added so far."""
        return self._spec.hidden_size

    @property
    def total_num_inputs(self) -> int:
        """``I``, the input channels added so far."""
        return self._spec.input_size

    def extra_repr(self) -> str:
        """Regions, sizes, signs and non-default settings (:func:`mrnn_core.describe`)."""
        return describe(self._spec, self.dynamics, open_sides=self._open_sides())

"""mRNNBase: build a network region by region, finalise it from mrnn_core, run it.

The model keeps a :class:`mrnn_core.NetworkSpec` that every ``add_*`` call
extends (so the core validates, and a rejected call leaves the model as it
was), the region objects of mRNNTorch's API, and, once finalised, the
tensors below. The dynamics are :func:`mrnn_torch.simulate`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from mrnn_core import (
    Checkpoint,
    Dynamics,
    MRNNConfigError,
    MRNNStateDictError,
    NetworkSpec,
    Streams,
    balance_ei,
    check_batch_size,
    check_call_shapes,
    check_finite,
    connectivity_from_arrays,
    describe,
    effective_weight,
    init_input_weight,
    init_recurrent_weight,
    input_structure,
    load_config,
    recurrent_structure,
    scale_to_spectral_radius,
    trainable_masks,
    uniform_alpha,
    unit_tau,
)
from mrnn_core.dynamics import check_alpha

from mrnn_core.checkpoint import check_is_checkpoint
from mrnn_core.validate import check_array, check_structure, expected_shapes

from ._compat import own_state_keys
from ._device import resolve_device, resolve_dtype
from ._functional import effective_weights as _effective_weights
from ._functional import call_input, get_activation, simulate
from ._helpers import RegionHelpers
from .region import Connection, InputRegion, RecurrentRegion, plain

_STRUCTURE = ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")


def _slices(regions) -> dict[str, slice]:
    out, start = {}, 0
    for r in regions:
        out[r.name] = slice(start, start + r.num_units)
        start += r.num_units
    return out


# Per-region trained vectors: quantity -> (spec flag, parameter-name prefix).
_REGION_PARAMS = {"base_firing": ("learnable_bias", "base_firing_"),
                  "init": ("learnable_init", "init_"),
                  "log_tau": ("learnable_tau", "log_tau_")}


def _param_key(what: str, name: str) -> str:
    # torch parameter names cannot hold '.', the state_dict separator
    return _REGION_PARAMS[what][1] + name.replace(".", "_")


def _bias_key(name: str) -> str:
    return _param_key("base_firing", name)


def _fill_missing_biases(module, state_dict, prefix, *_):
    """A state_dict saved without the per-region parameters (mRNNTorch never
    saved learnable biases; older mrnn files have no init or tau ones) loads
    strictly: the missing ones keep their current values."""
    for keys in (module._bias_keys, module._init_keys, module._tau_keys):
        for key in keys.values():
            state_dict.setdefault(prefix + key, getattr(module, key).detach())


def _check_before_load(module, state_dict, prefix, *_):
    """Validate a state_dict before torch copies any of it (see :meth:`mRNNBase._check_state_dict`).

    torch tells a module's hooks nothing of ``strict``; :meth:`mRNNBase.load_state_dict`
    records it, so key checks happen when the model itself is loaded."""
    try:
        module._check_state_dict(state_dict, prefix, getattr(module, "_loading_strict", None))
    except MRNNStateDictError:
        raise
    except MRNNConfigError as err:
        raise MRNNStateDictError(str(err)) from None


def _as_array(value):
    """A tensor (any device, bfloat16 included) or array-like as a numpy array, for checking."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.cpu().numpy()
    return value
# Before finalising, W_rec and W_inp are None (mRNNTorch's API), but an empty
# parameter per matrix stands in for each in parameters(): finalising fills it
# and makes it W_rec / W_inp, so an optimiser built first still trains them.
_PENDING = {"W_rec": "_W_rec_pending", "W_inp": "_W_inp_pending"}


def _hide_pending(module, state_dict, prefix, local_metadata):
    """The stand-ins are not state: an unfinalised model's state_dict keeps its keys."""
    for key in _PENDING.values():
        state_dict.pop(prefix + key, None)


def _fill_pending(module, state_dict, prefix, *_):
    """A state_dict never holds the stand-ins: loading one keeps the model's."""
    for key in _PENDING.values():
        pending = getattr(module, key, None)
        if pending is not None:
            state_dict.setdefault(prefix + key, pending.detach())


def _resync_after_load(module, incompatible_keys):
    """``load_state_dict(assign=True)`` replaces tensors: point the regions at the new ones."""
    module._sync_regions()


class _DynamicsField:
    """A model attribute that reads, and on assignment replaces, a field of
    ``model.dynamics`` (so the frozen record stays the one source of truth)."""

    def __init__(self, field: str):
        self.field = field

    def __get__(self, model, owner=None):
        return self if model is None else getattr(model.dynamics, self.field)

    def __set__(self, model, value):
        model._replace_dynamics(f"model.{self.field} = {value!r}", **{self.field: value})


class mRNNBase(RegionHelpers, nn.Module):
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
        self._layout_cache = None
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
        self.register_load_state_dict_post_hook(_resync_after_load)
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

    @property
    def tau(self) -> torch.Tensor:
        """``[H]`` time constants (ms): each region's own ``tau`` (``exp(log_tau)``
        where learned), else ``dynamics.tau``. Assigning a number sets
        ``dynamics.tau``, the default of regions that set none."""
        H = self.total_num_units
        key = (self.dynamics.tau, self._device, self._dtype)
        cache = self._tau_cache
        if cache is None or cache[0] is not self._spec or cache[1] != key:
            cache = self._tau_cache = (self._spec, key,
                                       self._tensor(unit_tau(self._spec, self.dynamics)))
        fixed = cache[2] if self._tau_override is None else self._tau_override
        if not self._tau_keys:
            return fixed
        parts = [self._learned_tau(r.name) if r.name in self._tau_keys else fixed[rows]
                 for r, rows in zip(self._spec.recurrent_regions,
                                    _slices(self._spec.recurrent_regions).values())]
        return torch.cat(parts) if parts else self._zeros(H)

    def _learned_tau(self, name: str) -> torch.Tensor:
        """``exp(log_tau)`` of a learnable region, written ``tau_0 exp(log_tau -
        log_tau_0)`` with ``(tau_0, log_tau_0)`` the values it was created or
        loaded with: the same function (and gradient), but exactly ``tau_0``
        while the parameter is unchanged, so checkpoints round-trip bit for bit
        (``exp(log(t))`` need not be ``t``)."""
        key = self._tau_keys[name]
        tau0, log_tau0 = (getattr(self, "_anchor_" + k) for k in (key, "0" + key))
        return tau0 * torch.exp(getattr(self, key) - log_tau0)

    def _set_tau_anchor(self, name: str, tau0: torch.Tensor) -> None:
        key = self._tau_keys[name]
        self.register_buffer("_anchor_" + key, tau0.detach().clone(), persistent=False)
        self.register_buffer("_anchor_0" + key, getattr(self, key).detach().clone(),
                             persistent=False)

    @tau.setter
    def tau(self, value) -> None:
        self._replace_dynamics(f"model.tau = {value!r}", tau=value)

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

    def _unit_tau_under(self, dynamics: Dynamics) -> np.ndarray:
        """``[H]`` float64 time constants the units would have under ``dynamics``
        (a checkpoint's fixed ones and learned ones as they are now)."""
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        tau = (unit_tau(self._spec, dynamics) if self._tau_override is None
               else as_numpy(self._tau_override).copy())
        for name, rows in _slices(self._spec.recurrent_regions).items():
            if name in self._tau_keys:
                tau[rows] = as_numpy(self._learned_tau(name))
        return tau

    @property
    def _own_tau(self) -> bool:
        """Whether some region sets or learns its own time constant."""
        return self._tau_override is not None or any(
            r.tau is not None or r.learnable_tau for r in self._spec.recurrent_regions)

    @property
    def alpha(self):
        """``dt / tau``: a float when every unit shares one time constant
        (always 1 for Elman), else ``[H]`` (differentiable where learned)."""
        if self.dynamics.kind != "leaky" or not self._own_tau:
            return self.dynamics.alpha
        tau = self.tau
        alpha = uniform_alpha(tau.detach().to("cpu", torch.float64).numpy(), self.dynamics)
        return alpha if isinstance(alpha, float) else self.dynamics.dt / tau

    @property
    def hid_noise_const(self):
        """``c_x``: leaky ``sqrt(2 alpha sigma_x^2) / alpha`` (``[H]`` when alpha is
        per unit); Elman ``sigma_x``. The constant the forward pass uses."""
        return self.dynamics.hid_noise_vector(self.alpha)

    @property
    def inp_noise_const(self) -> float:
        """``c_u``: leaky ``sqrt(2 alpha sigma_u^2) / alpha`` (the shared alpha, or
        ``Dynamics.tau``'s when units differ); Elman ``sigma_u``."""
        return self.dynamics.inp_noise_for(self.alpha)

    @property
    def total_num_units(self) -> int:
        """``H``, the recurrent units added so far."""
        return self._spec.hidden_size

    @property
    def total_num_inputs(self) -> int:
        """``I``, the input channels added so far."""
        return self._spec.input_size

    def _zeros(self, *shape) -> torch.Tensor:
        return torch.zeros(shape, device=self._device, dtype=self._dtype)

    def _tensor(self, a) -> torch.Tensor:
        return torch.tensor(np.asarray(a), device=self._device, dtype=self._dtype)

    @property
    def _layout(self):
        """The spec's layout as a :class:`mrnn_core.Connectivity` (its masks are
        placeholders: only names, slices and parents are read from it)."""
        if self._layout_cache is None or self._layout_cache.spec is not self._spec:
            H, I = self.total_num_units, self.total_num_inputs
            z_rec, z_inp = np.zeros((H, H)), np.zeros((H, I))
            self._layout_cache = connectivity_from_arrays(self._spec, z_rec, z_rec, z_inp, z_inp)
        return self._layout_cache

    # building ----------------------------------------------------------------

    def _check_open(self, call: str, side: str, why: str | None = None) -> None:
        if self.rec_finalized if side == "recurrent" else self.inp_finalized:
            raise MRNNConfigError(
                f"{call}: {side} connectivity is already finalised; "
                + (why or f"add every {side} region and connection before finalising it")
                + " (a config finalises each side whose connections it lists, unless "
                  "config_finalize=False)"
            )

    def _attach_recurrent(self, r) -> None:
        region = RecurrentRegion(r.num_units, r.base_firing, r.init, r.sign, r.parent_region,
                                 r.learnable_bias, self._device, dtype=self._dtype, name=r.name)
        self.region_dict[r.name] = region
        self._register_region_params(r, region)

    def _register_region_params(self, r, region, keep_tau: bool = False) -> None:
        """(Re)register region ``r``'s learnable bias, init and log tau as model parameters.

        The bias and init parameters are the region's own tensors (made
        parameters here); ``log_tau`` starts at ``log`` of the region's tau.
        ``keep_tau`` keeps an existing ``log_tau`` (a region replaced by
        ``model[name] = ...`` keeps what it learned).
        """
        for what, keys in (("base_firing", self._bias_keys), ("init", self._init_keys),
                           ("log_tau", self._tau_keys)):
            if what == "log_tau" and keep_tau:
                continue
            key = _param_key(what, r.name)
            keys.pop(r.name, None)
            for old in (key, "_anchor_" + key, "_anchor_0" + key):
                if getattr(self, old, None) is not None:
                    delattr(self, old)
            if not getattr(r, _REGION_PARAMS[what][0]) or (what == "log_tau"
                                                           and self._kind != "leaky"):
                continue  # an Elman network has no time constant to learn
            if what == "log_tau":
                tau = self.dynamics.tau if r.tau is None else r.tau
                tau0 = torch.full((r.num_units,), tau, device=self._device, dtype=self._dtype)
                value = nn.Parameter(tau0.log())
            else:
                value = getattr(region, what)
                if not isinstance(value, nn.Parameter):
                    value = nn.Parameter(value.detach().clone())
                setattr(region, what, value)
            keys[r.name] = key
            self.register_parameter(key, value)
            if what == "log_tau":
                self._set_tau_anchor(r.name, tau0)

    def _check_bias_key(self, r) -> None:
        """Reject a region whose parameter names would clash with another region's."""
        for what, (flag, _) in _REGION_PARAMS.items():
            key = _param_key(what, r.name)
            if getattr(r, flag) and isinstance(getattr(self, key, None), nn.Parameter):
                raise MRNNConfigError(
                    f"recurrent region {r.name!r}: its {flag} parameter would be stored as "
                    f"{key!r}, which another region already uses ('.' becomes '_'); rename one"
                )

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

    def _adopt(self, spec: NetworkSpec) -> None:
        """Regions and placeholder connections for every entry of a valid spec."""
        for r in spec.recurrent_regions:
            self._check_bias_key(r)
            self._attach_recurrent(r)
        for r in spec.input_regions:
            self.inp_dict[r.name] = InputRegion(r.num_units, r.sign, self._device,
                                                dtype=self._dtype, name=r.name)
        for sources, connections in ((self.region_dict, spec.recurrent_connections),
                                     (self.inp_dict, spec.input_connections)):
            for c in connections:
                sources[c.src_region].add_connection(
                    c.dst_region, self.region_dict[c.dst_region].num_units,
                    zero_connection=c.zero_connection)
        self._set_spec(spec)

    def add_recurrent_region(self, name: str, num_units: int, sign: str = "pos",
                             base_firing=0.0, init=0.0, device=None,
                             parent_region: str | None = None, learnable_bias: bool = False,
                             *, tau: float | None = None, learnable_tau: bool = False,
                             learnable_init: bool = False, trainable: bool = True) -> None:
        """Append a recurrent region of ``num_units`` units (``H`` grows by that).

        ``sign`` (``pos``/``exc`` or ``neg``/``inhib``) is the sign of its
        outgoing weights under Dale's law; ``base_firing`` (``b``) and ``init``
        (initial pre-activation) are one number or one per unit;
        ``parent_region`` groups regions under one name; ``learnable_bias``
        makes ``b`` a trained parameter. ``device`` is accepted for mRNNTorch
        code and ignored: the model's device rules.

        Beyond mRNNTorch: ``tau`` is the region's own time constant (ms; its
        units then step with ``alpha = dt / tau``; ``None`` uses the model's
        ``tau``); ``learnable_tau`` trains it per unit (as ``log_tau``);
        ``learnable_init`` trains ``init``; ``trainable=False`` freezes every
        weight into the region (its rows of ``W_rec`` and ``W_inp``).
        """
        call = f"add_recurrent_region({name!r})"
        self._check_open(call, "recurrent")
        self._check_open(call, "input", "W_inp has one row per recurrent unit, so recurrent "
                                        "regions must all be added before finalising it")
        spec = self._spec.with_recurrent_region(
            name, num_units, sign=sign, base_firing=plain(base_firing), init=plain(init),
            parent_region=parent_region, learnable_bias=learnable_bias, tau=tau,
            learnable_tau=learnable_tau, learnable_init=learnable_init, trainable=trainable)
        check_alpha(unit_tau(spec, self.dynamics), self.dynamics, where=call, spec=spec)
        self._check_bias_key(spec.recurrent_regions[-1])
        self._attach_recurrent(spec.recurrent_regions[-1])
        self._set_spec(spec)

    def add_ei_area(self, name: str, num_units: int, exc_pct: float = 0.8, **region_fields) -> None:
        """Append an E/I area: regions ``<name>_exc`` (sign ``pos``,
        ``round(exc_pct * num_units)`` units) and ``<name>_inh`` (sign ``neg``,
        the rest), both with ``parent_region=name`` (nn4n's ``exc_pct``).

        ``region_fields`` are :meth:`add_recurrent_region` keywords given to
        both (``base_firing``/``init`` of ``num_units`` numbers are split).
        Connections naming ``name`` expand to its two populations.
        """
        call = f"add_ei_area({name!r})"
        self._check_open(call, "recurrent")
        self._check_open(call, "input", "W_inp has one row per recurrent unit, so recurrent "
                                        "regions must all be added before finalising it")
        region_fields.pop("device", None)
        for key in ("base_firing", "init"):
            if key in region_fields:
                region_fields[key] = plain(region_fields[key])
        spec = self._spec.with_ei_area(name, num_units, exc_pct, **region_fields)
        check_alpha(unit_tau(spec, self.dynamics), self.dynamics, where=call, spec=spec)
        new = spec.recurrent_regions[len(self._spec.recurrent_regions):]
        for r in new:
            self._check_bias_key(r)
        if _param_key("base_firing", new[0].name) == _param_key("base_firing", new[1].name):
            raise MRNNConfigError(f"{call}: its regions' parameter names would clash; rename it")
        for r in new:
            self._attach_recurrent(r)
        self._set_spec(spec)

    def add_input_region(self, name: str, num_units: int, sign: str = "pos", device=None) -> None:
        """Append an input region of ``num_units`` channels (``I`` grows by that).
        ``device`` is accepted and ignored: the model's device rules."""
        self._check_open(f"add_input_region({name!r})", "input")
        spec = self._spec.with_input_region(name, num_units, sign)
        r = spec.input_regions[-1]
        self.inp_dict[name] = InputRegion(r.num_units, r.sign, self._device,
                                          dtype=self._dtype, name=name)
        self._set_spec(spec)

    def add_recurrent_connection(self, src_region: str, dst_region: str,
                                 sparsity: float | None = None, zero_connection: bool = False,
                                 *, density: float | None = None, mask=None,
                                 trainable: bool = True, routes=None) -> None:
        """Declare the projection ``src_region -> dst_region`` between recurrent regions.

        ``sparsity`` ``s`` is the fraction of each source unit's weights
        removed (``ceil(s * n_dst)`` per column; mRNNTorch's behaviour);
        ``None`` is dense. Masks and weights are drawn at finalisation.

        Beyond mRNNTorch: ``density`` ``p`` keeps each entry independently
        with probability ``p`` (nn4n's rule); ``mask`` is an explicit 0/1
        block ``[n_dst, n_src]`` (array-like or tensor); at most one of
        ``sparsity``, ``density`` and ``mask``. ``trainable=False`` freezes
        the block. A parent name (an E/I area) on either side declares one
        connection per pair of its regions; ``routes`` (some of ``"E->E"``,
        ``"E->I"``, ``"I->E"``, ``"I->I"``; default all) keeps the pairs
        whose source and destination signs match.
        """
        self._check_open(f"add_recurrent_connection({src_region!r}, {dst_region!r})", "recurrent")
        spec = self._spec.with_recurrent_connection(
            src_region, dst_region, sparsity, zero_connection, density=density, mask=mask,
            trainable=trainable, routes=routes)
        self._attach_connections(self.region_dict, spec.recurrent_connections,
                                 len(self._spec.recurrent_connections))
        self._set_spec(spec)

    def add_input_connection(self, src_region: str, dst_region: str,
                             sparsity: float | None = None, zero_connection: bool = False,
                             *, density: float | None = None, mask=None,
                             trainable: bool = True, routes=None) -> None:
        """Declare the projection from input region ``src_region`` to recurrent
        region (or parent) ``dst_region``; the other arguments as in
        :meth:`add_recurrent_connection` (``routes`` filters by the
        destination's sign: ``"E->E"``/``"I->E"`` reach excitatory regions)."""
        self._check_open(f"add_input_connection({src_region!r}, {dst_region!r})", "input")
        spec = self._spec.with_input_connection(
            src_region, dst_region, sparsity, zero_connection, density=density, mask=mask,
            trainable=trainable, routes=routes)
        self._attach_connections(self.inp_dict, spec.input_connections,
                                 len(self._spec.input_connections))
        self._set_spec(spec)

    def _attach_connections(self, sources, connections, start: int) -> None:
        """Placeholder region connections for ``connections[start:]`` (the new ones)."""
        for c in connections[start:]:
            sources[c.src_region].add_connection(
                c.dst_region, self.region_dict[c.dst_region].num_units,
                zero_connection=c.zero_connection)

    # freezing ----------------------------------------------------------------

    def freeze(self, *targets):
        """Freeze projections: their weights get exactly zero gradient.

        A target is a recurrent region or parent name (every projection into
        it, recurrent and input; later connections into it are frozen too) or
        a ``(src, dst)`` pair of names (parents expand). Works before and
        after finalising. **Returns:** the model (changed in place).
        """
        self._set_spec(self._spec.with_frozen(*targets))
        return self

    def unfreeze(self, *targets):
        """Undo :meth:`freeze` for ``targets`` (same forms). **Returns:** the model."""
        self._set_spec(self._spec.with_trainable(*targets, trainable=True))
        return self

    def _trainable(self):
        """``(T_rec [H, H], T_inp [H, I])`` 0/1 tensors, each ``None`` when all ones."""
        cache = self._trainable_cache
        if cache is None or cache[0] is not self._spec:
            T = [self._tensor(m) if not np.all(m == 1) else None
                 for m in trainable_masks(self._spec)]
            cache = self._trainable_cache = (self._spec, *T)
        return cache[1:]

    # finalising --------------------------------------------------------------

    def finalize_connectivity(self) -> None:
        """Finalise whichever of the recurrent and input sides is still open."""
        self.finalize_rec_connectivity()
        self.finalize_inp_connectivity()

    def finalize_rec_connectivity(self) -> None:
        """Draw ``W_rec``'s mask, signs and initial weights (undeclared blocks
        zero); then balance E/I input if ``balance_ei`` and scale to
        ``spectral_radius`` if set. A no-op once done."""
        if self.rec_finalized:
            return
        streams = Streams.from_seed(self.seed)
        mask, sign = recurrent_structure(self._spec, streams.recurrent_mask)
        W = init_recurrent_weight(self._spec, self.dynamics.rec_constrained,
                                  streams.recurrent_weight)
        eff = lambda W: effective_weight(W, mask, sign, self.dynamics.rec_constrained)  # noqa: E731
        if self.dynamics.balance_ei:
            W = balance_ei(W, eff(W))
        if self.dynamics.spectral_radius is not None:
            W = scale_to_spectral_radius(W, eff(W), self.dynamics.spectral_radius)
        self._set_recurrent(W, mask, sign)

    def finalize_inp_connectivity(self) -> None:
        """Draw ``W_inp``'s mask, signs and initial weights. A no-op once done."""
        if self.inp_finalized:
            return
        streams = Streams.from_seed(self.seed)
        mask, sign = input_structure(self._spec, streams.input_mask)
        W = init_input_weight(self._spec, self.dynamics.inp_constrained, streams.input_weight)
        self._set_input(W, mask, sign)

    def _new_weight(self, name: str, W) -> nn.Parameter:
        """``W`` as the parameter ``name``: the stand-in that ``parameters()``
        listed before finalising, now holding ``W`` (so an optimiser built
        before finalising trains it), or a new parameter."""
        value = self._tensor(W)
        pending = getattr(self, _PENDING[name], None)
        if pending is None:
            return nn.Parameter(value)
        delattr(self, _PENDING[name])
        pending.data = value
        return pending

    def _set_recurrent(self, W, mask, sign) -> None:
        self.W_rec = self._new_weight("W_rec", W)
        self.W_rec_mask, self.W_rec_sign_matrix = self._tensor(mask), self._tensor(sign)
        self.rec_finalized = True
        self._sync_regions()

    def _set_input(self, W, mask, sign) -> None:
        self.W_inp = self._new_weight("W_inp", W)
        self.W_inp_mask, self.W_inp_sign_matrix = self._tensor(mask), self._tensor(sign)
        self.inp_finalized = True
        self._sync_regions()

    def _sync_regions(self) -> None:
        """Point the regions at the model's tensors: learnable biases are the
        model's parameters, and each connection of a finalised side views its
        block of the model's matrices (every region then has a connection to
        every recurrent region; undeclared ones are zero connections)."""
        for name, key in self._bias_keys.items():
            self.region_dict[name].base_firing = getattr(self, key)
        for name, key in self._init_keys.items():
            self.region_dict[name].init = getattr(self, key)
        rows = _slices(self._spec.recurrent_regions)
        sides = []
        if self.rec_finalized:
            sides.append((self.region_dict, rows, self.W_rec, self.W_rec_mask, self.W_rec_sign_matrix))
        if self.inp_finalized:
            sides.append((self.inp_dict, _slices(self._spec.input_regions), self.W_inp,
                          self.W_inp_mask, self.W_inp_sign_matrix))
        for regions, cols, W, mask, sign in sides:
            W = W.detach()
            for src, region in regions.items():
                for dst, r in rows.items():
                    c = region.connections.setdefault(dst, Connection(zero_connection=True))
                    block = (r, cols[src])
                    c.parameter, c.weight_mask, c.sign_matrix = W[block], mask[block], sign[block]

    def _check_finalised(self, side: str, what: str) -> None:
        open_ = [s for s, done in (("recurrent", self.rec_finalized), ("input", self.inp_finalized))
                 if not done and side in (s, "both")]
        if open_:
            raise MRNNConfigError(
                f"{type(self).__name__}: cannot compute {what} before finalising: "
                f"{' and '.join(open_)} connectivity is still open; call "
                f"finalize_connectivity() after adding every region and connection"
            )

    # devices -----------------------------------------------------------------

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        probe = fn(torch.empty(0, device=self._device, dtype=self._dtype))
        self._device, self._dtype = probe.device, probe.dtype
        for region in (*self.region_dict.values(), *self.inp_dict.values()):
            region._apply(fn)
        self._refresh_region_masks()
        self._sync_regions()
        self._trainable_cache = self._tau_cache = None
        return self

    def __setstate__(self, state):
        # copy.deepcopy and unpickling rebuild W_rec & co. as fresh tensors
        super().__setstate__(state)
        self._sync_regions()

    # state -------------------------------------------------------------------

    @property
    def tonic_inp(self) -> torch.Tensor:
        """The baseline drive ``b`` ``[H]``: every region's ``base_firing``, in order."""
        parts = [getattr(self, self._bias_keys[n]) if n in self._bias_keys else r.base_firing
                 for n, r in self.region_dict.items()]
        return torch.cat(parts) if parts else self._zeros(0)

    @property
    def initial_condition(self) -> torch.Tensor:
        """The initial pre-activation ``[H]``: every region's ``init`` (a
        parameter where ``learnable_init``), in order."""
        parts = [r.init for r in self.region_dict.values()]
        return torch.cat(parts) if parts else self._zeros(0)

    def _default_state(self, inp, stim_input) -> torch.Tensor:
        """``initial_condition`` for a call without ``x0``/``h0``: ``[B, H]``
        for batched inputs (an expanded view, so gradients reach a learnable
        init), ``[H]`` for unbatched ones."""
        ref = inp if inp is not None else stim_input
        init = self.initial_condition
        if ref is None or ref.dim() != 3:
            return init
        batch = ref.shape[0] if self.dynamics.batch_first else ref.shape[1]
        return init.expand(batch, init.shape[0])

    def batched_initial_condition(self, batch_size: int):
        raise NotImplementedError

    def effective_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_rec_eff [H, H], W_inp_eff [H, I])`` as the dynamics use them
        (``M * |W| * S`` under Dale's law, else ``W * M``), differentiable, with
        zero gradient on frozen blocks: the arrays to hand to
        :mod:`mrnn_torch.losses` penalties. The same method as the JAX models'."""
        return _effective_weights(self._params(), self.dynamics)

    def _params(self) -> dict[str, torch.Tensor]:
        """The named tensors :func:`mrnn_torch.simulate` takes.

        Frozen blocks enter as ``W * T + W.detach() * (1 - T)`` (``T`` the
        0/1 trainable mask): the same numbers, zero gradient where ``T = 0``.
        ``tau`` is included only when some region sets its own (else the
        scalar ``dynamics.alpha`` applies, with no per-call check).
        """
        T_rec, T_inp = self._trainable()
        frozen = lambda W, T: W if T is None or W is None else W * T + W.detach() * (1 - T)  # noqa: E731
        params = {"W_rec": frozen(self.W_rec, T_rec), "W_rec_mask": self.W_rec_mask,
                  "W_rec_sign_matrix": self.W_rec_sign_matrix, "W_inp": frozen(self.W_inp, T_inp),
                  "W_inp_mask": self.W_inp_mask, "W_inp_sign_matrix": self.W_inp_sign_matrix,
                  "base_firing": self.tonic_inp}
        if self._own_tau:
            params["tau"] = self.tau
        return params

    def _hid_noise(self, batch_size: int) -> torch.Tensor:
        """``c_x * eps``, ``eps`` standard normal ``[B, H]`` (``c_x`` per unit
        when regions have their own time constants)."""
        return self.hid_noise_const * torch.randn(
            batch_size, self.total_num_units, device=self._device, dtype=self._dtype)

    def _inp_noise(self, batch_size: int) -> torch.Tensor:
        """``c_u * eps``, ``eps`` standard normal ``[B, I]``."""
        return self.inp_noise_const * torch.randn(
            batch_size, self.total_num_inputs, device=self._device, dtype=self._dtype)

    def _noise_draws(self, inp, state, stim_input):
        """Standard-normal ``(eps_x, eps_u)`` in the call's layout, from torch's RNG."""
        size = lambda a: None if a is None else tuple(a.shape)  # noqa: E731
        leaky = self.dynamics.kind == "leaky"
        call = check_call_shapes(
            hidden_size=self.total_num_units, input_size=self.total_num_inputs,
            batch_first=self.dynamics.batch_first, inp=size(inp), state=size(state),
            state_name="x0" if leaky else "h0", stim_input=size(stim_input))
        if not call.batched:
            lead = (call.steps,)
        elif self.dynamics.batch_first:
            lead = (call.batch, call.steps)
        else:
            lead = (call.steps, call.batch)
        return tuple(torch.randn(*lead, n, device=self._device, dtype=self._dtype)
                     for n in (self.total_num_units, self.total_num_inputs))

    def _run(self, inp, state, h0, stim_input, noise, W_rec, eps_x, eps_u, check_finite=False):
        """The forward pass of both subclasses: draw noise if asked, then simulate.
        Given ``eps_x`` / ``eps_u`` are used as they are. Every array argument
        goes through :func:`mrnn_torch._functional.call_input` first (the
        input contract), so numpy arrays and lists work here too."""
        self._check_finalised("both", "a forward pass")
        leaky = self.dynamics.kind == "leaky"
        dtype, device = self.W_rec.dtype, self.W_rec.device
        inp, state, h0, stim_input, W_rec, eps_x, eps_u = (
            call_input(name, a, dtype, device) for name, a in (
                ("inp", inp), ("x0" if leaky else "h0", state), ("h0", h0),
                ("stim_input", stim_input), ("W_rec", W_rec), ("eps_x", eps_x),
                ("eps_u", eps_u)))
        if state is None:
            state = self._default_state(inp, stim_input)
        if noise and (eps_x is None or eps_u is None):
            drawn_x, drawn_u = self._noise_draws(inp, state, stim_input)
            eps_x = drawn_x if eps_x is None else eps_x
            eps_u = drawn_u if eps_u is None else eps_u
        x0, h0 = (state, h0) if leaky else (None, state)
        out = simulate(self._params(), self.dynamics, inp, x0, h0, stim_input=stim_input,
                       W_rec=W_rec, eps_x=eps_x, eps_u=eps_u, recurrence=self.recurrence)
        if check_finite:
            self._check_finite(out[0] if leaky else out, "xs" if leaky else "hs")
        return out

    def _check_finite(self, states, name: str) -> None:
        """:func:`mrnn_core.check_finite` on a forward call's returned states."""
        check_finite(states, self._spec, batch_first=self.dynamics.batch_first, name=name)

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
        if recurrent:
            new = dataclasses.replace(
                self._spec.region(name), sign=region.sign,
                base_firing=tuple(region.base_firing.tolist()), init=tuple(region.init.tolist()),
                parent_region=region.parent_region, learnable_bias=region.learnable_bias)
            regions = tuple(new if r.name == name else r for r in self._spec.recurrent_regions)
            spec = dataclasses.replace(self._spec, recurrent_regions=regions)
        else:
            new = dataclasses.replace(self._spec.region(name), sign=region.sign)
            regions = tuple(new if r.name == name else r for r in self._spec.input_regions)
            spec = dataclasses.replace(self._spec, input_regions=regions)
        region.to(device=self._device, dtype=self._dtype)
        if recurrent:
            self._register_region_params(new, region, keep_tau=True)
        region.name, region.connections = name, old.connections
        (self.region_dict if recurrent else self.inp_dict)[name] = region
        self._set_spec(spec)
        self._sync_regions()

    # checkpoints -------------------------------------------------------------

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """torch's ``load_state_dict``, after checking ``state_dict`` as a checkpoint is.

        Every array is checked before any is copied, so a refused state_dict
        raises :class:`mrnn_core.MRNNStateDictError` (an ``MRNNConfigError``
        and a ``RuntimeError``) naming the key and leaves the model as it was:
        the arrays must be real, finite and of this network's shape; masks
        0/1 and zero where the spec connects nothing (an explicit ``mask``
        fixes its block); sign matrices ``mask * the source region's sign``;
        ``log_tau_<region>`` finite time constants > 0. With ``strict``,
        unknown keys and missing ones are refused too (the per-region
        parameters mRNNTorch never saved may be missing: they keep their
        values). When the model is part of a larger module loaded with that
        module's ``load_state_dict``, the arrays are checked the same way and
        torch itself reports unknown or missing keys, as it always does.
        mRNNTorch state_dicts (keys ``W_rec``, ``W_rec_mask``,
        ``W_rec_sign_matrix``, ``W_inp``, ``W_inp_mask``,
        ``W_inp_sign_matrix``) load strictly.
        """
        self._loading_strict = bool(strict)
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        finally:
            del self._loading_strict

    def _check_state_dict(self, state_dict, prefix: str, strict: bool | None) -> None:
        """Hold a state_dict to the rules of :mod:`mrnn_core.validate` before any copy.

        With ``strict`` True, unknown keys and missing ones (except the
        per-region parameters mRNNTorch never saved) are refused too; ``None``
        (strictness unknown: loaded as part of a larger module) leaves key
        checks to torch. Every given array must be real, finite and of this
        network's shape; masks and sign matrices (given, or the model's where
        ``strict=False`` leaves them out) must be what the spec implies;
        ``log_tau_<region>`` must give finite time constants > 0.
        """
        def label(key):
            return f"load_state_dict: state_dict[{prefix + key!r}]"

        region_keys = {**{k: "base_firing" for k in self._bias_keys.values()},
                       **{k: "init" for k in self._init_keys.values()},
                       **{k: "log_tau" for k in self._tau_keys.values()}}
        own = own_state_keys(self)
        children = {name for name, _ in self.named_children()}
        given = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if strict:
            unexpected = [k for k in given if k not in own and k.split(".")[0] not in children]
            if unexpected:
                open_ = [s for s, done in (("recurrent", self.rec_finalized),
                                           ("input", self.inp_finalized)) if not done]
                hint = (f"; this model's {' and '.join(open_)} connectivity is not finalised yet"
                        if open_ else "")
                raise MRNNStateDictError(
                    f"load_state_dict: Unexpected key(s) "
                    f"{', '.join(repr(prefix + k) for k in unexpected)}; expected only "
                    f"{', '.join(repr(prefix + k) for k in own)}{hint}")
            missing = [k for k in own if k not in given and k not in region_keys]
            if missing:
                raise MRNNStateDictError(
                    f"load_state_dict: Missing key(s) {', '.join(repr(prefix + k) for k in missing)}"
                    f" in state_dict (pass strict=False to keep the model's own)")
        shapes = expected_shapes(self._spec)
        arrays = {}
        for key in ("W_rec", "W_inp", *_STRUCTURE):
            if getattr(self, key) is None:
                continue
            value = given.get(key, getattr(self, key))
            arrays[key] = check_array(label(key), _as_array(value), shapes[key],
                                      structure=key in _STRUCTURE)
        check_structure(self._spec, arrays, {k: label(k) for k in _STRUCTURE})
        rows = _slices(self._spec.recurrent_regions)
        names = {key: name for keys in (self._bias_keys, self._init_keys, self._tau_keys)
                 for name, key in keys.items()}
        for key, what in region_keys.items():
            if key not in given:
                continue
            n = rows[names[key]].stop - rows[names[key]].start
            a = check_array(label(key), _as_array(given[key]), (n,))
            if what == "log_tau":
                with np.errstate(over="ignore", under="ignore"):
                    tau = np.exp(a.astype(np.float64))
                bad = np.flatnonzero(~(np.isfinite(tau) & (tau > 0)))
                if bad.size:
                    raise MRNNStateDictError(
                        f"{label(key)}: expected log time constants whose exp is finite and "
                        f"> 0, got {float(a[bad[0]])!r} at index {int(bad[0])}")

    def to_checkpoint(self) -> Checkpoint:
        """The model as a :class:`mrnn_core.Checkpoint`: spec, dynamics and
        float64 numpy copies of every array (``base_firing`` is the current,
        possibly learned, bias; ``init`` the initial condition, ``tau`` the
        ``[H]`` time constants, both possibly learned).

        With learnable time constants it also holds ``log_tau`` ``[H]`` (the
        learned parameter; ``log(tau)`` elsewhere), so that
        :meth:`from_checkpoint` restores the parameter itself exactly, not
        only ``tau``.
        """
        self._check_finalised("both", "a checkpoint")
        as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
        params = {k: as_numpy(v) for k, v in self._params().items()}
        params["W_rec"], params["W_inp"] = as_numpy(self.W_rec), as_numpy(self.W_inp)
        params["init"] = as_numpy(self.initial_condition)
        params["tau"] = as_numpy(self.tau)
        if self._tau_keys:
            log_tau = np.log(params["tau"])
            for name, rows in _slices(self._spec.recurrent_regions).items():
                if name in self._tau_keys:
                    log_tau[rows] = as_numpy(getattr(self, self._tau_keys[name]))
            params["log_tau"] = log_tau
        return Checkpoint(self._spec, self.dynamics, params)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, device=None, dtype=None):
        """A model holding exactly ``ckpt``'s arrays (nothing is drawn), its
        ``tau`` included (where it differs from the spec's, the model keeps
        the checkpoint's time constants).

        ``device`` as in the constructor; ``dtype`` defaults to torch's default
        dtype. ``model.to_checkpoint()`` then ``from_checkpoint(..., dtype=the
        model's dtype)`` is bit-identical.
        """
        check_is_checkpoint(ckpt, f"{cls.__name__}.from_checkpoint")
        if ckpt.dynamics.kind != cls._kind:
            raise MRNNConfigError(
                f"{cls.__name__}.from_checkpoint: the checkpoint holds a {ckpt.dynamics.kind!r} "
                f"network, expected {cls._kind!r}; load it with "
                f"{'mRNN' if ckpt.dynamics.kind == 'leaky' else 'ElmanmRNN'}.from_checkpoint"
            )
        d = ckpt.dynamics
        check_alpha(ckpt.params["tau"], d, where="checkpoint params['tau']", spec=ckpt.spec)
        model = cls(None, d.activation, d.noise_level_act, d.noise_level_inp, d.rec_constrained,
                    d.inp_constrained, d.batch_first, d.spectral_radius, True, device,
                    seed=0, dtype=dtype)
        model.dynamics = d
        model._adopt(ckpt.spec)
        p = ckpt.params
        model._set_recurrent(p["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"])
        model._set_input(p["W_inp"], p["W_inp_mask"], p["W_inp_sign_matrix"])
        if not np.array_equal(p["tau"], unit_tau(ckpt.spec, d)):
            model._tau_override = model._tensor(p["tau"])
        tau = model._tensor(p["tau"])
        log_tau = model._tensor(p["log_tau"]) if "log_tau" in p else tau.log()
        with torch.no_grad():
            for name, rows in _slices(ckpt.spec.recurrent_regions).items():
                region = model.region_dict[name]
                region.base_firing.copy_(model._tensor(p["base_firing"][rows]))
                region.init.copy_(model._tensor(p["init"][rows]))
                if name in model._tau_keys:
                    getattr(model, model._tau_keys[name]).copy_(log_tau[rows])
                    model._set_tau_anchor(name, tau[rows])
        return model

    def extra_repr(self) -> str:
        """Regions, sizes, signs and non-default settings (:func:`mrnn_core.describe`)."""
        open_sides = [side for side, done in (("recurrent", self.rec_finalized),
                                              ("input", self.inp_finalized)) if not done]
        return describe(self._spec, self.dynamics, open_sides=open_sides)

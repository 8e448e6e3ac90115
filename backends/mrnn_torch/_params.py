"""The model's tensors: parameters, buffers, state_dict hooks, device and dtype."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mrnn_core import MRNNConfigError, trainable_masks

from ._functional import effective_weights as _effective_weights

_STRUCTURE = ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")

# Per-region trained vectors: quantity -> (spec flag, parameter-name prefix).
_REGION_PARAMS = {"base_firing": ("learnable_bias", "base_firing_"),
                  "init": ("learnable_init", "init_"),
                  "log_tau": ("learnable_tau", "log_tau_")}

# Before finalising, W_rec and W_inp are None (mRNNTorch's API), but an empty
# parameter per matrix stands in for each in parameters(): finalising fills it
# and makes it W_rec / W_inp, so an optimiser built first still trains them.
_PENDING = {"W_rec": "_W_rec_pending", "W_inp": "_W_inp_pending"}


def _numpy64(t: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of a tensor (on the CPU, detached)."""
    return t.detach().to("cpu", torch.float64).numpy()


def _param_key(what: str, name: str) -> str:
    # torch parameter names cannot hold '.', the state_dict separator
    return _REGION_PARAMS[what][1] + name.replace(".", "_")


def _fill_missing_biases(module, state_dict, prefix, *_):
    """A state_dict saved without the per-region parameters (mRNNTorch never
    saved learnable biases; older mrnn files have no init or tau ones) loads
    strictly: the missing ones keep their current values."""
    for _, keys in module._region_param_keys():
        for key in keys.values():
            state_dict.setdefault(prefix + key, getattr(module, key).detach())


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


class ParamsMixin:
    """The tensors of :class:`~mrnn_torch.mRNNBase` (see the module docstring)."""

    # tensors on the model's device and dtype ---------------------------------

    def _zeros(self, *shape) -> torch.Tensor:
        return torch.zeros(shape, device=self._device, dtype=self._dtype)

    def _tensor(self, a) -> torch.Tensor:
        return torch.tensor(np.asarray(a), device=self._device, dtype=self._dtype)

    # per-region parameters ---------------------------------------------------

    def _register_region_params(self, r, region, keep_tau: bool = False) -> None:
        """(Re)register region ``r``'s learnable bias, init and log tau as model parameters.

        The bias and init parameters are the region's tensors (made parameters
        here, which the region then reads from the model); ``log_tau`` starts at
        ``log`` of the region's tau. ``keep_tau`` keeps an existing ``log_tau`` (a
        region replaced by ``model[name] = ...`` keeps what it learned).
        """
        for what, keys in self._region_param_keys():
            if what == "log_tau" and keep_tau:
                continue
            key = _param_key(what, r.name)
            value = getattr(region, what, None)  # first: the region may read the one dropped here
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
                if not isinstance(value, nn.Parameter):
                    value = nn.Parameter(value.detach().clone())
                region._learn_from(what, self._tensors, key)
            keys[r.name] = key
            self.register_parameter(key, value)
            if what == "log_tau":
                self._set_tau_anchor(r.name, tau0)

    def _region_param_keys(self):
        """``(quantity, {region name: parameter name})`` for bias, init and log tau."""
        return (("base_firing", self._bias_keys), ("init", self._init_keys),
                ("log_tau", self._tau_keys))

    def _check_bias_key(self, r, others=()) -> None:
        """Reject a region whose parameter names would clash with another
        region's (the model's, or one of ``others`` being added with it)."""
        for what, (flag, _) in _REGION_PARAMS.items():
            key = _param_key(what, r.name)
            if getattr(r, flag) and (isinstance(getattr(self, key, None), nn.Parameter) or any(
                    getattr(o, flag) and _param_key(what, o.name) == key for o in others)):
                raise MRNNConfigError(
                    f"recurrent region {r.name!r}: its {flag} parameter would be stored as "
                    f"{key!r}, which another region already uses ('.' becomes '_'); rename one"
                )

    # the weight matrices -----------------------------------------------------

    def _trainable(self):
        """``(T_rec [H, H], T_inp [H, I])`` 0/1 tensors, each ``None`` when all ones."""
        cache = self._trainable_cache
        if cache is None or cache[0] is not self._spec:
            T = [self._tensor(m) if not np.all(m == 1) else None
                 for m in trainable_masks(self._spec)]
            cache = self._trainable_cache = (self._spec, *T)
        return cache[1:]

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
        self._view_blocks("W_rec", self.region_dict, self._spec.recurrent_regions)

    def _set_input(self, W, mask, sign) -> None:
        self.W_inp = self._new_weight("W_inp", W)
        self.W_inp_mask, self.W_inp_sign_matrix = self._tensor(mask), self._tensor(sign)
        self.inp_finalized = True
        self._view_blocks("W_inp", self.inp_dict, self._spec.input_regions)

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
        scalar ``dynamics.alpha`` applies, with no per-call check), and
        ``log_tau`` only when some region learns it.
        """
        T_rec, T_inp = self._trainable()
        frozen = lambda W, T: W if T is None or W is None else W * T + W.detach() * (1 - T)  # noqa: E731
        params = {"W_rec": frozen(self.W_rec, T_rec), "W_rec_mask": self.W_rec_mask,
                  "W_rec_sign_matrix": self.W_rec_sign_matrix, "W_inp": frozen(self.W_inp, T_inp),
                  "W_inp_mask": self.W_inp_mask, "W_inp_sign_matrix": self.W_inp_sign_matrix,
                  "base_firing": self.tonic_inp}
        if self._own_tau:
            params["tau"] = self.tau
        if self._tau_keys:  # marks the time constants as learned (the input-noise rule)
            params["log_tau"] = params["tau"].log()
        return params

    # devices -----------------------------------------------------------------

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        probe = fn(torch.empty(0, device=self._device, dtype=self._dtype))
        self._device, self._dtype = probe.device, probe.dtype
        for region in (*self.region_dict.values(), *self.inp_dict.values()):
            region._apply(fn)
        self._refresh_region_masks()
        self._trainable_cache = self._tau_cache = None
        return self


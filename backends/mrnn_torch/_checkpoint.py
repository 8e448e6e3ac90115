"""Checkpoints: ``load_state_dict`` (every array checked before any copy) and
:class:`mrnn_core.Checkpoint` conversion."""

from __future__ import annotations

import numpy as np
import torch

from mrnn_core import Checkpoint, MRNNConfigError, MRNNStateDictError, unit_tau
from mrnn_core.checkpoint import check_is_checkpoint
from mrnn_core.connectivity import region_slices as _slices
from mrnn_core.dynamics import check_alpha
from mrnn_core.validate import check_array, check_structure, expected_shapes

from ._compat import own_state_keys
from ._params import _STRUCTURE, _numpy64


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


class CheckpointMixin:
    """State_dict loading and checkpoints of :class:`~mrnn_torch.mRNNBase`."""

    # state_dict --------------------------------------------------------------

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

        region_keys = {key: (what, name) for what, keys in self._region_param_keys()
                       for name, key in keys.items()}
        own = own_state_keys(self)
        children = {name for name, _ in self.named_children()}
        given = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if strict:
            unexpected = [k for k in given if k not in own and k.split(".")[0] not in children]
            if unexpected:
                open_ = self._open_sides()
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
        for key, (what, name) in region_keys.items():
            if key not in given:
                continue
            n = self._spec.region(name).num_units
            a = check_array(label(key), _as_array(given[key]), (n,))
            if what == "log_tau":
                with np.errstate(over="ignore", under="ignore"):
                    tau = np.exp(a.astype(np.float64))
                bad = np.flatnonzero(~(np.isfinite(tau) & (tau > 0)))
                if bad.size:
                    raise MRNNStateDictError(
                        f"{label(key)}: expected log time constants whose exp is finite and "
                        f"> 0, got {float(a[bad[0]])!r} at index {int(bad[0])}")

    # Checkpoint ----------------------------------------------------------------

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
        params = {k: _numpy64(v) for k, v in self._params().items()}
        params["W_rec"], params["W_inp"] = _numpy64(self.W_rec), _numpy64(self.W_inp)
        params["init"] = _numpy64(self.initial_condition)
        params["tau"] = _numpy64(self.tau)
        if self._tau_keys:
            log_tau = np.log(params["tau"])
            for name, rows in _slices(self._spec.recurrent_regions).items():
                if name in self._tau_keys:
                    log_tau[rows] = _numpy64(getattr(self, self._tau_keys[name]))
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

"""Time constants, baseline drive, initial state, noise and the forward call."""

from __future__ import annotations

import numpy as np
import torch

from mrnn_core import Dynamics, check_call_shapes, check_finite, uniform_alpha, unit_tau
from mrnn_core.connectivity import region_slices as _slices

from ._functional import call_input, simulate
from ._params import _numpy64


class StateMixin:
    """``tau``, ``alpha``, noise, ``tonic_inp``, ``initial_condition`` and the forward runner."""

    # time constants ----------------------------------------------------------

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

    @tau.setter
    def tau(self, value) -> None:
        self._replace_dynamics(f"model.tau = {value!r}", tau=value)

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

    def _unit_tau_under(self, dynamics: Dynamics) -> np.ndarray:
        """``[H]`` float64 time constants the units would have under ``dynamics``
        (a checkpoint's fixed ones and learned ones as they are now)."""
        tau = (unit_tau(self._spec, dynamics) if self._tau_override is None
               else _numpy64(self._tau_override).copy())
        for name, rows in _slices(self._spec.recurrent_regions).items():
            if name in self._tau_keys:
                tau[rows] = _numpy64(self._learned_tau(name))
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
        """``c_u``: leaky ``sqrt(2 alpha sigma_u^2) / alpha`` of the alpha every
        unit shares, or ``Dynamics.tau``'s when units differ or some region
        learns its tau (:meth:`mrnn_core.Dynamics.inp_noise_for`); Elman ``sigma_u``."""
        return self.dynamics.inp_noise_for(self.alpha, learned_tau=bool(self._tau_keys))

    # baseline drive and initial state ----------------------------------------

    @property
    def tonic_inp(self) -> torch.Tensor:
        """The baseline drive ``b`` ``[H]``: every region's ``base_firing``, in order."""
        parts = [r.base_firing for r in self.region_dict.values()]  # learned: the model's
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

    # noise and the forward call ----------------------------------------------

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

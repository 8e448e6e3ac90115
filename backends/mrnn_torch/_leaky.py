"""mRNN: the leaky (continuous-time, Euler-stepped) multi-regional RNN."""

from __future__ import annotations

import torch

from mrnn_core import check_batch_size

from ._base import mRNNBase


class mRNN(mRNNBase):
    """Leaky multi-regional RNN, ``alpha = dt / tau`` (defaults 10 and 100 ms).

    Arguments as :class:`mRNNBase`, plus ``dt`` and ``tau`` (the default;
    a region may set its own ``tau``, learned or fixed: then ``alpha`` and
    ``c_x`` below are per unit, ``[H]``). ``alpha > 1`` for any unit is
    refused unless ``allow_unstable_alpha=True``. One step
    (SEMANTICS.md section 4), ``f`` the activation::

        x[t+1] = x[t] + alpha * (-x[t] + W_rec_eff h[t] + W_inp_eff (u[t] + c_u eps_u)
                                 + b + c_x eps_x) + alpha * s[t]
        h[t+1] = f(x[t+1])

    with ``c = sqrt(2 alpha sigma^2) / alpha`` (``c_u`` from the scalar
    ``dynamics.alpha``: input noise lives in input space). A plain reference loop is
    :func:`mrnn_core.reference.simulate`.
    """

    _kind = "leaky"

    def __init__(self, config=None, activation: str = "relu", noise_level_act: float = 0.01,
                 noise_level_inp: float = 0.01, rec_constrained: bool = True,
                 inp_constrained: bool = True, batch_first: bool = True,
                 spectral_radius: float | None = None, config_finalize: bool = True,
                 device=None, dt: float = 10.0, tau: float = 100.0, *, seed=None, dtype=None,
                 balance_ei: bool = False, allow_unstable_alpha: bool = False):
        super().__init__(config, activation, noise_level_act, noise_level_inp, rec_constrained,
                         inp_constrained, batch_first, spectral_radius, config_finalize, device,
                         dt=dt, tau=tau, seed=seed, dtype=dtype, balance_ei=balance_ei,
                         allow_unstable_alpha=allow_unstable_alpha)

    def batched_initial_condition(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, h0)``, each ``[B, H]``: ``initial_condition`` per trial and ``f`` of it."""
        x0 = self.initial_condition.unsqueeze(0).repeat(check_batch_size(batch_size), 1)
        return x0, self.activation(x0)

    def forward(self, inp: torch.Tensor | None, x0: torch.Tensor | None = None,
                h0: torch.Tensor | None = None,
                stim_input: torch.Tensor | None = None, noise: bool = False,
                W_rec: torch.Tensor | None = None, *, eps_x: torch.Tensor | None = None,
                eps_u: torch.Tensor | None = None,
                check_finite: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``T`` steps from ``x0``.

        **Arguments:** ``inp`` ``[B, T, I]`` if ``batch_first`` else
        ``[T, B, I]`` (``[T, I]`` unbatched; ``None`` for zero input when
        ``stim_input`` gives ``T``); ``x0`` ``[B, H]`` (default: the model's
        ``initial_condition`` for every trial, learned where
        ``learnable_init``); ``h0`` ``[B, H]``
        (default ``f(x0)``); ``stim_input`` ``s``, output layout, feature
        size ``H``; ``noise`` draws ``eps_x``, ``eps_u`` from torch's RNG;
        ``W_rec`` ``[H, H]`` replaces ``W_rec_eff`` for this call; ``eps_x``
        (output layout) and ``eps_u`` (input layout) are standard-normal
        draws to use as the noise (given draws are always used);
        ``check_finite`` raises :class:`mrnn_core.NonFiniteStateError` naming
        the first step and unit whose ``x`` became inf or NaN (it reads the
        outputs back to the CPU, so it is off by default).

        Every array argument may be a tensor, a numpy array or a nested list
        of real floating numbers (README, "Inputs a forward call accepts"):
        a lower precision than the model's is cast up; a higher one,
        integers, booleans, complex numbers and tensors on another device
        raise :class:`mrnn_core.MRNNConfigError`. ``T = 0`` returns empty
        ``[B, 0, H]`` outputs.

        **Returns:** ``(xs, hs)``, each ``[B, T, H]`` (``batch_first``) or
        ``[T, B, H]``: the states after each step, not the initial one.
        """
        return self._run(inp, x0, h0, stim_input, noise, W_rec, eps_x, eps_u, check_finite)

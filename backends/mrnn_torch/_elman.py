"""ElmanmRNN: the discrete-time multi-regional RNN."""

from __future__ import annotations

import torch

from mrnn_core import check_batch_size

from ._base import mRNNBase


class ElmanmRNN(mRNNBase):
    """Elman multi-regional RNN. Arguments as :class:`mRNNBase`. One step::

        x[t+1] = W_rec_eff h[t] + W_inp_eff (u[t] + sigma_u eps_u) + b + sigma_x eps_x + s[t]
        h[t+1] = f(x[t+1])

    Noise has standard deviation ``sigma`` directly (mRNNTorch's Elman noise
    path failed; SEMANTICS.md section 4). A region's ``tau`` and
    ``learnable_tau`` have no effect here (no ``log_tau`` parameter is made),
    so one spec serves both models.
    """

    _kind = "elman"

    def __init__(self, config=None, activation: str = "relu", noise_level_act: float = 0.01,
                 noise_level_inp: float = 0.01, rec_constrained: bool = True,
                 inp_constrained: bool = True, batch_first: bool = True,
                 spectral_radius: float | None = None, config_finalize: bool = True,
                 device=None, *, seed=None, dtype=None, balance_ei: bool = False):
        super().__init__(config, activation, noise_level_act, noise_level_inp, rec_constrained,
                         inp_constrained, batch_first, spectral_radius, config_finalize, device,
                         seed=seed, dtype=dtype, balance_ei=balance_ei)

    def batched_initial_condition(self, batch_size: int) -> torch.Tensor:
        """``h0`` ``[B, H]``: ``initial_condition`` repeated per trial (not activated)."""
        return self.initial_condition.unsqueeze(0).repeat(check_batch_size(batch_size), 1)

    def forward(self, inp: torch.Tensor | None, h0: torch.Tensor | None = None,
                stim_input: torch.Tensor | None = None, noise: bool = False,
                W_rec: torch.Tensor | None = None, *, eps_x: torch.Tensor | None = None,
                eps_u: torch.Tensor | None = None, check_finite: bool = False) -> torch.Tensor:
        """Run ``T`` steps from ``h0`` ``[B, H]`` (default: ``initial_condition``
        for every trial); arguments, accepted inputs and ``check_finite`` (on
        ``hs``) as :meth:`mRNN.forward`.

        **Returns:** ``hs`` ``[B, T, H]`` (``batch_first``) or ``[T, B, H]``.
        """
        return self._run(inp, h0, None, stim_input, noise, W_rec, eps_x, eps_u, check_finite)

"""Ensemble: ``E`` networks of one spec, run together in one call.

The members are ordinary :class:`mRNN` / :class:`ElmanmRNN` models held in
``ens.networks`` (an ``nn.ModuleList``), so each keeps its own parameters,
buffers (masks and sign matrices), frozen blocks, learned time constants and
checkpoints, exactly as when used alone. A call stacks what the dynamics use
(effective weights ``[E, H, H]``, biases, per-unit alphas) and runs every
member's recurrence in one batched loop with a hand-written backward
(:mod:`mrnn_torch._ensemble_fused`). Gradients flow back through the stack
to each member's own parameters, so any torch optimiser over
``ens.parameters()`` trains every member as if alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mrnn_core import Checkpoint, Dynamics, MRNNConfigError, input_noise_constant
from mrnn_core import ensemble as core
from mrnn_core.ensemble import MEMBER_VALUES as MEMBER_VALUES

from ._base import mRNNBase
from ._elman import ElmanmRNN
from ._ensemble_fused import EnsembleDrive, EnsembleRecurrence
from ._functional import _alpha, effective_weights
from ._leaky import mRNN

_MODELS = {"leaky": mRNN, "elman": ElmanmRNN}
# Per-member matmul size (B H^2 multiply-adds a step) from which the buffers are
# member-major [E, T, B, H]: torch's CPU baddbmm then runs one addmm per member
# (a few us of overhead each, small against the product), and the input and
# weight gradients need no copies. Below it they are time-major [T, E, B, H],
# whose contiguous per-step blocks take one batched kernel.
MEMBER_MAJOR_MACS = 2**20
# buffer layout (time_axis), batch_first -> the permutation to the call's layout
_ORDER = {(0, True): (1, 2, 0, 3), (0, False): (1, 0, 2, 3),
          (1, True): (0, 2, 1, 3), (1, False): (0, 1, 2, 3)}


class Ensemble(nn.Module):
    """``E`` networks that share a spec, run as one batched network.

    Build it with :meth:`from_seeds`, :meth:`from_models` or
    :meth:`from_checkpoints` (the constructor takes a list of finalised
    models, as :meth:`from_models`).

    **Members:** ``ens.networks`` ``nn.ModuleList`` of ``E`` models (the
    ``state_dict`` keys are ``networks.<e>.<the member's key>``);
    :meth:`members` returns them, :meth:`to_checkpoints` their checkpoints.
    Members may differ in everything a single model draws or learns (masks,
    weights, biases, ``init``, learned ``tau``) and in ``dt``, ``tau``, noise
    levels, ``spectral_radius`` and ``balance_ei``; they must share the spec,
    the kind (all leaky or all Elman), the activation, ``batch_first``, the
    device and the dtype.

    **Call** (leaky): ``xs, hs = ens(inp, x0=None, h0=None, stim_input=None,
    noise=False, *, eps_x=None, eps_u=None)``; Elman: ``hs = ens(inp, h0=...)``.
    Shapes with ``batch_first`` (else swap ``B`` and ``T``): ``inp``
    ``[B, T, I]`` shared by every member or ``[E, B, T, I]`` per member;
    ``x0`` / ``h0`` ``[E, B, H]`` or ``[B, H]`` shared (default: each member's
    ``initial_condition``); ``stim_input`` ``[B, T, H]`` or ``[E, B, T, H]``;
    ``eps_x`` ``[E, B, T, H]`` and ``eps_u`` ``[E, B, T, I]`` standard-normal
    draws; ``noise=True`` draws them from torch's RNG. **Returns:** ``(xs, hs)``
    (Elman: ``hs``), each ``[E, B, T, H]``; member ``e``'s slice equals
    ``ens.members()[e](inp, ...)`` (to rounding: the batched matmul may sum
    in another order).
    """

    def __init__(self, models: Sequence[mRNNBase]):
        super().__init__()
        self.networks = nn.ModuleList(_check_members(models))

    # building ----------------------------------------------------------------

    @classmethod
    def from_models(cls, models: Sequence[mRNNBase]) -> Ensemble:
        """An ensemble of ``models`` themselves (not copies: training the
        ensemble trains them). **Arguments:** a non-empty sequence of
        finalised :class:`mRNN` or :class:`ElmanmRNN`, distinct objects."""
        return cls(models)

    @classmethod
    def from_seeds(cls, config_or_spec, seeds: Sequence[int], *, dynamics: Dynamics | None = None,
                   model: str = "leaky", activation: str = "relu",
                   member_values: Mapping[str, Sequence] | None = None, device=None,
                   dtype=None) -> Ensemble:
        """``E = len(seeds)`` fresh networks of one spec.

        **Arguments:** ``config_or_spec`` (a JSON path, an mRNNTorch-format
        dict or a :class:`mrnn_core.NetworkSpec`); ``seeds`` (one
        non-negative integer per member: member ``e``'s masks and weights are
        those of ``mrnn_core.Checkpoint.initialise(spec, dynamics_e,
        seeds[e])``); ``dynamics`` (a :class:`mrnn_core.Dynamics`; default
        ``Dynamics(kind=model, activation=activation)``; when given, ``model``
        and ``activation`` are not used); ``member_values`` (a dict from some
        of ``tau``, ``noise_level_act``, ``noise_level_inp``,
        ``spectral_radius`` to ``E`` values each: member ``e``'s dynamics take
        the ``e``-th value); ``device`` and ``dtype`` as for a single model.

        **Returns:** the ensemble.
        """
        ckpts = core.seed_checkpoints(config_or_spec, seeds, dynamics=dynamics, model=model,
                                      activation=activation, member_values=member_values)
        return cls([_MODELS[c.dynamics.kind].from_checkpoint(c, device=device, dtype=dtype)
                    for c in ckpts])

    @classmethod
    def from_checkpoints(cls, checkpoints, device=None, dtype=None) -> Ensemble:
        """An ensemble of the networks in ``checkpoints`` (each a
        :class:`mrnn_core.Checkpoint` or a path to a ``.npz`` one saved by
        ``Checkpoint.save``); every array is kept exactly. ``device`` and
        ``dtype`` as for ``mRNN.from_checkpoint``."""
        loaded = core.load_checkpoints(checkpoints)
        return cls([_MODELS[c.dynamics.kind].from_checkpoint(c, device=device, dtype=dtype)
                    for c in loaded])

    # the members -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.networks)

    def members(self) -> list[mRNNBase]:
        """The ``E`` member models (the ensemble's own, not copies)."""
        return list(self.networks)

    def to_checkpoints(self) -> list[Checkpoint]:
        """Each member's :meth:`~mRNNBase.to_checkpoint` (bit-identical to it)."""
        return [m.to_checkpoint() for m in self.networks]

    @property
    def dynamics(self) -> list[Dynamics]:
        """Each member's :class:`mrnn_core.Dynamics`."""
        return [m.dynamics for m in self.networks]

    @property
    def kind(self) -> str:
        return self.networks[0].dynamics.kind

    def batched_initial_condition(self, batch_size: int):
        """Each member's ``batched_initial_condition``, stacked: leaky ``(x0, h0)``,
        Elman ``h0``, each ``[E, B, H]``."""
        states = [m.batched_initial_condition(batch_size) for m in self.networks]
        if self.kind == "leaky":
            return tuple(torch.stack(s) for s in zip(*states))
        return torch.stack(states)

    def extra_repr(self) -> str:
        first = self.networks[0]
        return (f"E={len(self)}, kind={self.kind!r}, H={first.total_num_units}, "
                f"I={first.total_num_inputs}")

    # running -----------------------------------------------------------------

    def forward(self, inp, x0=None, h0=None, stim_input=None, noise: bool = False, *,
                eps_x=None, eps_u=None):
        """Run every member for ``T`` steps; see the class docstring for shapes."""
        leaky = self.kind == "leaky"
        first = self.networks[0]
        H, I = first.total_num_units, first.total_num_inputs
        call = core.check_call(len(self), first.dynamics, H, I, inp, x0, h0, stim_input, eps_x,
                               eps_u, shared_noise=False)
        E, B, T = len(self), call.batch, call.steps
        batch_first = first.dynamics.batch_first
        lead = (B, T) if batch_first else (T, B)
        if T == 0:
            empty = torch.zeros(E, *lead, H, device=first.device, dtype=first._dtype)
            return (empty, empty.clone()) if leaky else empty
        if noise:
            like = dict(device=first.device, dtype=first._dtype)
            eps_x = torch.randn(E, *lead, H, **like) if eps_x is None else eps_x
            eps_u = torch.randn(E, *lead, I, **like) if eps_u is None else eps_u
        stacked = self._stacked()
        state = x0 if leaky else h0
        if state is None:
            state = torch.stack([m.initial_condition for m in self.networks])[:, None]
        state = self._per_member(state, (E, B, H))
        if leaky:
            h = self._per_member(h0, (E, B, H)) if h0 is not None else first.activation(state)
            x = state
        else:
            x, h = None, state
        alpha, scale, carry, W = stacked["alpha"], stacked["scale"], None, stacked["W_rec"]
        if scale is not None:
            W, carry, alpha = scale[:, :, None] * W, (1 - scale)[:, None, :], 1.0
        time_axis = 1 if B * H * H >= MEMBER_MAJOR_MACS else 0
        drive = self._drive(stacked, inp, stim_input, eps_x, eps_u, lead, time_axis)
        xs, hs = EnsembleRecurrence.apply(W, drive, x, h, alpha, first.dynamics.activation, carry,
                                          time_axis)
        # [T, E, B, H] or [E, T, B, H] buffers, seen in the call's layout
        order = _ORDER[time_axis, batch_first]
        return (xs.permute(order), hs.permute(order)) if leaky else hs.permute(order)

    @staticmethod
    def _per_member(a, shape):
        """``a`` ``[E, B, H]`` or ``[B, H]`` (or ``[E, 1, H]``) as ``[E, B, H]``."""
        return a.expand(shape)

    def _stacked(self) -> dict:
        """What the dynamics use, stacked over members (differentiable).

        ``alpha``: the shared float alpha when every member has one and the
        same (Elman: 1), else ``scale`` ``[E, H]`` holds every member's
        per-unit alpha. ``c_x`` ``[E, H]``, ``c_u`` ``[E]``.
        """
        params = [m._params() for m in self.networks]
        dyns = [m.dynamics for m in self.networks]
        eff = [effective_weights(p, d) for p, d in zip(params, dyns)]
        alphas = [_alpha(p, d) for p, d in zip(params, dyns)]
        first = params[0]["W_rec"]
        H = first.shape[0]
        like = dict(device=first.device, dtype=first.dtype)
        as_row = lambda v: torch.as_tensor(v, **like).expand(H)  # noqa: E731
        shared = (all(isinstance(a, float) for a in alphas)
                  and all(a == alphas[0] for a in alphas))
        out = {"W_rec": torch.stack([w for w, _ in eff]),
               "W_inp": torch.stack([w for _, w in eff]),
               "b": torch.stack([p["base_firing"] for p in params]),
               "c_x": torch.stack([as_row(d.hid_noise_vector(a)) for d, a in zip(dyns, alphas)]),
               "c_u": torch.stack([torch.as_tensor(input_noise_constant(p, d, a), **like)
                                   for p, d, a in zip(params, dyns, alphas)]),
               "alpha": alphas[0] if shared else 1.0,
               "scale": None if shared else torch.stack([as_row(a) for a in alphas])}
        return out

    def _drive(self, stacked, inp, stim_input, eps_x, eps_u, lead, time_axis):
        """``alpha`` times every member's drive, one fresh ``[T, E, B, H]`` (``time_axis`` 0)
        or ``[E, T, B, H]`` tensor: ``alpha (W_inp_eff (u + c_u eps_u) + b + c_x eps_x + s)``
        per member."""
        W_inp, b, c_x = stacked["W_inp"], stacked["b"], stacked["c_x"]
        E, H, I = W_inp.shape
        scale = stacked["scale"]
        s0 = stacked["alpha"] if scale is None else 1.0
        if scale is not None:
            W_inp, b, c_x = scale[:, :, None] * W_inp, scale * b, scale * c_x
        batch_first = self.networks[0].dynamics.batch_first
        u = W_inp.new_zeros(1, *lead, I) if inp is None else inp
        u = u if u.dim() == 4 else u.unsqueeze(0)
        if eps_u is not None:
            u = u + stacked["c_u"][:, None, None, None] * eps_u
        drive = EnsembleDrive.apply(u, W_inp, b, s0, batch_first, time_axis)
        # the call's [E, B, T, .] / [E, T, B, .] in the drive's layout
        order = _ORDER[time_axis, batch_first]
        inverse = tuple(order.index(d) for d in range(4))
        tm = lambda a: a.permute(*inverse)  # noqa: E731
        per_member = (lambda c: c[:, None, :]) if time_axis == 0 else (lambda c: c[:, None, None, :])  # noqa: E731
        if eps_x is not None:
            drive.addcmul_(tm(eps_x), per_member(s0 * c_x))
        if stim_input is not None:
            s = tm(stim_input if stim_input.dim() == 4 else stim_input.unsqueeze(0))
            if scale is None:
                drive.add_(s, alpha=s0)
            else:
                drive.addcmul_(s, per_member(scale))
        return drive


def _check_members(models) -> list:
    models = core.model_list(models, (mRNN, ElmanmRNN))
    for e, m in enumerate(models):
        if not (m.rec_finalized and m.inp_finalized):
            raise MRNNConfigError(
                f"Ensemble: models[{e}] is not finalised; call finalize_connectivity() on "
                f"every member first")
    seen = {}
    for e, m in enumerate(models):
        if id(m) in seen:
            raise MRNNConfigError(
                f"Ensemble: models[{e}] is the same object as models[{seen[id(m)]}]; every "
                f"member must be its own model (copy.deepcopy it for an identical twin)")
        seen[id(m)] = e
    core.check_models_agree(
        models, lambda m: m._spec,
        lambda m: {k: (tuple(v.shape), f"{v.dtype} on {v.device}")
                   for k, v in m.state_dict().items()})
    return models

"""The one-step map of :mod:`mrnn_core.analysis` on torch tensors, and its Jacobians.

Everything runs in float64 on detached copies of the model's arrays, so an
analysis never touches a model's parameters, buffers, flags or mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import jacrev, vmap

from mrnn_core import Dynamics
from mrnn_core.analysis import Problem, StepDynamics

from .._functional import effective_weights, get_activation


@dataclass(frozen=True)
class Network:
    """A problem's arrays as float64 tensors: ``W`` ``[H, H]`` and ``W_inp`` ``[H, I]``
    (effective), ``b`` ``[H]``, the constant input ``u`` ``[I]`` and ``held`` ``[H]``."""

    W: torch.Tensor
    W_inp: torch.Tensor
    b: torch.Tensor
    u: torch.Tensor
    held: torch.Tensor
    dynamics: Dynamics
    space: str
    step: StepDynamics

    def drive(self, u=None) -> torch.Tensor:
        """``d = W_inp u + b`` ``[H]``."""
        return self.W_inp @ (self.u if u is None else u) + self.b


def model_device(model) -> torch.device:
    """The device of a torch model's parameters or buffers; CPU for anything else."""
    if isinstance(model, torch.nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            return t.device
    return torch.device("cpu")


def detached_numpy(a):
    """A numpy view of a tensor (or anything array-like) that leaves it untouched."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def network(problem: Problem, device) -> Network:
    """The tensors of ``problem`` on ``device``."""
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float64, device=device)  # noqa: E731
    params = {k: as_tensor(v) for k, v in problem.params.items()}
    W, W_inp = effective_weights(params, problem.dynamics)
    return Network(W, W_inp, params["base_firing"], as_tensor(problem.inputs),
                   as_tensor(problem.held), problem.dynamics, problem.space,
                   problem.step_dynamics())


def _alpha(dynamics: StepDynamics, like: torch.Tensor):
    """alpha as a float, or as a ``[n]`` tensor when units have their own time constants."""
    a = dynamics.alpha
    return a if isinstance(a, float) else torch.tensor(a, dtype=like.dtype, device=like.device)


def step_map(dynamics: StepDynamics, space: str, W, d, y):
    """``F(y)`` for states ``y`` ``[..., n]``, weights ``W`` ``[n, n]`` and drive ``d`` ``[n]``.

    x-space ``g = W f(y) + d``, h-space ``g = f(W y + d)``; leaky
    ``F = y + alpha (-y + g)`` (alpha per unit when regions have their own
    tau), Elman ``F = g``.
    """
    f = get_activation(dynamics.activation)
    g = f(y) @ W.T + d if space == "x" else f(y @ W.T + d)
    return y + _alpha(dynamics, W) * (-y + g) if dynamics.kind == "leaky" else g


def reduced(net: Network, units, excluded):
    """``(W_r [n, n], d_r [n])``: the map on ``units`` with the other units held.

    The held units enter as a constant drive ``W[units, excluded] g(held)``,
    with ``g = f`` in x-space and the identity in h-space.
    """
    d = net.drive()
    if len(excluded) == 0:
        return net.W, d
    U = torch.as_tensor(units, device=net.W.device)
    E = torch.as_tensor(excluded, device=net.W.device)
    held = net.held[E]
    source = get_activation(net.dynamics.activation)(held) if net.space == "x" else held
    return net.W[U][:, U], d[U] + net.W[U][:, E] @ source


def _sigmoid_slope(z):
    s = torch.sigmoid(z)
    return s * (1.0 - s)


# f' for the closed-form Jacobian; torch.func.jvp would do, at ~10x the cost
# per call in eager mode. The tests compare it with autodiff.
_SLOPES = {
    "relu": lambda z: (z > 0).to(z.dtype),
    "tanh": lambda z: 1.0 - torch.tanh(z) ** 2,
    "sigmoid": _sigmoid_slope,
    "softplus": torch.sigmoid,
    "linear": torch.ones_like,
}


def closed_form_jacobian(dynamics: Dynamics, space: str, W, d, y):
    """``dF/dy`` ``[N, n, n]`` at ``y`` ``[N, n]`` in closed form (O(n^2) per state).

    x-space ``(1 - alpha) I + alpha W diag(f'(y))``; h-space
    ``(1 - alpha) I + alpha diag(f'(W y + d)) W``; Elman has ``alpha = 1``.
    A per-unit alpha scales the rows: ``diag(1 - alpha) + diag(alpha) (...)``.
    """
    z = y if space == "x" else y @ W.T + d
    fprime = _SLOPES[dynamics.activation](z)
    scaled = W * fprime[:, None, :] if space == "x" else fprime[:, :, None] * W
    if dynamics.kind != "leaky":
        return scaled
    eye = torch.eye(W.shape[0], dtype=W.dtype, device=W.device)
    alpha = _alpha(dynamics, W)
    if isinstance(alpha, float):
        return (1.0 - alpha) * eye + alpha * scaled
    return (1.0 - alpha)[:, None] * eye + alpha[:, None] * scaled


def autodiff_jacobian(dynamics: StepDynamics, space: str, W, d, y):
    """``dF/dy`` ``[N, n, n]`` at states ``y`` ``[N, n]`` by reverse-mode autodiff."""
    return vmap(jacrev(lambda s: step_map(dynamics, space, W, d, s)))(y)


def input_jacobian(net: Network, state):
    """``dF/du`` ``[H, I]`` at one full state ``[H]`` and the network's input."""
    return jacrev(lambda u: step_map(net.step, net.space, net.W, net.drive(u), state))(net.u)

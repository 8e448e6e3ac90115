"""Local analysis of the one-step map: Jacobians, region blocks, linearisation, flow fields."""

from __future__ import annotations

import torch

from mrnn_core import MRNNConfigError
from mrnn_core import analysis as core

from ._maps import autodiff_jacobian, detached_numpy, input_jacobian, model_device, network, step_map


def _states(net, name, state, H):
    s = core.as_states(name, state, H)
    flat = torch.as_tensor(s.reshape(-1, H), dtype=torch.float64, device=net.W.device)
    return s.shape[:-1], flat


def _setup(model, dynamics, connectivity, space, inputs, regions=None):
    prob = core.problem(model, dynamics, connectivity, to_numpy=detached_numpy, space=space,
                        regions=regions, inputs=inputs)
    return prob, network(prob, model_device(model))


def jacobian(model, dynamics=None, connectivity=None, *, state, inputs=None, space="x"):
    """The Jacobian ``dF/dstate`` of the one-step map, by autodiff.

    ``F`` is the map of :mod:`mrnn_core.analysis` with constant input ``u``;
    at a leaky x-space state it equals ``(1 - alpha) I + alpha W_rec_eff diag(f'(x))``.

    **Arguments:** `model` as in :func:`find_fixed_points`; `state` ``[..., H]``
    (pre-activations in x-space, rates in h-space); `inputs` ``u`` ``[I]``
    (default zeros); `space` ``"x"`` or ``"h"``.

    **Returns:** numpy ``[..., H, H]``, rows the next state's units.
    """
    prob, net = _setup(model, dynamics, connectivity, space, inputs)
    return _full_jacobian(prob, net, state)


def _full_jacobian(prob, net, state):
    lead, flat = _states(net, "state", state, prob.hidden_size)
    J = autodiff_jacobian(net.step, prob.space, net.W, net.drive(), flat)
    return J.cpu().numpy().reshape(lead + J.shape[1:])


def jacobian_blocks(model, dynamics=None, connectivity=None, *, state, regions, inputs=None,
                    space="x") -> core.JacobianBlocks:
    """The region blocks of :func:`jacobian` at ``state`` ``[..., H]``.

    `regions` (names; parents expand) are the included units: the blocks are
    included x included and excluded -> included (rows included, columns
    excluded). **Returns:** a :class:`mrnn_core.analysis.JacobianBlocks`.
    """
    if regions is None:
        raise MRNNConfigError("regions: expected the names of the included regions, got None")
    prob, net = _setup(model, dynamics, connectivity, space, inputs, regions)
    J = _full_jacobian(prob, net, state)
    rows = J[..., prob.units, :]
    return core.JacobianBlocks(included=rows[..., prob.units], excluded_to_included=rows[..., prob.excluded],
                               units=prob.units, excluded=prob.excluded)


def linearise(model, dynamics=None, connectivity=None, *, state, inputs=None,
              space="x") -> core.Linearisation:
    """The first-order approximation of the one-step map around ``(state, inputs)``.

    ``F(state + ds, u + du) ~ F(state, u) + (dF/dstate) ds + (dF/du) du``.

    **Arguments:** `state` ``[H]``; `inputs` ``u`` ``[I]`` (default zeros);
    the rest as :func:`jacobian`. **Returns:** a
    :class:`mrnn_core.analysis.Linearisation` (callable on perturbations).
    """
    prob, net = _setup(model, dynamics, connectivity, space, inputs)
    s = core.as_states("state", state, prob.hidden_size, single=True)
    x = torch.as_tensor(s, dtype=torch.float64, device=net.W.device)
    value = step_map(net.step, prob.space, net.W, net.drive(), x)
    A = autodiff_jacobian(net.step, prob.space, net.W, net.drive(), x[None])[0]
    return core.Linearisation(state=s, inputs=prob.inputs, value=value.cpu().numpy(),
                              state_jacobian=A.cpu().numpy(),
                              input_jacobian=input_jacobian(net, x).cpu().numpy(),
                              space=prob.space)


def flow_field(model, dynamics=None, connectivity=None, *, trajectories=None, basis=None,
               origin=None, limits=None, resolution=25, inputs=None, space="x", regions=None,
               held_state=None, linearise_at=None) -> core.FlowField:
    """Velocities ``F(s) - s`` of the nonlinear and the linearised map on a 2-D grid.

    **Arguments:**

    - `model`, `inputs`, `space`: as :func:`find_fixed_points`.
    - `trajectories` ``[..., H]``: states the network visits; the plane is
      their top two principal components (over the units of `regions`)
      unless `basis` ``[H, 2]`` is given (zero rows outside `regions`).
    - `origin` ``[H]``: the plane's origin (default: the trajectories' mean).
    - `limits` ``((lo1, hi1), (lo2, hi2))``: the grid's extent in plane
      coordinates (default: the trajectories' extent plus 10 %, else +-1).
    - `resolution` (25): grid points per axis.
    - `regions`, `held_state` ``[H]``: analyse only these regions' units;
      the others stay at `held_state` (default: the origin's values).
    - `linearise_at` ``[H]``: where the linearised map is expanded
      (default: the origin; pass a fixed point to compare with its linearisation).

    **Returns:** a :class:`mrnn_core.analysis.FlowField` (plot it with
    :func:`mrnn_core.plotting.plot_flow_field`).
    """
    prob, plane = core.flow_problem(
        model, dynamics, connectivity, to_numpy=detached_numpy, trajectories=trajectories,
        basis=basis, origin=origin, limits=limits, resolution=resolution, held_state=held_state,
        linearise_at=linearise_at, space=space, regions=regions, inputs=inputs)
    net = network(prob, model_device(model))
    d = net.drive()
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float64, device=net.W.device)  # noqa: E731
    grid_next = step_map(net.step, prob.space, net.W, d, as_tensor(plane.states))
    at = as_tensor(plane.linearised_at)
    next_at = step_map(net.step, prob.space, net.W, d, at)
    J = autodiff_jacobian(net.step, prob.space, net.W, d, at[None])[0]
    return core.flow_record(prob, plane, grid_next.cpu().numpy(), next_at.cpu().numpy(),
                            J.cpu().numpy())


"""Fixed points of the one-step map by Levenberg-Marquardt, batched over initial states."""

from __future__ import annotations

import numpy as np
import torch

from mrnn_core import analysis as core

from ._maps import autodiff_jacobian, closed_form_jacobian, detached_numpy, model_device, network, reduced, step_map


def find_fixed_points(model, dynamics=None, connectivity=None, *, inputs=None,
                      initial_states=None, trajectories=None, n_initial=256, noise_scale=0.0,
                      seed=0, space="x", regions=None, held_state=None, max_iters=200,
                      tol=1e-20, damping=1e-3, merge_tol=1e-6, outlier_scale=10.0,
                      keep_unconverged=False, progress=True) -> core.FixedPoints:
    """Fixed points ``F(x*) = x*`` of the one-step map with constant input, from many starts.

    Minimises ``q(x) = 1/2 |F(x) - x|^2`` from every initial state by
    Levenberg-Marquardt: the step ``dx = -(A^T A + lam I)^{-1} A^T r`` with
    ``r = F(x) - x``, ``A = dF/dx - I`` and ``lam = damping * mean(diag(A^T A))``;
    an accepted step (``q`` falls) divides ``damping`` by 3, a rejected one
    multiplies it by 4. Near a fixed point this is Newton's method, so
    converged points are polished to rounding level. Each search ends when
    ``q <= tol``, when its damping reaches 1e10 (stuck at a slow point), or
    after ``max_iters`` iterations. Cost per iteration: ``O(n^3)`` per start.

    The maps (``mrnn_core.analysis``): x-space leaky
    ``F(x) = x + alpha (-x + W_rec_eff f(x) + W_inp_eff u + b)``, h-space leaky
    ``F(h) = h + alpha (-h + f(W_rec_eff h + W_inp_eff u + b))``, Elman the same
    with ``alpha = 1``.

    **Arguments:**

    - `model`: an ``mrnn_torch`` model, a :class:`mrnn_core.Checkpoint`, or a
      mapping of named arrays (then `dynamics` is required and `connectivity`
      is needed to name regions). The model is never modified: the search
      runs in float64 on detached copies, on the model's device.
    - `inputs`: the constant input ``u`` ``[I]`` (default zeros).
    - `initial_states` ``[N, H]``, or `trajectories` ``[..., H]`` to draw
      `n_initial` starts from (``numpy.random.default_rng(seed)``), plus
      Gaussian noise of standard deviation `noise_scale`. States are
      pre-activations in x-space, rates in h-space.
    - `space`: ``"x"`` or ``"h"``.
    - `regions`: names (parents expand) of the regions to optimise; the
      other units stay at `held_state` ``[H]`` (default: the mean of the
      trajectories, or of the initial states).
    - `max_iters` (200), `tol` (1e-20, on ``q``), `damping` (1e-3): optimiser settings.
    - `merge_tol` (1e-6): points closer than this (Euclidean) are one point.
    - `outlier_scale` (10): flags points farther from every sampled state than
      this many times the spread of the sampled states.
    - `keep_unconverged`: also report searches that ended with ``q > tol``.
    - `progress`: draw a progress line on stderr.

    **Returns:** a :class:`mrnn_core.analysis.FixedPoints`, sorted by ``q``.
    """
    settings = core.search_settings(max_iters, tol, damping, merge_tol, outlier_scale)
    prob, starts, reference = core.search_problem(
        model, dynamics, connectivity, to_numpy=detached_numpy, initial_states=initial_states,
        trajectories=trajectories, n_initial=n_initial, noise_scale=noise_scale, seed=seed,
        held_state=held_state, space=space, regions=regions, inputs=inputs)
    net = network(prob, model_device(model))
    W, d = reduced(net, prob.units, prob.excluded)
    y0 = torch.as_tensor(starts[:, prob.units], dtype=torch.float64, device=W.device)
    step = prob.step_dynamics(prob.units)
    y, q = _levenberg_marquardt(step, prob.space, W, d, y0, progress=progress, **settings)
    y, q = y.cpu().numpy(), q.cpu().numpy()
    kept, counts = core.select_points(q, y, settings["tol"], float(merge_tol), keep_unconverged)
    if len(kept):
        J = autodiff_jacobian(step, prob.space, W, d,
                              torch.as_tensor(y[kept], device=W.device)).cpu().numpy()
    else:
        J = np.zeros((0, len(prob.units), len(prob.units)))
    return core.fixed_point_record(
        prob.embed(y[kept]), q[kept], J, counts=counts, units=prob.units, inputs=prob.inputs,
        reference=reference, dynamics=prob.dynamics, space=prob.space, tol=settings["tol"],
        outlier_scale=float(outlier_scale))


def _residual(dynamics, space, W, d, y):
    r = step_map(dynamics, space, W, d, y) - y
    return 0.5 * (r * r).sum(-1)


def _levenberg_marquardt(dynamics, space, W, d, y, *, max_iters, tol, damping, progress):
    """Run every search to its end. **Returns:** ``(y [N, n], q [N])``."""
    y = y.clone()
    q = _residual(dynamics, space, W, d, y)
    mu = torch.full_like(q, damping)
    done = q <= tol
    stuck = torch.zeros_like(done)
    n = y.shape[1]
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    bar = core.Progress("fixed points", max_iters, progress)
    iteration = 0
    for iteration in range(1, max_iters + 1):
        active = torch.nonzero(~done).flatten()
        if len(active) == 0:
            iteration -= 1
            break
        for idx in active.split(core.chunk_size(n)):
            yc, qc, mc = y[idx], q[idx], mu[idx]
            r = step_map(dynamics, space, W, d, yc) - yc
            A = closed_form_jacobian(dynamics, space, W, d, yc) - eye
            AtA = A.transpose(1, 2) @ A
            lam = mc * torch.diagonal(AtA, dim1=1, dim2=2).mean(-1).clamp_min(1e-300)
            step, _ = torch.linalg.solve_ex(AtA + lam[:, None, None] * eye,
                                            -(A.transpose(1, 2) @ r[..., None]))
            trial = yc + step[..., 0]
            q_trial = _residual(dynamics, space, W, d, trial)
            accept = torch.isfinite(q_trial) & (q_trial < qc)
            stalled = accept & (qc - q_trial <= core.STALL * qc)
            y[idx] = torch.where(accept[:, None], trial, yc)
            q[idx] = torch.where(accept, q_trial, qc)
            mu[idx] = torch.where(accept, (mc * core.DAMPING_DECREASE).clamp_min(core.DAMPING_MIN),
                                  mc * core.DAMPING_INCREASE)
            stuck[idx] = stalled
        done = (q <= tol) | (mu >= core.DAMPING_MAX) | stuck
        bar.update(iteration, _note(q, tol))
    bar.close(iteration, _note(q, tol))
    return y, q


def _note(q, tol) -> str:
    return f"{int((q <= tol).sum())}/{len(q)} converged"

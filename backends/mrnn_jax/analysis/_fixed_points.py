"""Fixed points of the one-step map by Levenberg-Marquardt, jitted and vmapped over initial states."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from mrnn_core import analysis as core

from ._maps import autodiff_jacobian, closed_form_jacobian, float64, network, reduced, step_map


@float64
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
    One iteration is one jitted call, ``vmap``-ed over the starts (in chunks
    that bound memory); it compiles once per problem size.

    The maps (``mrnn_core.analysis``): x-space leaky
    ``F(x) = x + alpha (-x + W_rec_eff f(x) + W_inp_eff u + b)``, h-space leaky
    ``F(h) = h + alpha (-h + f(W_rec_eff h + W_inp_eff u + b))``, Elman the same
    with ``alpha = 1``.

    **Arguments:**

    - `model`: an ``mrnn_jax`` model, a :class:`mrnn_core.Checkpoint`, or a
      mapping of named arrays (then `dynamics` is required and `connectivity`
      is needed to name regions). The search runs in float64 (whatever
      ``jax_enable_x64`` says) on copies of the model's arrays.
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
        model, dynamics, connectivity, to_numpy=np.asarray, initial_states=initial_states,
        trajectories=trajectories, n_initial=n_initial, noise_scale=noise_scale, seed=seed,
        held_state=held_state, space=space, regions=regions, inputs=inputs)
    net = network(prob)
    W, d = reduced(net, prob.units, prob.excluded)
    y0 = jnp.asarray(starts[:, prob.units], dtype=jnp.float64)
    step = prob.step_dynamics(prob.units)
    y, q = _levenberg_marquardt(step, prob.space, W, d, y0, progress=progress, **settings)
    y, q = np.asarray(y), np.asarray(q)
    kept, counts = core.select_points(q, y, settings["tol"], float(merge_tol), keep_unconverged)
    if len(kept):
        J = np.asarray(autodiff_jacobian(step, prob.space, W, d, jnp.asarray(y[kept])))
    else:
        J = np.zeros((0, len(prob.units), len(prob.units)))
    return core.fixed_point_record(
        prob.embed(y[kept]), q[kept], J, counts=counts, units=prob.units, inputs=prob.inputs,
        reference=reference, dynamics=prob.dynamics, space=prob.space, tol=settings["tol"],
        outlier_scale=float(outlier_scale))


def _residual(dynamics, space, W, d, y):
    r = step_map(dynamics, space, W, d, y) - y
    return 0.5 * jnp.sum(r * r, axis=-1)


def _search_step(dynamics, space, tol, W, d, y, q, mu, done):
    """One Levenberg-Marquardt iteration of one search (``y`` ``[n]``)."""
    r = step_map(dynamics, space, W, d, y) - y
    A = closed_form_jacobian(dynamics, space, W, d, y) - jnp.eye(y.shape[0], dtype=y.dtype)
    AtA = A.T @ A
    lam = mu * jnp.maximum(jnp.mean(jnp.diagonal(AtA)), 1e-300)
    # A^T A + lam I is symmetric positive definite, so Cholesky (cheaper than
    # LU); a failed factorisation gives NaN, and the step is rejected.
    factor = jsl.cho_factor(AtA + lam * jnp.eye(y.shape[0], dtype=y.dtype), lower=True)
    trial = y + jsl.cho_solve(factor, -(A.T @ r))
    q_trial = _residual(dynamics, space, W, d, trial)
    accept = ~done & jnp.isfinite(q_trial) & (q_trial < q)
    stalled = accept & (q - q_trial <= core.STALL * q)
    mu_next = jnp.where(accept, jnp.maximum(mu * core.DAMPING_DECREASE, core.DAMPING_MIN),
                        mu * core.DAMPING_INCREASE)
    y = jnp.where(accept, trial, y)
    q = jnp.where(accept, q_trial, q)
    mu = jnp.where(done, mu, mu_next)
    done = done | (q <= tol) | (mu >= core.DAMPING_MAX) | stalled
    return y, q, mu, done


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _iteration(dynamics, space, tol, chunk, W, d, y, q, mu, done):
    one = functools.partial(_search_step, dynamics, space, tol, W, d)
    return jax.lax.map(lambda c: one(*c), (y, q, mu, done), batch_size=chunk)


def _levenberg_marquardt(dynamics, space, W, d, y, *, max_iters, tol, damping, progress):
    """Run every search to its end. **Returns:** ``(y [N, n], q [N])``."""
    q = _residual(dynamics, space, W, d, y)
    mu = jnp.full_like(q, damping)
    done = q <= tol
    chunk = min(core.chunk_size(y.shape[1]), y.shape[0])
    bar = core.Progress("fixed points", max_iters, progress)
    iteration = 0
    for iteration in range(1, max_iters + 1):
        if bool(jnp.all(done)):
            iteration -= 1
            break
        y, q, mu, done = _iteration(dynamics, space, tol, chunk, W, d, y, q, mu, done)
        bar.update(iteration, _note(q, tol))
    bar.close(iteration, _note(q, tol))
    return y, q


def _note(q, tol) -> str:
    return f"{int(jnp.sum(q <= tol))}/{len(q)} converged"

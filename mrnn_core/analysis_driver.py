"""The analysis functions of both backends, written once over their arrays.

``mrnn_torch.analysis`` and ``mrnn_jax.analysis`` are :class:`AnalysisFunctions`
bound to a small backend object that supplies only what differs between the
frameworks: putting float64 arrays on a device, autodiff Jacobians, and how
one Levenberg-Marquardt iteration runs (torch: eagerly over the searches
still running; JAX: jitted and mapped over every search). Everything else,
the one-step map, its closed-form Jacobian, the map restricted to some
regions and the optimiser itself, is here, array-generic
(:mod:`mrnn_core._arrays`), so the two backends give the same numbers by
construction. The arguments are checked and the records assembled in numpy
by :mod:`mrnn_core.analysis`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import analysis as core
from ._arrays import adapter, namespace
from .activations import derivative, get_activation
from .dynamics import Dynamics
from .errors import MRNNConfigError
from .init import effective_weight

# -- the one-step map on any library's arrays -----------------------------------------


def _alpha(step: core.StepDynamics, like):
    """alpha as a float, or as an ``[n]`` array when units have their own time constants."""
    a = step.alpha
    return a if isinstance(a, float) else namespace(like).float_array(a, like)


def step_map(step: core.StepDynamics, space: str, W, d, y):
    """``F(y)`` for states ``y`` ``[..., n]``, weights ``W`` ``[n, n]`` and drive ``d`` ``[n]``.

    x-space ``g = W f(y) + d``, h-space ``g = f(W y + d)``; leaky
    ``F = y + alpha (-y + g)`` (alpha per unit when regions have their own
    tau), Elman ``F = g``.
    """
    f = get_activation(step.activation, namespace(W).name)
    g = f(y) @ W.T + d if space == "x" else f(y @ W.T + d)
    return y + _alpha(step, W) * (-y + g) if step.kind == "leaky" else g


def map_jacobian(step: core.StepDynamics, space: str, W, d, y):
    """``dF/dy`` ``[..., n, n]`` at states ``y`` ``[..., n]`` in closed form (O(n^2)
    per state, no autodiff): x-space ``(1 - alpha) I + alpha W diag(f'(y))``,
    h-space ``(1 - alpha) I + alpha diag(f'(W y + d)) W`` (:func:`mrnn_core.analysis.closed_form`)."""
    z = y if space == "x" else y @ W.T + d
    alpha = _alpha(step, W) if step.kind == "leaky" else 1.0
    return core.closed_form(W, derivative(step.activation, z), alpha, space)


def residual(step: core.StepDynamics, space: str, W, d, y):
    """``q = 1/2 |F(y) - y|^2`` ``[...]``."""
    r = step_map(step, space, W, d, y) - y
    return 0.5 * (r * r).sum(-1)


def lm_iteration(step: core.StepDynamics, space: str, tol: float, W, d, y, q, mu, done):
    """One Levenberg-Marquardt iteration of searches ``y`` ``[..., n]`` (one or a batch).

    ``dy = -(A^T A + lam I)^{-1} A^T r`` with ``r = F(y) - y``, ``A = dF/dy - I``
    and ``lam = mu mean(diag(A^T A))``; a step is accepted when ``q`` falls
    (then ``mu`` shrinks by :data:`~mrnn_core.analysis.DAMPING_DECREASE`,
    else it grows by :data:`~mrnn_core.analysis.DAMPING_INCREASE`). Searches
    already ``done`` are left as they are. A search is done when ``q <= tol``,
    when ``mu`` reaches :data:`~mrnn_core.analysis.DAMPING_MAX`, or when an
    accepted step lowers ``q`` by less than :data:`~mrnn_core.analysis.STALL`
    of itself. **Returns:** ``(y, q, mu, done)``.
    """
    xp = namespace(W)
    eye = xp.eye(y.shape[-1], y)
    r = step_map(step, space, W, d, y) - y
    A = map_jacobian(step, space, W, d, y) - eye
    At = xp.matrix_transpose(A)
    AtA = At @ A
    lam = mu * xp.clamp_min(xp.mean(xp.diagonal(AtA), -1), 1e-300)
    trial = y + xp.solve_spd(AtA + lam[..., None, None] * eye, -(At @ r[..., None]))[..., 0]
    q_trial = residual(step, space, W, d, trial)
    accept = ~done & xp.isfinite(q_trial) & (q_trial < q)
    stalled = accept & (q - q_trial <= core.STALL * q)
    y = xp.where(accept[..., None], trial, y)
    q = xp.where(accept, q_trial, q)
    mu = xp.where(done, mu, xp.where(accept, xp.clamp_min(mu * core.DAMPING_DECREASE, core.DAMPING_MIN),
                                     mu * core.DAMPING_INCREASE))
    done = done | (q <= tol) | (mu >= core.DAMPING_MAX) | stalled
    return y, q, mu, done


def levenberg_marquardt(iteration, y, q, mu, done, *, max_iters: int, tol: float, progress: bool):
    """Run ``iteration(y, q, mu, done) -> (y, q, mu, done)`` until every search
    is done or ``max_iters`` iterations have run, with a progress bar on stderr
    (tqdm) when ``progress``. **Returns:** ``(y [N, n], q [N])``."""
    def note():
        return f"{int((q <= tol).sum())}/{len(q)} converged"

    bar = core.Progress("fixed points", max_iters, progress)
    iterations = 0
    while iterations < max_iters and not bool(done.all()):
        y, q, mu, done = iteration(y, q, mu, done)
        iterations += 1
        bar.update(iterations, note())
    bar.close(iterations, note())
    return y, q


# -- the problem's arrays in a backend --------------------------------------------------


@dataclass(frozen=True)
class Network:
    """A problem's arrays as float64 arrays of one library: ``W`` ``[H, H]`` and
    ``W_inp`` ``[H, I]`` (effective), ``b`` ``[H]``, the constant input ``u``
    ``[I]`` and ``held`` ``[H]``, with the map's settings."""

    W: Any
    W_inp: Any
    b: Any
    u: Any
    held: Any
    dynamics: Dynamics
    space: str
    step: core.StepDynamics

    def drive(self, u=None):
        """``d = W_inp u + b`` ``[H]``."""
        return self.W_inp @ (self.u if u is None else u) + self.b

    def reduced(self, units, excluded):
        """``(W_r [n, n], d_r [n])``: the map on ``units`` with the other units held.

        The held units enter as a constant drive ``W[units, excluded] g(held)``,
        with ``g = f`` in x-space and the identity in h-space.
        """
        d = self.drive()
        if len(excluded) == 0:
            return self.W, d
        xp = namespace(self.W)
        rows = xp.take(self.W, units, 0)
        held = xp.take(self.held, excluded, 0)
        source = get_activation(self.dynamics.activation, xp.name)(held) if self.space == "x" else held
        return xp.take(rows, units, 1), xp.take(d, units, 0) + xp.take(rows, excluded, 1) @ source


def network(prob: core.Problem, as_array) -> Network:
    """The arrays of ``prob``, each made by ``as_array`` (numpy -> float64 array of a library)."""
    p = {k: as_array(v) for k, v in prob.params.items()}
    d = prob.dynamics
    W = effective_weight(p["W_rec"], p["W_rec_mask"], p["W_rec_sign_matrix"], d.rec_constrained)
    W_inp = effective_weight(p["W_inp"], p["W_inp_mask"], p["W_inp_sign_matrix"], d.inp_constrained)
    return Network(W, W_inp, p["base_firing"], as_array(prob.inputs), as_array(prob.held), d,
                   prob.space, prob.step_dynamics())


class Backend:
    """What a framework supplies to :class:`AnalysisFunctions` (numpy's versions,
    without autodiff; ``mrnn_torch`` and ``mrnn_jax`` subclass it).

    - `library`: the adapter's name (``"torch"``, ``"jax"``).
    - `context()`: a context manager every analysis call runs in (JAX: 64-bit mode).
    - `device(model)`: where the arrays go (None: the library's default).
    - `as_array(a, device)`: a numpy array as a float64 array of the library.
    - `jacobian(step, space, W, d, y)`: ``dF/dy`` ``[N, n, n]`` at ``y`` ``[N, n]``, by autodiff.
    - `input_jacobian(net, state)`: ``dF/du`` ``[H, I]`` at one state ``[H]``, by autodiff.
    - `iteration(step, space, tol, W, d)`: a function ``(y, q, mu, done) -> (y, q, mu, done)``
      running :func:`lm_iteration` over ``N`` searches.
    """

    library = "numpy"

    def context(self):
        return contextlib.nullcontext()

    def device(self, model):
        return None

    def as_array(self, a, device):
        return np.array(a, dtype=np.float64)

    def jacobian(self, step, space, W, d, y):
        return map_jacobian(step, space, W, d, y)

    def input_jacobian(self, net: Network, state):
        raise NotImplementedError

    def iteration(self, step, space, tol, W, d):
        return lambda y, q, mu, done: lm_iteration(step, space, tol, W, d, y, q, mu, done)


# -- the public functions ---------------------------------------------------------------


FUNCTION_NAMES = ("find_fixed_points", "jacobian", "jacobian_blocks", "linearise", "flow_field")
"""The analysis functions every backend's ``analysis`` package exports, in :func:`bind`'s order."""
RECORD_NAMES = ("FixedPoints", "FlowField", "JacobianBlocks", "Linearisation")
"""The :mod:`mrnn_core.analysis` records those packages re-export."""


def bind(backend) -> tuple:
    """The functions of :data:`FUNCTION_NAMES`, in that order, bound to ``backend``."""
    functions = AnalysisFunctions(backend)
    return tuple(getattr(functions, n) for n in FUNCTION_NAMES)


class AnalysisFunctions:
    """The analysis functions, bound to one :class:`Backend` (see each backend's ``analysis``)."""

    def __init__(self, backend: Backend):
        self._backend = backend

    def _network(self, prob, model):
        device = self._backend.device(model)
        return network(prob, lambda a: self._backend.as_array(a, device))

    def _host(self, a) -> np.ndarray:
        return adapter(self._backend.library).to_numpy(a)

    def find_fixed_points(self, model, dynamics=None, connectivity=None, *, inputs=None,
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
        torch runs the searches still going, in chunks that bound memory; JAX
        runs one jitted iteration mapped over every start (it compiles once per
        problem size).

        The maps (``mrnn_core.analysis``): x-space leaky
        ``F(x) = x + alpha (-x + W_rec_eff f(x) + W_inp_eff u + b)``, h-space leaky
        ``F(h) = h + alpha (-h + f(W_rec_eff h + W_inp_eff u + b))``, Elman the same
        with ``alpha = 1``.

        **Arguments:**

        - `model`: a model of this backend, a :class:`mrnn_core.Checkpoint`, or a
          mapping of named arrays (then `dynamics` is required and `connectivity`
          is needed to name regions). The model is never modified: the search
          runs in float64 (JAX: whatever ``jax_enable_x64`` says) on copies of
          its arrays, on the model's device.
        - `inputs`: the constant input ``u`` ``[I]`` (default zeros; finite).
        - `initial_states` ``[N, H]``, or `trajectories` ``[..., H]`` to draw
          `n_initial` starts from (``numpy.random.default_rng(seed)``), plus
          Gaussian noise of standard deviation `noise_scale`. States are
          pre-activations in x-space, rates in h-space; arrays of any backend
          are accepted as they come out of a forward call (a torch tensor that
          requires grad included).
        - `space`: ``"x"`` or ``"h"``.
        - `regions`: names (parents expand) of the regions to optimise; the
          other units stay at `held_state` ``[H]`` (default: the mean of the
          trajectories, or of the initial states).
        - `max_iters` (200), `tol` (1e-20, on ``q``), `damping` (1e-3): optimiser settings.
        - `merge_tol` (1e-6): points closer than this (Euclidean) are one point.
        - `outlier_scale` (10): flags points farther from every sampled state than
          this many times the spread of the sampled states.
        - `keep_unconverged`: also report searches that ended with ``q > tol``.
        - `progress`: show a progress bar (tqdm) on stderr.

        **Returns:** a :class:`mrnn_core.analysis.FixedPoints`, sorted by ``q``.
        """
        with self._backend.context():
            settings = core.search_settings(max_iters, tol, damping, merge_tol, outlier_scale)
            prob, starts, reference = core.search_problem(
                model, dynamics, connectivity, initial_states=initial_states,
                trajectories=trajectories, n_initial=n_initial, noise_scale=noise_scale, seed=seed,
                held_state=held_state, space=space, regions=regions, inputs=inputs)
            net = self._network(prob, model)
            W, d = net.reduced(prob.units, prob.excluded)
            step = prob.step_dynamics(prob.units)
            xp = namespace(W)
            device = self._backend.device(model)
            y = self._backend.as_array(starts[:, prob.units], device)
            q = residual(step, prob.space, W, d, y)
            mu = xp.zeros_like(q) + settings["damping"]
            iteration = self._backend.iteration(step, prob.space, settings["tol"], W, d)
            y, q = levenberg_marquardt(iteration, y, q, mu, q <= settings["tol"],
                                       max_iters=settings["max_iters"], tol=settings["tol"],
                                       progress=progress)
            y, q = self._host(y), self._host(q)
            kept, counts = core.select_points(q, y, settings["tol"], float(merge_tol), keep_unconverged)
            n = len(prob.units)
            J = (self._host(self._backend.jacobian(step, prob.space, W, d,
                                                   self._backend.as_array(y[kept], device)))
                 if len(kept) else np.zeros((0, n, n)))
            return core.fixed_point_record(
                prob.embed(y[kept]), q[kept], J, counts=counts, units=prob.units, inputs=prob.inputs,
                reference=reference, dynamics=prob.dynamics, space=prob.space, tol=settings["tol"],
                outlier_scale=float(outlier_scale))

    def _setup(self, model, dynamics, connectivity, space, inputs, regions=None):
        prob = core.problem(model, dynamics, connectivity, space=space, regions=regions,
                            inputs=inputs)
        return prob, self._network(prob, model), self._backend.device(model)

    def _full_jacobian(self, prob, net, device, state):
        s = core.as_states("state", state, prob.hidden_size)
        flat = self._backend.as_array(s.reshape(-1, prob.hidden_size), device)
        J = self._host(self._backend.jacobian(net.step, prob.space, net.W, net.drive(), flat))
        return J.reshape(s.shape[:-1] + J.shape[1:])

    def jacobian(self, model, dynamics=None, connectivity=None, *, state, inputs=None, space="x"):
        """The Jacobian ``dF/dstate`` of the one-step map, by autodiff.

        ``F`` is the map of :mod:`mrnn_core.analysis` with constant input ``u``;
        at a leaky x-space state it equals ``(1 - alpha) I + alpha W_rec_eff diag(f'(x))``.

        **Arguments:** `model` as in :func:`find_fixed_points`; `state` ``[..., H]``
        (pre-activations in x-space, rates in h-space); `inputs` ``u`` ``[I]``
        (default zeros); `space` ``"x"`` or ``"h"``.

        **Returns:** numpy ``[..., H, H]``, rows the next state's units.
        """
        with self._backend.context():
            prob, net, device = self._setup(model, dynamics, connectivity, space, inputs)
            return self._full_jacobian(prob, net, device, state)

    def jacobian_blocks(self, model, dynamics=None, connectivity=None, *, state, regions,
                        inputs=None, space="x") -> core.JacobianBlocks:
        """The region blocks of :func:`jacobian` at ``state`` ``[..., H]``.

        `regions` (names; parents expand) are the included units: the blocks are
        included x included and excluded -> included (rows included, columns
        excluded). **Returns:** a :class:`mrnn_core.analysis.JacobianBlocks`.
        """
        if regions is None:
            raise MRNNConfigError("regions: expected the names of the included regions, got None")
        with self._backend.context():
            prob, net, device = self._setup(model, dynamics, connectivity, space, inputs, regions)
            rows = self._full_jacobian(prob, net, device, state)[..., prob.units, :]
            return core.JacobianBlocks(included=rows[..., prob.units],
                                       excluded_to_included=rows[..., prob.excluded],
                                       units=prob.units, excluded=prob.excluded)

    def linearise(self, model, dynamics=None, connectivity=None, *, state, inputs=None,
                  space="x") -> core.Linearisation:
        """The first-order approximation of the one-step map around ``(state, inputs)``.

        ``F(state + ds, u + du) ~ F(state, u) + (dF/dstate) ds + (dF/du) du``.

        **Arguments:** `state` ``[H]``; `inputs` ``u`` ``[I]`` (default zeros);
        the rest as :func:`jacobian`. **Returns:** a
        :class:`mrnn_core.analysis.Linearisation` (callable on perturbations).
        """
        with self._backend.context():
            prob, net, device = self._setup(model, dynamics, connectivity, space, inputs)
            s = core.as_states("state", state, prob.hidden_size, single=True)
            x = self._backend.as_array(s, device)
            value = step_map(net.step, prob.space, net.W, net.drive(), x)
            A = self._backend.jacobian(net.step, prob.space, net.W, net.drive(), x[None])[0]
            return core.Linearisation(state=s, inputs=prob.inputs, value=self._host(value),
                                      state_jacobian=self._host(A),
                                      input_jacobian=self._host(self._backend.input_jacobian(net, x)),
                                      space=prob.space)

    def flow_field(self, model, dynamics=None, connectivity=None, *, trajectories=None, basis=None,
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
        with self._backend.context():
            prob, plane = core.flow_problem(
                model, dynamics, connectivity, trajectories=trajectories, basis=basis,
                origin=origin, limits=limits, resolution=resolution, held_state=held_state,
                linearise_at=linearise_at, space=space, regions=regions, inputs=inputs)
            net = self._network(prob, model)
            d = net.drive()
            device = self._backend.device(model)
            grid_next = step_map(net.step, prob.space, net.W, d,
                                 self._backend.as_array(plane.states, device))
            at = self._backend.as_array(plane.linearised_at, device)
            next_at = step_map(net.step, prob.space, net.W, d, at)
            J = self._backend.jacobian(net.step, prob.space, net.W, d, at[None])[0]
            return core.flow_record(prob, plane, self._host(grid_next), self._host(next_at),
                                    self._host(J))


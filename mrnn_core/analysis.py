"""Backend-neutral pieces of the dynamical-systems analysis (numpy only).

The analysis functions themselves (:mod:`mrnn_core.analysis_driver`, bound
to torch in ``mrnn_torch.analysis`` and to JAX in ``mrnn_jax.analysis``) run
the map and the search on a backend's arrays; what they share in numpy is
here: checking the caller's arguments (arrays of any backend, a tensor that
requires grad included), sampling initial states, merging duplicate fixed
points, flagging outliers, sorted eigen-decompositions, stability flags, the
PCA plane of a flow field, the closed-form Jacobian, the optimiser's
constants, the progress bar and the records the analysis functions return.

**The one-step maps.** With constant input ``u``, ``d = W_inp_eff u + b``
and ``alpha = dynamics.alpha`` (1 for Elman):

- x-space (pre-activations): leaky ``F(x) = x + alpha (-x + W_rec_eff f(x) + d)``;
  Elman ``F(x) = W_rec_eff f(x) + d``.
- h-space (rates): leaky ``F(h) = h + alpha (-h + f(W_rec_eff h + d))`` (the
  Euler step of the rate equation ``tau dh/dt = -h + f(W_rec_eff h + d)``);
  Elman ``F(h) = f(W_rec_eff h + d)``.

A fixed point ``x*`` of the x-map gives the fixed point ``f(x*)`` of the
h-map, and their Jacobians share their eigenvalues.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ._arrays import namespace, to_numpy
from .activations import derivative
from .connectivity import Connectivity
from .dynamics import Dynamics, uniform_alpha
from .errors import MRNNConfigError
from .init import PARAM_NAMES

SPACES = ("x", "h")
"""The state spaces a map can act on: pre-activations ``x`` or rates ``h``."""


# -- arguments ------------------------------------------------------------------


def resolve_model(model, dynamics=None, connectivity=None, to_numpy=to_numpy):
    """``(params, dynamics, connectivity)`` from whatever the caller analyses.

    **Arguments:**

    - `model`: a model of either backend (anything with ``to_checkpoint()``),
      a :class:`mrnn_core.Checkpoint`, or a mapping of named arrays.
    - `dynamics`: required with a mapping; must be None otherwise.
    - `connectivity`: optional with a mapping (needed only to name regions).
    - `to_numpy`: turns one array of the mapping into numpy (the default
      takes numpy, torch and JAX arrays, detaching a tensor without touching it).

    **Returns:** float64 numpy copies of the parameters, the :class:`Dynamics`
    and the :class:`Connectivity` (or None). Nothing of ``model`` is modified.
    """
    from .checkpoint import Checkpoint

    if hasattr(model, "to_checkpoint"):
        model = model.to_checkpoint()
    if isinstance(model, Checkpoint):
        if dynamics is not None:
            raise MRNNConfigError(
                "dynamics: a model or checkpoint carries its own dynamics; expected "
                f"dynamics=None, got {dynamics!r}")
        return dict(model.params), model.dynamics, connectivity or model.connectivity
    if not isinstance(model, Mapping):
        raise MRNNConfigError(
            "model: expected a model, a mrnn_core.Checkpoint or a mapping of named "
            f"arrays, got {type(model).__name__}")
    if not isinstance(dynamics, Dynamics):
        raise MRNNConfigError(
            "dynamics: analysing a mapping of arrays needs its mrnn_core.Dynamics, "
            f"got {type(dynamics).__name__}")
    needed = [k for k in PARAM_NAMES if k not in ("init", "tau")]  # tau: optional, per unit
    missing = [k for k in needed if k not in model]
    if missing:
        raise MRNNConfigError(
            f"model: the mapping lacks {', '.join(map(repr, missing))}; expected the "
            f"arrays {', '.join(needed)}")
    if connectivity is not None and not isinstance(connectivity, Connectivity):
        raise MRNNConfigError(
            f"connectivity: expected a mrnn_core.Connectivity or None, got "
            f"{type(connectivity).__name__}")
    params = {k: np.array(to_numpy(v), dtype=np.float64) for k, v in model.items()}
    return params, dynamics, connectivity


def check_space(space) -> str:
    """``space`` if it is ``"x"`` or ``"h"``, else an error naming both."""
    if space not in SPACES:
        raise MRNNConfigError(f"space: expected 'x' (pre-activations) or 'h' (rates), got {space!r}")
    return space


def included_units(connectivity: Connectivity | None, regions, hidden_size: int) -> np.ndarray:
    """Indices of the units an analysis acts on, in network order.

    ``regions`` is None (every unit), one name or a sequence of names;
    parent names expand to their children.
    """
    if regions is None:
        return np.arange(hidden_size)
    if isinstance(regions, str):
        regions = (regions,)
    if connectivity is None:
        raise MRNNConfigError(
            f"regions={tuple(regions)!r}: naming regions needs the network's layout; "
            "pass connectivity= (or analyse a model or checkpoint)")
    if len(regions) == 0:
        raise MRNNConfigError("regions: expected at least one region name (or None for all), got none")
    return np.sort(connectivity.unit_indices(*regions))


def _float64(name: str, values) -> np.ndarray:
    """A float64 numpy copy of ``values`` (numbers, numpy, torch or JAX arrays;
    a tensor that requires grad is detached, never modified)."""
    try:
        return np.array(to_numpy(values), dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MRNNConfigError(f"{name}: expected an array of real numbers, got "
                              f"{type(values).__name__} ({e})") from None


def _check_finite(name: str, a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if np.any(bad):
        where = np.argwhere(bad)[:3].tolist()
        raise MRNNConfigError(
            f"{name}: expected finite values, got {int(bad.sum())} NaN or inf "
            f"(first at index {', '.join(map(str, where))})")
    return a


def as_states(name: str, states, hidden_size: int, single: bool = False) -> np.ndarray:
    """``states`` as float64 ``[..., H]`` (``[H]`` when ``single``), checked."""
    a = _float64(name, states)
    ok = a.shape == (hidden_size,) if single else (a.ndim >= 1 and a.shape[-1] == hidden_size)
    if not ok:
        want = f"({hidden_size},) = [H]" if single else f"[..., H] with H = {hidden_size}"
        raise MRNNConfigError(f"{name}: expected shape {want}, got {a.shape}")
    return _check_finite(name, a)


def constant_input(inputs, input_size: int) -> np.ndarray:
    """The constant input ``u`` ``[I]`` (zeros when None), checked: a NaN or inf
    input would make every search fail, and the finder report no fixed point."""
    if inputs is None:
        return np.zeros(input_size)
    u = _float64("inputs", inputs)
    if u.shape != (input_size,):
        raise MRNNConfigError(f"inputs: expected a constant input of shape ({input_size},) = [I], got {u.shape}")
    return _check_finite("inputs", u)


def check_positive(name: str, value, integer: bool = False, allow_zero: bool = False):
    """``value`` if it is a positive number (an integer when asked), else an error."""
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
    if not bad:
        bad = (integer and int(value) != value) or not np.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero)
    if bad:
        kind = "an integer" if integer else "a number"
        raise MRNNConfigError(f"{name}: expected {kind} {'>=' if allow_zero else '>'} 0, got {value!r}")
    return int(value) if integer else float(value)


@dataclass(frozen=True)
class StepDynamics:
    """What the one-step map needs: ``kind``, ``activation`` and ``alpha``.

    ``alpha`` is a float, or a tuple with one entry per analysed unit when the
    regions have their own time constants (hashable, so JAX can treat it as
    static). Elman maps ignore it.
    """

    kind: str
    activation: str
    alpha: float | tuple


@dataclass(frozen=True, eq=False)
class Problem:
    """One analysis call's checked arguments, as numpy.

    - `params`: float64 copies of the named arrays; `dynamics`, `connectivity`.
    - `space`: ``"x"`` or ``"h"``; `units` ``[n]``: the analysed units.
    - `inputs` ``[I]``: the constant input; `held` ``[H]``: the state of the
      units outside `units` (its entries at `units` are not used).
    """

    params: dict
    dynamics: Dynamics
    connectivity: Connectivity | None
    space: str
    units: np.ndarray
    inputs: np.ndarray
    held: np.ndarray

    @property
    def hidden_size(self) -> int:
        return self.params["W_rec"].shape[0]

    @property
    def excluded(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.hidden_size), self.units)

    def step_dynamics(self, units=None) -> StepDynamics:
        """The map's settings for all units, or for ``units`` only (a reduced map).

        alpha comes from the per-unit ``tau`` in ``params`` when present (a
        model's checkpoint carries it), else from ``dynamics``.
        """
        d = self.dynamics
        tau = self.params.get("tau")
        alpha = d.alpha if tau is None else uniform_alpha(tau, d)
        if not isinstance(alpha, float):
            alpha = tuple(float(a) for a in (alpha if units is None else alpha[units]))
        return StepDynamics(d.kind, d.activation, alpha)

    def embed(self, y) -> np.ndarray:
        """Full states ``[..., H]``: ``held`` with the analysed units set to ``y`` ``[..., n]``."""
        y = np.asarray(y, dtype=np.float64)
        out = np.broadcast_to(self.held, y.shape[:-1] + (self.hidden_size,)).copy()
        out[..., self.units] = y
        return out


def problem(model, dynamics, connectivity, *, to_numpy=to_numpy, space="x", regions=None,
            inputs=None, held_state=None) -> Problem:
    """Check and gather what every analysis function needs (see :class:`Problem`).

    ``held_state`` ``[H]`` defaults to zeros (the finders and the flow field
    replace that default by the mean of the states they are given).
    """
    params, dynamics, connectivity = resolve_model(model, dynamics, connectivity, to_numpy)
    H, I = np.shape(params["W_inp"])
    units = included_units(connectivity, regions, H)
    held = np.zeros(H) if held_state is None else as_states("held_state", held_state, H, single=True)
    return Problem(params, dynamics, connectivity, check_space(space), units,
                   constant_input(inputs, I), held)


def search_starts(initial_states, trajectories, n_initial, noise_scale, seed, hidden_size: int):
    """``(starts [N, H], reference [M, H])``: where the searches begin, and the
    states that outliers are judged against (the trajectories when given,
    else the initial states)."""
    if initial_states is None and trajectories is None:
        raise MRNNConfigError(
            "initial_states, trajectories: expected one of them (states [N, H] to start "
            "from, or trajectories [..., H] to sample starts from), got neither")
    if initial_states is not None and trajectories is not None:
        raise MRNNConfigError(
            "initial_states, trajectories: expected one of them, got both; pass the "
            "trajectories alone to sample starts from them")
    if initial_states is not None:
        starts = as_states("initial_states", initial_states, hidden_size).reshape(-1, hidden_size)
        if len(starts) == 0:
            raise MRNNConfigError("initial_states: expected at least one state, got none")
        return starts, starts
    reference = as_states("trajectories", trajectories, hidden_size).reshape(-1, hidden_size)
    n = check_positive("n_initial", n_initial, integer=True)
    noise = check_positive("noise_scale", noise_scale, allow_zero=True)
    return sample_initial_states(reference, n, noise, seed), reference


def search_problem(model, dynamics, connectivity, *, to_numpy=to_numpy, initial_states=None,
                   trajectories=None, n_initial=256, noise_scale=0.0, seed=0, held_state=None,
                   **kwargs):
    """``(problem, starts [N, H], reference [M, H])`` for a fixed-point search.

    The held state defaults to the mean of the reference states.
    ``kwargs`` (``space``, ``regions``, ``inputs``) go to :func:`problem`.
    """
    prob = problem(model, dynamics, connectivity, to_numpy=to_numpy, held_state=held_state, **kwargs)
    starts, reference = search_starts(initial_states, trajectories, n_initial, noise_scale,
                                      seed, prob.hidden_size)
    if held_state is None:
        prob = replace(prob, held=reference.mean(axis=0))
    return prob, starts, reference


def select_points(q, points, tol: float, merge_tol: float, keep_unconverged: bool):
    """Indices of the distinct points to report and how many searches ended at each.

    Points with ``q > tol`` are dropped unless ``keep_unconverged``; the rest
    are merged by :func:`merge_duplicates`. **Returns:** ``(kept, counts)``.
    """
    q = np.asarray(q)
    candidates = np.flatnonzero(np.isfinite(q) & ((q <= tol) | keep_unconverged))
    kept, counts = merge_duplicates(np.asarray(points)[candidates], q[candidates], merge_tol)
    return candidates[kept], counts


# -- the optimiser both backends run ----------------------------------------------

DAMPING_DECREASE = 1.0 / 3.0
"""Factor applied to the Levenberg-Marquardt damping after an accepted step."""
DAMPING_INCREASE = 4.0
"""Factor applied after a rejected step."""
DAMPING_MIN = 1e-15
DAMPING_MAX = 1e10
"""A search whose damping reaches this is stuck (a slow point, or q at rounding level)."""
STALL = 1e-10
"""A search ends when an accepted step lowers ``q`` by less than this fraction (a slow point)."""


def search_settings(max_iters, tol, damping, merge_tol, outlier_scale) -> dict:
    """The checked optimiser settings a finder passes to its search loop."""
    check_positive("merge_tol", merge_tol, allow_zero=True)
    check_positive("outlier_scale", outlier_scale)
    return {"max_iters": check_positive("max_iters", max_iters, integer=True, allow_zero=True),
            "tol": check_positive("tol", tol, allow_zero=True),
            "damping": check_positive("damping", damping)}


def chunk_size(n: int, budget: int = 2**22) -> int:
    """How many ``[n, n]`` matrices to hold at once (``budget`` numbers, 32 MiB in float64)."""
    return max(1, budget // max(n * n, 1))


# -- initial states, duplicates and outliers --------------------------------------


def sample_initial_states(trajectories, n: int, noise_scale: float = 0.0, seed=0) -> np.ndarray:
    """``n`` states drawn from ``trajectories`` ``[..., H]``, plus Gaussian noise.

    Every state of every trajectory is equally likely (drawn without
    replacement while there are enough). The draws come from
    ``numpy.random.default_rng(seed)``, so every backend starts from the same
    states. **Returns:** ``[n, H]``.
    """
    pool = np.asarray(trajectories, dtype=np.float64)
    pool = pool.reshape(-1, pool.shape[-1])
    if len(pool) == 0:
        raise MRNNConfigError("trajectories: expected at least one state to sample from, got none")
    rng = np.random.default_rng(seed)
    states = pool[rng.choice(len(pool), size=n, replace=len(pool) < n)]
    if noise_scale:
        states = states + noise_scale * rng.standard_normal(states.shape)
    return states


def merge_duplicates(points, q, tol: float):
    """Group points closer than ``tol`` (Euclidean); keep the lowest ``q`` of each group.

    Greedy in order of increasing ``q``: a point joins the first kept point
    within ``tol``, else it is kept. **Returns:** ``(kept, counts)``, the
    indices of the kept points (increasing ``q``) and how many points each
    one stands for.
    """
    points = np.asarray(points, dtype=np.float64)
    kept: list[int] = []
    counts: list[int] = []
    for i in np.argsort(np.asarray(q), kind="stable"):
        if kept:
            d = np.linalg.norm(points[kept] - points[i], axis=1)
            j = int(np.argmin(d))
            if d[j] <= tol:
                counts[j] += 1
                continue
        kept.append(int(i))
        counts.append(1)
    return np.asarray(kept, dtype=int), np.asarray(counts, dtype=int)


def outlier_flags(points, reference, scale: float) -> np.ndarray:
    """True where a point lies far from every reference state.

    Far means: its distance to the nearest reference state exceeds ``scale``
    times the RMS distance of the reference states from their mean (the size
    of the region the network visits). **Returns:** ``[K]`` booleans.
    """
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1, points.shape[-1])
    spread = np.sqrt(np.mean(np.sum((reference - reference.mean(0)) ** 2, axis=1)))
    nearest = np.array([np.min(np.linalg.norm(reference - p, axis=1)) for p in points])
    return nearest > scale * spread if len(points) else np.zeros(0, dtype=bool)


# -- linear algebra -----------------------------------------------------------------


def sorted_eig(jacobians):
    """Eigenvalues and eigenvectors of ``[..., n, n]`` matrices, largest ``|lambda|`` first.

    Ties in magnitude (complex-conjugate pairs) put the positive imaginary
    part first. **Returns:** ``(eigenvalues [..., n], eigenvectors [..., n, n])``
    with column ``j`` the unit eigenvector of eigenvalue ``j``; complex.
    """
    J = np.asarray(jacobians, dtype=np.float64)
    values, vectors = np.linalg.eig(J)
    order = np.lexsort((-values.imag, -np.abs(values)), axis=-1)
    values = np.take_along_axis(values, order, axis=-1)
    vectors = np.take_along_axis(vectors, order[..., None, :], axis=-1)
    return values.astype(complex), vectors.astype(complex)


def stability_flags(eigenvalues, kind: str):
    """``(stable_discrete, stable_continuous)`` from eigenvalues of the step map's Jacobian.

    Discrete map: stable when every ``|lambda| < 1``. Continuous-time leaky
    system: its Jacobian is ``(J - I) / dt``, so it is stable when every
    ``Re(lambda) < 1``. Elman has no continuous-time system: None.
    """
    ev = np.asarray(eigenvalues)
    discrete = np.all(np.abs(ev) < 1.0, axis=-1)
    continuous = np.all(ev.real < 1.0, axis=-1) if kind == "leaky" else None
    return discrete, continuous


def activation_derivative(name: str, z):
    """``f'(z)`` of activation ``name`` in float64 numpy (relu' is 0 at 0);
    see :func:`mrnn_core.activations.derivative`."""
    return derivative(name, np.asarray(z, dtype=np.float64))


def closed_form(W, fprime, alpha, space: str):
    """``dF/dy`` ``[..., n, n]`` from ``f'`` ``[..., n]``, on any library's arrays.

    ``alpha`` is a float (1 for Elman) or a per-unit array ``[n]`` of ``W``'s
    library, which scales the rows: ``diag(1 - alpha) + diag(alpha) (...)``.
    See :func:`closed_form_jacobian`.
    """
    xp = namespace(W)
    scaled = W * fprime[..., None, :] if space == "x" else fprime[..., :, None] * W
    if isinstance(alpha, float):
        return scaled if alpha == 1.0 else (1.0 - alpha) * xp.eye(W.shape[0], W) + alpha * scaled
    return (1.0 - alpha)[:, None] * xp.eye(W.shape[0], W) + alpha[:, None] * scaled


def closed_form_jacobian(W_rec_eff, fprime, alpha: float, space: str = "x"):
    """The Jacobian of the one-step map, without autodiff.

    x-space: ``(1 - alpha) I + alpha W_rec_eff diag(f'(x))``;
    h-space: ``(1 - alpha) I + alpha diag(f'(W_rec_eff h + d)) W_rec_eff``.
    ``alpha = 1`` gives Elman. ``fprime`` ``[..., H]`` is ``f'`` at ``x`` (x-space)
    or at ``W_rec_eff h + d`` (h-space). **Returns:** ``[..., H, H]``.
    """
    check_space(space)
    W = np.asarray(W_rec_eff, dtype=np.float64)
    fp = np.asarray(fprime, dtype=np.float64)
    alpha = float(alpha) if np.ndim(alpha) == 0 else np.asarray(alpha, dtype=np.float64)
    return closed_form(W, fp, alpha, space)


def pca_plane(trajectories, units=None):
    """The plane of the top two principal components of ``trajectories`` ``[..., H]``.

    With ``units``, only those units are analysed (the basis is zero
    elsewhere). Each component's sign is fixed so its largest-magnitude entry
    is positive, so every backend draws the same plane.
    **Returns:** ``(origin [H], basis [H, 2])``: the mean state and two
    orthonormal columns.
    """
    X = np.asarray(trajectories, dtype=np.float64)
    X = X.reshape(-1, X.shape[-1])
    H = X.shape[1]
    units = np.arange(H) if units is None else np.asarray(units)
    if len(X) < 2 or len(units) < 2:
        raise MRNNConfigError(
            f"trajectories: a PCA plane needs at least 2 states and 2 units, got "
            f"{len(X)} states over {len(units)} units")
    origin = X.mean(axis=0)
    _, _, Vt = np.linalg.svd(X[:, units] - origin[units], full_matrices=False)
    components = Vt[:2].T
    biggest = np.argmax(np.abs(components), axis=0)
    components = components * np.sign(components[biggest, [0, 1]])
    basis = np.zeros((H, 2))
    basis[units] = components
    return origin, basis


# -- records ------------------------------------------------------------------------


def _frozen(a):
    if a is None:
        return None
    a = np.array(a)
    a.setflags(write=False)
    return a


class _Record:
    """Read-only arrays, set once."""

    def __post_init__(self):
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, name, _frozen(value))


@dataclass(frozen=True, eq=False)
class FixedPoints(_Record):
    """What a fixed-point search found: ``K`` points and their linearisations.

    **Fields** (``n`` = number of optimised units, ``H`` = all units):

    - `points` ``[K, H]``: the fixed points (units outside the analysed
      regions hold the given states), sorted by increasing ``q``.
    - `q` ``[K]``: ``1/2 |F(x) - x|^2`` over the optimised units.
    - `jacobians` ``[K, n, n]``: ``dF/dx`` over the optimised units (autodiff).
    - `eigenvalues` ``[K, n]``, `eigenvectors` ``[K, n, n]`` (complex): of the
      Jacobians, largest ``|lambda|`` first; column ``j`` goes with value ``j``.
    - `stable_discrete` ``[K]``: every ``|lambda| < 1``.
    - `stable_continuous` ``[K]``: leaky only (else None), every eigenvalue of
      the continuous-time Jacobian ``(J - I) / dt`` has a negative real part.
    - `is_outlier` ``[K]``: far from every sampled state (see :func:`outlier_flags`).
    - `counts` ``[K]``: how many initial states ended at each point.
    - `units` ``[n]``: indices of the optimised units.
    - `inputs` ``[I]``: the constant input.
    - `space` (``"x"``/``"h"``), `kind` (``"leaky"``/``"elman"``), `dt`, `tol`.
    """

    points: np.ndarray
    q: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    stable_discrete: np.ndarray
    stable_continuous: np.ndarray | None
    is_outlier: np.ndarray
    counts: np.ndarray
    units: np.ndarray
    inputs: np.ndarray
    space: str
    kind: str
    dt: float
    tol: float

    def __len__(self) -> int:
        return len(self.q)

    @property
    def continuous_eigenvalues(self) -> np.ndarray:
        """``(lambda - 1) / dt`` ``[K, n]``: eigenvalues of the leaky network's
        continuous-time Jacobian, in 1 / (the unit of ``dt``)."""
        if self.kind != "leaky":
            raise MRNNConfigError("continuous_eigenvalues: an Elman network has no continuous-time system")
        return (self.eigenvalues - 1.0) / self.dt

    def subset(self, keep) -> FixedPoints:
        """The record restricted to ``keep`` (a boolean mask or indices over the points)."""
        keep = np.asarray(keep)
        pick = lambda a: None if a is None else np.asarray(a)[keep]  # noqa: E731
        return replace(self, **{name: pick(getattr(self, name)) for name in (
            "points", "q", "jacobians", "eigenvalues", "eigenvectors", "stable_discrete",
            "stable_continuous", "is_outlier", "counts")})

    def __repr__(self) -> str:
        stable = int(np.sum(self.stable_discrete))
        return (f"FixedPoints({len(self)} points, {stable} stable, "
                f"{int(np.sum(self.is_outlier))} outliers, space={self.space!r}, "
                f"{len(self.units)} units)")


def fixed_point_record(points, q, jacobians, *, counts, units, inputs, reference,
                       dynamics: Dynamics, space: str, tol: float,
                       outlier_scale: float) -> FixedPoints:
    """Assemble a :class:`FixedPoints` from merged, polished points and their Jacobians."""
    values, vectors = sorted_eig(jacobians) if len(q) else (
        np.zeros((0, len(units)), complex), np.zeros((0, len(units), len(units)), complex))
    discrete, continuous = stability_flags(values, dynamics.kind)
    return FixedPoints(
        points=points, q=q, jacobians=jacobians, eigenvalues=values, eigenvectors=vectors,
        stable_discrete=discrete, stable_continuous=continuous,
        is_outlier=outlier_flags(np.asarray(points)[:, units], np.asarray(reference)[..., units],
                                 outlier_scale),
        counts=counts, units=units, inputs=inputs, space=space, kind=dynamics.kind,
        dt=dynamics.dt, tol=tol)


@dataclass(frozen=True, eq=False)
class JacobianBlocks(_Record):
    """Region blocks of the one-step map's Jacobian ``J = dF/dstate`` at one state.

    - `included` ``[n, n]``: ``J[units][:, units]`` (included x included).
    - `excluded_to_included` ``[n, H - n]``: ``J[units][:, excluded]``, how
      the excluded units drive the included ones in one step.
    - `units` ``[n]``, `excluded` ``[H - n]``: unit indices, network order.
    """

    included: np.ndarray
    excluded_to_included: np.ndarray
    units: np.ndarray
    excluded: np.ndarray


@dataclass(frozen=True, eq=False)
class Linearisation(_Record):
    """The first-order approximation of the one-step map around ``(state, inputs)``.

    ``F(state + d_state, inputs + d_input) ~ value + state_jacobian d_state
    + input_jacobian d_input``, with error ``O(|d|^2)``.

    - `state` ``[H]``, `inputs` ``[I]``: the expansion point.
    - `value` ``[H]``: ``F(state, inputs)``.
    - `state_jacobian` ``[H, H]``, `input_jacobian` ``[H, I]``: derivatives of ``F``.
    - `space`: ``"x"`` or ``"h"``.
    """

    state: np.ndarray
    inputs: np.ndarray
    value: np.ndarray
    state_jacobian: np.ndarray
    input_jacobian: np.ndarray
    space: str

    def __call__(self, d_state, d_input=None) -> np.ndarray:
        """The predicted next state for perturbations ``d_state`` ``[..., H]``
        and ``d_input`` ``[..., I]`` (zero when None). **Returns:** ``[..., H]``."""
        out = self.value + np.asarray(d_state, dtype=np.float64) @ self.state_jacobian.T
        if d_input is not None:
            out = out + np.asarray(d_input, dtype=np.float64) @ self.input_jacobian.T
        return out


@dataclass(frozen=True, eq=False)
class FlowField(_Record):
    """Velocities of the dynamics on a grid over a 2-D plane of state space.

    The plane is ``state(c) = origin + basis @ c`` for plane coordinates ``c``.
    The velocity at a state is ``F(state) - state`` (one step's displacement),
    expressed in plane coordinates by least squares onto the basis.

    - `c1` ``[R1]``, `c2` ``[R2]``: the grid's coordinates along each basis vector.
    - `states` ``[R2, R1, H]``: the grid's states (``states[j, i]`` at ``(c1[i], c2[j])``,
      the layout ``matplotlib.pyplot.quiver(c1, c2, U, V)`` expects).
    - `velocity` ``[R2, R1, 2]``: of the nonlinear map.
    - `linear_velocity` ``[R2, R1, 2]``: of the map linearised at `linearised_at`.
    - `speed` ``[R2, R1]``: ``|F(state) - state|`` over the analysed units (not projected).
    - `origin` ``[H]``, `basis` ``[H, 2]``, `linearised_at` ``[H]``, `units` ``[n]``, `space`.
    """

    c1: np.ndarray
    c2: np.ndarray
    states: np.ndarray
    velocity: np.ndarray
    linear_velocity: np.ndarray
    speed: np.ndarray
    origin: np.ndarray
    basis: np.ndarray
    linearised_at: np.ndarray
    units: np.ndarray
    space: str

    def project(self, states) -> np.ndarray:
        """Plane coordinates ``[..., 2]`` of states ``[..., H]`` (least squares)."""
        return project(np.asarray(states, dtype=np.float64) - self.origin, self.basis)


def project(vectors, basis) -> np.ndarray:
    """Coordinates ``[..., 2]`` of ``vectors`` ``[..., H]`` on ``basis`` ``[H, 2]`` (least squares)."""
    return np.asarray(vectors) @ np.linalg.pinv(basis).T


def check_basis(basis, hidden_size: int, units) -> np.ndarray:
    """A user's ``basis`` ``[H, 2]``: two independent columns, zero outside ``units``."""
    B = _float64("basis", basis)
    if B.shape != (hidden_size, 2):
        raise MRNNConfigError(f"basis: expected shape ({hidden_size}, 2) = [H, 2], got {B.shape}")
    if np.linalg.matrix_rank(B) < 2:
        raise MRNNConfigError("basis: expected two linearly independent columns, got a rank-deficient basis")
    outside = np.setdiff1d(np.arange(hidden_size), units)
    if np.any(B[outside] != 0):
        raise MRNNConfigError(
            "basis: expected zero rows for the units outside the analysed regions, "
            f"got nonzero entries at units {outside[np.any(B[outside] != 0, axis=1)][:5].tolist()}")
    return B


def grid(origin, basis, limits, resolution: int):
    """``(c1 [R], c2 [R], states [R, R, H])`` over ``limits = ((lo1, hi1), (lo2, hi2))``."""
    (lo1, hi1), (lo2, hi2) = limits
    c1 = np.linspace(lo1, hi1, resolution)
    c2 = np.linspace(lo2, hi2, resolution)
    C1, C2 = np.meshgrid(c1, c2)
    states = origin + C1[..., None] * basis[:, 0] + C2[..., None] * basis[:, 1]
    return c1, c2, states


def grid_limits(coordinates, margin: float = 0.1):
    """Limits covering ``coordinates`` ``[..., 2]`` plus ``margin`` of their range each side."""
    c = np.asarray(coordinates).reshape(-1, 2)
    lo, hi = c.min(axis=0), c.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-12)
    return tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad))


def check_limits(limits):
    """``((lo1, hi1), (lo2, hi2))`` with ``lo < hi``, else an error."""
    try:
        (lo1, hi1), (lo2, hi2) = limits
        ok = lo1 < hi1 and lo2 < hi2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MRNNConfigError(f"limits: expected ((lo1, hi1), (lo2, hi2)) with lo < hi, got {limits!r}")
    return tuple((float(a), float(b)) for a, b in limits)


@dataclass(frozen=True, eq=False)
class Plane:
    """Where a flow field is drawn: ``states[j, i] = origin + basis @ (c1[i], c2[j])``,
    and the state ``linearised_at`` ``[H]`` of its linearisation."""

    origin: np.ndarray
    basis: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    states: np.ndarray
    linearised_at: np.ndarray


def flow_problem(model, dynamics, connectivity, *, to_numpy=to_numpy, trajectories=None,
                 basis=None, origin=None, limits=None, resolution=25, held_state=None,
                 linearise_at=None, **kwargs):
    """``(problem, plane)`` for a flow field (see ``flow_field`` in either backend).

    The plane: `basis` ``[H, 2]`` or the top two principal components of
    `trajectories` over the analysed units; `origin` ``[H]`` or the mean of
    the trajectories (else `held_state`, else zeros), with the units outside
    the analysed regions set to `held_state` when it is given; `limits`
    ``((lo1, hi1), (lo2, hi2))`` or the trajectories' extent plus 10 %
    (else ``((-1, 1), (-1, 1))``); `resolution` points per axis.
    """
    prob = problem(model, dynamics, connectivity, to_numpy=to_numpy, held_state=held_state, **kwargs)
    H = prob.hidden_size
    traj = None if trajectories is None else as_states("trajectories", trajectories, H)
    resolution = check_positive("resolution", resolution, integer=True)
    if resolution < 2:
        raise MRNNConfigError(f"resolution: expected an integer >= 2 (grid points per axis), got {resolution}")
    if basis is None:
        if traj is None:
            raise MRNNConfigError(
                "basis, trajectories: a flow field needs a plane; expected a basis [H, 2] "
                "or trajectories [..., H] to take the top two principal components of, got neither")
        mean, B = pca_plane(traj, prob.units)
    else:
        mean = None if traj is None else traj.reshape(-1, H).mean(axis=0)
        B = check_basis(basis, H, prob.units)
    if origin is not None:
        start = as_states("origin", origin, H, single=True)
    elif mean is not None:
        start = mean
    else:
        start = prob.held.copy()
    if held_state is not None:
        start = start.copy()
        start[prob.excluded] = prob.held[prob.excluded]
    prob = replace(prob, held=start)
    if limits is not None:
        limits = check_limits(limits)
    elif traj is not None:
        limits = grid_limits(project(traj - start, B))
    else:
        limits = ((-1.0, 1.0), (-1.0, 1.0))
    c1, c2, states = grid(start, B, limits, resolution)
    at = start if linearise_at is None else as_states("linearise_at", linearise_at, H, single=True)
    return prob, Plane(start, B, c1, c2, states, at)


def flow_record(prob: Problem, plane: Plane, next_states, next_at, jacobian_at) -> FlowField:
    """A :class:`FlowField` from ``F`` on the grid ``[R2, R1, H]``, and ``F`` and
    ``dF/dstate`` ``[H, H]`` at ``plane.linearised_at``."""
    displacement = np.asarray(next_states) - plane.states
    A = np.asarray(jacobian_at) - np.eye(prob.hidden_size)
    linear = (np.asarray(next_at) - plane.linearised_at) + (plane.states - plane.linearised_at) @ A.T
    return FlowField(
        c1=plane.c1, c2=plane.c2, states=plane.states,
        velocity=project(displacement, plane.basis),
        linear_velocity=project(linear, plane.basis),
        speed=np.linalg.norm(displacement[..., prob.units], axis=-1),
        origin=plane.origin, basis=plane.basis, linearised_at=plane.linearised_at,
        units=prob.units, space=prob.space)


# -- progress -----------------------------------------------------------------------


class Progress:
    """A progress bar on stderr (tqdm, which suits terminals, notebooks and logs).

    ``update(done, note)`` moves it to ``done`` of ``total`` steps with a short
    note; ``close(done, note)`` draws the last state. Silent when ``enabled``
    is False.
    """

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None):
        from tqdm.auto import tqdm

        self.enabled = enabled
        self._bar = tqdm(total=total, desc=label, disable=not enabled, leave=True,
                         file=stream or sys.stderr, dynamic_ncols=True,
                         bar_format="{desc} [{bar:20}] {n_fmt}/{total_fmt} {postfix} ({elapsed})",
                         ascii=".#")

    def update(self, done: int, note: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self._bar.n)
        if force:
            self._bar.refresh()

    def close(self, done: int, note: str = "") -> None:
        if self.enabled:
            self.update(done, note, force=True)
        self._bar.close()

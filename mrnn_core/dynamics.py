"""The settings of the dynamics, shared by every backend, in one frozen record."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from dataclasses import asdict, dataclass

from .errors import MRNNConfigError, closest

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus", "linear")
"""Activation names every backend implements (softplus has beta = 1)."""

KINDS = ("leaky", "elman")


def check_activation(name) -> str:
    """``name`` if it is a known activation, else an error listing the allowed ones."""
    if name not in ACTIVATIONS:
        raise MRNNConfigError(
            f"unknown activation {name!r}; allowed activations: "
            + ", ".join(repr(a) for a in ACTIVATIONS) + closest(str(name), ACTIVATIONS)
        )
    return name


def _positive(value, key: str, allow_zero: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if not bad:
        bad = not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        expected = ">= 0" if allow_zero else "> 0"
        raise MRNNConfigError(f"{key} must be a finite number {expected}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Dynamics:
    """How a network evolves (SEMANTICS.md section 4).

    **Fields:**

    - `kind`: ``"leaky"`` (class ``mRNN``, Euler step with ``alpha = dt / tau``)
      or ``"elman"`` (class ``ElmanmRNN``, discrete).
    - `activation`: one of :data:`ACTIVATIONS`.
    - `dt`, `tau`: step and time constant of the leaky model (> 0).
    - `noise_level_act`, `noise_level_inp`: ``sigma_x``, ``sigma_u`` (>= 0).
    - `rec_constrained`, `inp_constrained`: apply Dale's law to ``W_rec`` / ``W_inp``.
    - `batch_first`: ``[B, T, .]`` layout if True, else ``[T, B, .]``.
    - `spectral_radius`: target ``rho`` of the effective ``W_rec`` at init, or None.
    - `balance_ei`: at init, before spectral-radius scaling, scale each unit's
      inhibitory recurrent weights so its excitatory and inhibitory input
      cancel (see :func:`mrnn_core.init.balance_ei`).
    - `allow_unstable_alpha`: accept ``alpha = dt / tau > 1`` (leaky). By
      default a time step longer than a time constant is refused, here and
      for every unit of a model (:func:`check_alpha`): the Euler step then
      overshoots the leak and the state can grow without bound.

    Leaky: ``alpha = dt / tau`` must be at most 1 (unless
    `allow_unstable_alpha`), and finite and at least the smallest normal
    float whatever the switch (:func:`check_alpha`).

    Regions may carry their own ``tau`` (``RecurrentRegionSpec.tau``); then
    alpha is a per-unit vector (:func:`uniform_alpha`) and ``tau`` here is the
    default for regions without one.
    """

    kind: str = "leaky"
    activation: str = "relu"
    dt: float = 10.0
    tau: float = 100.0
    noise_level_act: float = 0.01
    noise_level_inp: float = 0.01
    rec_constrained: bool = True
    inp_constrained: bool = True
    batch_first: bool = True
    spectral_radius: float | None = None
    balance_ei: bool = False
    allow_unstable_alpha: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise MRNNConfigError(
                f"unknown dynamics kind {self.kind!r}; allowed kinds: 'leaky', 'elman'"
                + closest(str(self.kind), KINDS)
            )
        check_activation(self.activation)
        set_ = object.__setattr__
        set_(self, "dt", _positive(self.dt, "dt"))
        set_(self, "tau", _positive(self.tau, "tau"))
        set_(self, "noise_level_act", _positive(self.noise_level_act, "noise_level_act", True))
        set_(self, "noise_level_inp", _positive(self.noise_level_inp, "noise_level_inp", True))
        for key in ("rec_constrained", "inp_constrained", "batch_first", "balance_ei",
                    "allow_unstable_alpha"):
            if not isinstance(getattr(self, key), bool):
                raise MRNNConfigError(f"{key} must be True or False, got {getattr(self, key)!r}")
        if self.spectral_radius is not None:
            set_(self, "spectral_radius", _positive(self.spectral_radius, "spectral_radius"))
        check_alpha(self.tau, self, where="dynamics")

    @property
    def alpha(self) -> float:
        """``dt / tau`` for the leaky model; 1 for Elman."""
        return self.dt / self.tau if self.kind == "leaky" else 1.0

    @property
    def hid_noise_const(self) -> float:
        """``c_x``: leaky ``sqrt(2 alpha sigma_x^2) / alpha``; Elman ``sigma_x``."""
        return self._noise_const(self.noise_level_act)

    @property
    def inp_noise_const(self) -> float:
        """``c_u``: leaky ``sqrt(2 alpha sigma_u^2) / alpha``; Elman ``sigma_u``."""
        return self._noise_const(self.noise_level_inp)

    def _noise_const(self, sigma: float) -> float:
        if self.kind == "elman":
            return sigma
        a = self.alpha
        return math.sqrt(2.0 * a * sigma**2) / a

    def hid_noise_vector(self, alpha):
        """``c_x`` for a per-unit ``alpha`` (a float gives :attr:`hid_noise_const`).

        ``sqrt(2 alpha sigma_x^2) / alpha = sigma_x sqrt(2 / alpha)`` elementwise,
        written with ``** 0.5`` so numpy, torch and JAX arrays all work; Elman:
        ``sigma_x``.
        """
        if self.kind == "elman":
            return self.noise_level_act
        if isinstance(alpha, numbers.Real):
            return math.sqrt(2.0 * alpha * self.noise_level_act**2) / alpha
        # sigma sqrt(2 / alpha): the same number, and no sqrt of an underflowed
        # 0 (a tiny sigma) whose gradient would be nan under autodiff.
        return self.noise_level_act * (2.0 / alpha) ** 0.5

    def inp_noise_for(self, alpha, *, learned_tau: bool = False):
        """``c_u`` of a network whose alpha is ``alpha``, decided from the spec.

        The rule (docs/semantics.md, "Input noise"): while every unit keeps one
        common time constant that does not learn, ``c_u`` is that alpha's,
        ``sqrt(2 alpha sigma_u^2) / alpha``, so such a network matches the
        scalar-tau one exactly, noise included. Otherwise (time constants that
        differ between units, or any that learn: ``learned_tau=True``) it is
        :attr:`inp_noise_const`, that of ``Dynamics.tau``: input noise lives in
        input space, which has no per-unit time constant. A learned tau thus
        never moves ``c_u``, also not when its values start out equal.

        `alpha` is a float, or an ``[H]`` array of fixed time constants
        (numpy, torch, or a JAX array that ``jit`` traced: the rule is written
        with operators every array library has and returns a 0-d array of that
        library in its dtype). Elman: ``sigma_u``.
        """
        if self.kind != "leaky" or self.noise_level_inp == 0 or learned_tau:
            return self.inp_noise_const  # (no sqrt(0) in a gradient: it would be nan)
        if isinstance(alpha, numbers.Real):
            return math.sqrt(2.0 * alpha * self.noise_level_inp**2) / alpha
        if getattr(alpha, "ndim", 0) == 0:  # a 0-d array (numpy, torch or JAX)
            return self.noise_level_inp * (2.0 / alpha) ** 0.5
        # An array [H] of fixed (possibly traced) values: equal ones give the
        # shared constant. Fixed values never change, so neither does c_u.
        first = alpha[0]
        uniform = (alpha == first).all()
        shared = self.noise_level_inp * (2.0 / first) ** 0.5  # see hid_noise_vector
        # Both terms in alpha's dtype (a bool times a Python float would give
        # torch's default float32); one of them is exactly zero.
        const = first * 0.0 + self.inp_noise_const
        return uniform * shared + (~uniform) * const

    def to_dict(self) -> dict:
        """Every field, except ``allow_unstable_alpha`` while it is False (so
        files of default settings stay readable by versions before it)."""
        d = asdict(self)
        if not d["allow_unstable_alpha"]:
            del d["allow_unstable_alpha"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Dynamics:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            key = sorted(unknown)[0]
            raise MRNNConfigError(
                f"dynamics: unknown key {key!r}" + closest(key, cls.__dataclass_fields__)
            )
        return cls(**d)


def input_noise_constant(params, dynamics: Dynamics, alpha):
    """``c_u`` of a simulate call on `params` (a mapping of named arrays).

    Its time constants count as learned when `params` holds ``log_tau``, as
    checkpoints and the models' parameter mappings do exactly when some
    region has ``learnable_tau``; then ``c_u`` is ``dynamics.inp_noise_const``
    (see :meth:`Dynamics.inp_noise_for`, which takes the rest of the rule).
    """
    learned = hasattr(params, "get") and params.get("log_tau") is not None
    return dynamics.inp_noise_for(alpha, learned_tau=learned)


def uniform_alpha(tau, dynamics: Dynamics):
    """alpha for per-unit time constants ``tau`` ``[H]`` (numpy, concrete).

    A Python float ``dt / tau`` when every entry is equal (so a network whose
    regions share one tau runs the scalar code path and gives exactly the
    scalar-tau numbers), else the ``[H]`` float64 vector ``dt / tau``. Elman: 1.
    A time constant that is not finite and > 0, or an alpha that underflows
    or overflows (see :func:`check_alpha`), raises :class:`MRNNConfigError`;
    ``alpha > 1`` is not checked here (construction checks it).
    """
    if dynamics.kind == "elman":
        return 1.0
    import numpy as np

    tau = np.asarray(tau, dtype=float)
    if tau.size == 0:
        return dynamics.alpha
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        bad = float(tau[~(np.isfinite(tau) & (tau > 0))][0])
        raise MRNNConfigError(f"tau: every time constant must be finite and > 0, got {bad!r}")
    with np.errstate(over="ignore", under="ignore"):
        alpha = dynamics.dt / tau
    if not np.all((alpha >= SMALLEST_ALPHA) & np.isfinite(alpha)):
        # not the alpha > 1 rule (a learned tau may drift): only what no step survives
        check_alpha(tau, dataclasses.replace(dynamics, allow_unstable_alpha=True))
    if np.all(tau == tau.flat[0]):
        return dynamics.dt / float(tau.flat[0])
    return alpha


SMALLEST_ALPHA = sys.float_info.min
"""The smallest ``alpha`` accepted: the smallest normal float64 (about 2.2e-308).
Below it ``2 / alpha`` (the noise constants) overflows and ``alpha``
underflows towards 0, which would freeze the state."""


def check_alpha(tau, dynamics: Dynamics, where: str = "tau", spec=None) -> None:
    """Refuse time constants whose leaky Euler step is unsafe (SEMANTICS.md section 5).

    Every unit's ``alpha = dt / tau`` must be finite and at least
    :data:`SMALLEST_ALPHA` (``dt`` tiny against a huge ``tau`` underflows,
    and the noise constant ``sqrt(2 alpha sigma^2) / alpha`` would divide by
    zero), and at most 1 unless ``dynamics.allow_unstable_alpha``: with
    ``alpha > 1`` the step ``x + alpha (-x + ...)`` overshoots the leak, and
    the state oscillates with growing amplitude once ``alpha > 2`` (NaN within
    a few hundred steps). ``alpha = 1`` exactly is the discrete update and
    accepted. Elman dynamics have no alpha: nothing is checked.

    **Arguments:**

    - `tau`: a time constant or an ``[H]`` array of them (numpy or anything
      ``numpy.asarray`` reads; concrete values).
    - `dynamics`: the :class:`Dynamics` (``dt``, ``kind``, the switch).
    - `where`: what the message names first (e.g. ``"checkpoint params['tau']"``).
    - `spec`: optional :class:`mrnn_core.NetworkSpec`; given, a bad unit is
      named with its region.

    **Raises:** :class:`MRNNConfigError` naming the unit (and region), its
    ``dt``, ``tau`` and ``alpha``, and what is expected.
    """
    if dynamics.kind != "leaky":
        return
    import numpy as np

    try:
        flat = np.asarray(tau, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise MRNNConfigError(f"{where}: expected real time constants, got {tau!r}") from None
    dt = dynamics.dt
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        alpha = dt / flat
    bad_tau = ~(np.isfinite(flat) & (flat > 0))
    # ``~(a >= b)`` so that a nan alpha counts as bad too
    out_of_range = ~bad_tau & ~((alpha >= SMALLEST_ALPHA) & np.isfinite(alpha))
    unstable = (~bad_tau & ~out_of_range & (alpha > 1.0)
                & (not dynamics.allow_unstable_alpha))

    def unit(i: int) -> str:
        if np.ndim(tau) == 0:
            return ""
        if spec is None:
            return f" for unit {i}"
        ends = np.cumsum([r.num_units for r in spec.recurrent_regions])
        k = int(np.searchsorted(ends, i, side="right"))
        region = spec.recurrent_regions[k].name if k < len(ends) else "?"
        return f" for unit {i} (region {region!r})"

    if bad_tau.any():
        i = int(np.flatnonzero(bad_tau)[0])
        raise MRNNConfigError(
            f"{where}: expected finite time constants > 0, got {float(flat[i])!r}{unit(i)}")
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise MRNNConfigError(
            f"{where}: alpha = dt / tau = {dt!r} / {float(flat[i])!r} = {float(alpha[i])!r}"
            f"{unit(i)} is outside what a float can step with; expected a finite alpha >= "
            f"{SMALLEST_ALPHA!r} (dt and tau of comparable magnitude)")
    if unstable.any():
        i = int(np.flatnonzero(unstable)[0])
        raise MRNNConfigError(
            f"{where}: alpha = dt / tau = {dt!r} / {float(flat[i])!r} = {float(alpha[i])!r} > 1"
            f"{unit(i)}: the Euler step overshoots the leak and can grow without bound; "
            f"expected tau >= dt = {dt!r}. Use a smaller dt or a larger tau, or pass "
            f"allow_unstable_alpha=True (a Dynamics field and a model keyword) to run it anyway")

"""Equinox Modules holding a network's arrays; the dynamics are :func:`simulate`'s.

A model is a pytree: ``W_rec``, ``W_inp``, ``base_firing``, ``init``, the
time constants (``log_tau`` and its anchors), the masks and sign matrices are
array leaves; ``spec`` and ``dynamics`` are static. Gradients reach only
what the spec lets train: ``W_rec`` and ``W_inp`` outside frozen projections
(``trainable=False``), and the ``base_firing`` / ``init`` / ``log_tau``
entries of regions with ``learnable_bias`` / ``learnable_init`` /
``learnable_tau``; everything else enters the computation through
``jax.lax.stop_gradient``. :func:`trainable_filter` names the arrays to
train for ``eqx.partition``.
"""

import abc
import dataclasses
import numbers
from functools import lru_cache
from typing import ClassVar, final

import equinox as eqx
from equinox import AbstractClassVar, AbstractVar
import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import (PARAM_NAMES, Checkpoint, Connectivity, Dynamics, MRNNConfigError,
                       NetworkSpec, check_batch_size, check_finite, connectivity_from_arrays,
                       describe, learnable_masks, learns_tau, load_config, trainable_masks)
from mrnn_core.checkpoint import check_is_checkpoint
from mrnn_core.dynamics import check_alpha

from ._activations import get_activation
from ._compat import bracketed_doc, is_traced
from ._functional import call_input, effective_weights
from ._regions import layout, projection, region_activity, weight_subset
from ._simulate import _alpha, simulate

_ARRAYS = tuple(n for n in PARAM_NAMES if n != "tau")
"""Checkpoint arrays a model holds as they are (``tau`` lives in ``log_tau`` and its anchors)."""


@lru_cache(maxsize=64)
def _trains(spec: NetworkSpec) -> dict[str, np.ndarray]:
    """Array name -> boolean mask of the entries that train, from the spec alone.

    ``W_rec`` ``[H, H]`` / ``W_inp`` ``[H, I]``: False in frozen projections;
    ``base_firing`` / ``init`` / ``tau`` ``[H]``: True on the units of regions
    with ``learnable_bias`` / ``learnable_init`` / ``learnable_tau``.
    """
    rec, inp = trainable_masks(spec)
    out = {"W_rec": rec != 0, "W_inp": inp != 0,
           **{k: v != 0 for k, v in learnable_masks(spec).items()}}
    for a in out.values():
        a.setflags(write=False)
    return out


def _gated(a, trains: np.ndarray):
    """``a`` where ``trains``, else ``stop_gradient(a)``: same values, gradient only where trained.

    Frozen entries then get exactly zero gradient, so SGD (with momentum) and
    Adam leave them bit-identical.
    """
    if trains.all():
        return a
    if not trains.any():
        return jax.lax.stop_gradient(a)
    return jnp.where(trains, a, jax.lax.stop_gradient(a))


def _seed_from(key, seed):
    """The numpy seed of the structure and weight draws: ``seed``, or one derived from ``key``."""
    if key is not None and seed is not None:
        raise MRNNConfigError(
            "key, seed: pass one of them (seed fixes the numpy draws, key derives a seed), got both")
    if seed is not None:
        return seed
    if key is None:
        raise MRNNConfigError(
            "key: expected a PRNG key (e.g. jax.random.key(0)) or an integer seed= to draw "
            "the masks and initial weights from, got neither")
    if isinstance(key, numbers.Number) or not hasattr(key, "dtype"):
        raise MRNNConfigError(
            f"key: expected a PRNG key such as jax.random.key(0), got {key!r}; "
            f"pass an integer as seed= instead")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key, dtype=np.uint32).ravel()]


class _Fields:
    """Every field of a model (or readout), ready for ``__init__`` to store as it is.

    The route by which constructors other than the public one (from a
    checkpoint, with another spec) reach the one ``__init__`` of a final class:
    passed in place of ``config``, it skips drawing a network. Private; users
    never build one.
    """

    __slots__ = ("values",)

    def __init__(self, values: dict):
        self.values = values


def _checkpoint_fields(ckpt: Checkpoint) -> _Fields:
    """A model's field values for the arrays, spec and dynamics of ``ckpt`` (arrays unchanged)."""
    # Every Checkpoint is validated on construction (tau finite and > 0 included).
    tau = np.asarray(ckpt.params["tau"], dtype=np.float64)
    # alpha = dt / tau <= 1 unless allowed (leaky)
    check_alpha(tau, ckpt.dynamics, where="checkpoint params['tau']", spec=ckpt.spec)
    values = {name: jnp.asarray(ckpt.params[name]) for name in _ARRAYS}
    # A checkpoint's log_tau (torch and this backend write one when tau learns)
    # is the trained parameter itself; otherwise log(tau) has the same tau.
    log_tau = np.asarray(ckpt.params["log_tau"] if "log_tau" in ckpt.params
                         else np.log(np.where(tau > 0, tau, 1.0)), dtype=np.float64)
    uniform = tau.size > 0 and bool(np.all(tau == tau.flat[0]))
    values.update(log_tau=jnp.asarray(log_tau), tau_ref=jnp.asarray(tau),
                  log_tau_ref=jnp.asarray(log_tau), spec=ckpt.spec, dynamics=ckpt.dynamics,
                  uniform_tau=float(tau.flat[0]) if uniform else None)
    return _Fields(values)


def _initialised_fields(config, dynamics: Dynamics, key, seed) -> _Fields:
    """The fields of a fresh network, drawn exactly as ``Checkpoint.initialise(spec, dynamics, seed)``."""
    spec = load_config(config)
    return _checkpoint_fields(Checkpoint.initialise(spec, dynamics, seed=_seed_from(key, seed)))


class mRNNBase(eqx.Module):
    """What the leaky :class:`mRNN` and :class:`ElmanmRNN` share: arrays, structure, helpers.

    Abstract (equinox's abstract/final pattern): it declares the fields as
    ``eqx.AbstractVar`` and holds the methods; the final classes :class:`mRNN`
    and :class:`ElmanmRNN` hold the fields and the one ``__init__``.
    ``isinstance(model, mRNNBase)`` is true for both.

    **Fields** (the names of :data:`mrnn_core.PARAM_NAMES`, ``tau`` split in two):

    - `W_rec` ``[H, H]``, `W_inp` ``[H, I]``: raw weights, trained except in
      frozen projections (``trainable=False`` on a connection or its
      destination region; see :meth:`freeze`).
    - `base_firing` ``[H]``: the baseline ``b``; only regions with
      ``learnable_bias=True`` train their slice.
    - `init` ``[H]``: the default initial state (leaky ``x0``, Elman ``h0``),
      used when a call gives none; regions with ``learnable_init=True`` train
      their slice.
    - `log_tau` ``[H]``: ``log`` of the time constants; regions with
      ``learnable_tau=True`` (leaky) train their slice, so ``tau = exp(log_tau)``
      stays positive.
    - `tau_ref`, `log_tau_ref` ``[H]``: the time constants and ``log_tau`` the
      model was created or loaded with (never trained). Other units keep
      ``tau_ref``; learnable ones use ``tau_ref exp(log_tau - log_tau_ref)``,
      which is ``exp(log_tau)`` in value and gradient but exactly ``tau_ref``
      until trained (``exp(log(t))`` need not be ``t``), so checkpoints round-trip
      bit for bit. :attr:`tau` combines them.
    - `W_rec_mask`, `W_rec_sign_matrix` ``[H, H]``, `W_inp_mask`,
      `W_inp_sign_matrix` ``[H, I]``: never trained.
    - `spec`, `dynamics` (static): the :class:`mrnn_core.NetworkSpec` and
      :class:`mrnn_core.Dynamics`.
    - `uniform_tau` (static): the one time constant every unit shares, or
      ``None`` if they differ; static, so a jitted model still runs the
      scalar-alpha fast path while ``tau_ref`` is traced.
    """

    W_rec: AbstractVar[jax.Array]
    W_rec_mask: AbstractVar[jax.Array]
    W_rec_sign_matrix: AbstractVar[jax.Array]
    W_inp: AbstractVar[jax.Array]
    W_inp_mask: AbstractVar[jax.Array]
    W_inp_sign_matrix: AbstractVar[jax.Array]
    base_firing: AbstractVar[jax.Array]
    init: AbstractVar[jax.Array]
    log_tau: AbstractVar[jax.Array]
    tau_ref: AbstractVar[jax.Array]
    log_tau_ref: AbstractVar[jax.Array]
    spec: AbstractVar[NetworkSpec]
    dynamics: AbstractVar[Dynamics]
    uniform_tau: AbstractVar[float | None]
    _kind: AbstractClassVar[str]

    @abc.abstractmethod
    def __call__(self, inp, *args, **kwargs):
        raise NotImplementedError

    def __repr__(self) -> str:
        """Regions, sizes, signs and non-default settings: the text a torch
        model of the same network prints (:func:`mrnn_core.describe`)."""
        return describe(self.spec, self.dynamics, name=type(self).__name__)

    def __pdoc__(self, **kwargs):
        """The same summary when the model sits inside another pytree's repr."""
        return bracketed_doc(type(self).__name__, describe(self.spec, self.dynamics).split("\n"),
                             kwargs.get("indent", 2))

    # checkpoints ---------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint):
        """The model a :class:`mrnn_core.Checkpoint` describes, arrays unchanged.

        Called on ``mRNNBase`` it returns the class of the checkpoint's kind.
        In float64 (``jax_enable_x64``) the arrays are bit-identical.
        """
        check_is_checkpoint(checkpoint, f"{cls.__name__}.from_checkpoint")
        kind = checkpoint.dynamics.kind
        target = _CLASSES[kind]
        if cls is not mRNNBase and cls is not target:
            raise MRNNConfigError(
                f"checkpoint: it holds a {kind!r} model, expected {cls._kind!r} for "
                f"{cls.__name__}; use {target.__name__}.from_checkpoint")
        return target(_checkpoint_fields(checkpoint))

    def to_checkpoint(self) -> Checkpoint:
        """A :class:`mrnn_core.Checkpoint`: float64 numpy copies of every array (exact).

        ``params["tau"]`` holds the effective (possibly learned) time constants
        :attr:`tau`, ``params["init"]`` the current (possibly learned) ``init``.
        With learnable time constants (leaky) it also holds ``log_tau`` ``[H]``,
        so :meth:`from_checkpoint` (here or in torch) restores the trained
        parameter itself, not only ``tau``.
        """
        params = {name: np.array(getattr(self, name), dtype=np.float64) for name in _ARRAYS}
        params["tau"] = np.array(self.tau, dtype=np.float64)
        if self._learns_tau:
            params["log_tau"] = np.array(self.log_tau, dtype=np.float64)
        return Checkpoint(self.spec, self.dynamics, params)

    # training switches ---------------------------------------------------------

    def freeze(self, *targets):
        """A new model whose projections into ``targets`` are frozen (reservoir-style).

        A target is a recurrent region or parent name (every recurrent and input
        projection into it) or a ``(src, dst)`` pair of a declared connection
        (parents expand); see :meth:`mrnn_core.NetworkSpec.with_frozen`. Frozen
        entries of ``W_rec`` / ``W_inp`` get exactly zero gradient. Arrays are
        shared with this model, which is left unchanged.
        """
        return self._with_spec(self.spec.with_frozen(*targets))

    def unfreeze(self, *targets):
        """A new model whose projections into ``targets`` train again (see :meth:`freeze`)."""
        return self._with_spec(self.spec.with_trainable(*targets, trainable=True))

    def _with_spec(self, spec: NetworkSpec):
        # spec is static, out of eqx.tree_at's reach: rebuilt through __init__.
        return self._replace(spec=spec)

    def _replace(self, **changes):
        """A model of the same class with ``changes`` (field name -> value), the rest shared."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return type(self)(_Fields({**values, **changes}))

    # the arrays as the dynamics see them ---------------------------------------

    def params(self) -> dict:
        """The mapping :func:`mrnn_jax.simulate` takes, ``tau`` included.

        Entries that do not train (frozen projections, biases of regions
        without ``learnable_bias``) are behind ``stop_gradient``: same values,
        zero gradient. ``log_tau`` is there only when some region learns its
        time constant; it tells :func:`simulate` so (the input-noise rule of
        :func:`mrnn_core.input_noise_constant`).
        """
        trains = _trains(self.spec)
        params = {"W_rec": _gated(self.W_rec, trains["W_rec"]), "W_rec_mask": self.W_rec_mask,
                  "W_rec_sign_matrix": self.W_rec_sign_matrix,
                  "W_inp": _gated(self.W_inp, trains["W_inp"]), "W_inp_mask": self.W_inp_mask,
                  "W_inp_sign_matrix": self.W_inp_sign_matrix,
                  "base_firing": _gated(self.base_firing, trains["base_firing"]),
                  "tau": self._tau_for_simulate()}
        if self._learns_tau:  # marks the time constants as learned (the input-noise rule)
            params["log_tau"] = self.log_tau
        return params

    def _tau_for_simulate(self):
        """``tau`` for :func:`simulate`: a concrete numpy vector when every unit
        shares a fixed one (so even under a user's ``jit`` the compiled code is
        the scalar-alpha one), else the (possibly traced, learned) ``[H]`` array."""
        if self.uniform_tau is not None and not self._learns_tau:
            return np.full(self.tau_ref.shape, self.uniform_tau)
        return self.tau

    @property
    def tau(self):
        """``[H]`` time constants: ``exp(log_tau)`` on units of regions with
        ``learnable_tau`` (leaky; computed as ``tau_ref exp(log_tau - log_tau_ref)``),
        ``tau_ref`` elsewhere."""
        fixed = jax.lax.stop_gradient(self.tau_ref)
        if not self._learns_tau:
            return fixed
        scale = jnp.exp(self.log_tau - jax.lax.stop_gradient(self.log_tau_ref))
        return jnp.where(_trains(self.spec)["tau"], fixed * scale, fixed)

    @property
    def _learns_tau(self) -> bool:
        return learns_tau(self.spec, self.dynamics)

    @property
    def alpha(self):
        """``dt / tau``: a float when every unit's is equal (and known), else ``[H]``; Elman 1."""
        alpha, tau = _alpha({"tau": self.tau}, self.dynamics)
        return alpha if tau is None else self.dynamics.dt / tau

    def effective_weights(self):
        """``(W_rec_eff [H, H], W_inp_eff [H, I])``: see :func:`mrnn_jax.effective_weights`."""
        return effective_weights(self.params(), self.dynamics)

    @property
    def connectivity(self) -> Connectivity:
        """The structure as a :class:`mrnn_core.Connectivity` (concrete arrays only, not under jit)."""
        return connectivity_from_arrays(
            self.spec, *(np.asarray(getattr(self, n)) for n in
                         ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")),
            np.asarray(self.base_firing), np.asarray(self.init))

    def _recurrence(self, recurrence):
        # "auto" hands simulate the spec, so the block structure is known under jit.
        return self.spec if isinstance(recurrence, str) and recurrence == "auto" else recurrence

    @property
    def _structure(self) -> Connectivity:
        return layout(self.spec)

    # mRNNTorch's helpers -------------------------------------------------------

    @property
    def hid_regions(self) -> list[str]:
        """Names of the recurrent regions, in network order."""
        return list(self.spec.recurrent_names)

    @property
    def inp_regions(self) -> list[str]:
        """Names of the input regions, in order."""
        return list(self.spec.input_names)

    @property
    def total_num_units(self) -> int:
        """``H``."""
        return self.spec.hidden_size

    @property
    def total_num_inputs(self) -> int:
        """``I``."""
        return self.spec.input_size

    @property
    def hid_noise_const(self):
        """``c_x`` the forward pass uses: ``[H]`` when alpha is per unit (see
        :meth:`mrnn_core.Dynamics.hid_noise_vector`)."""
        return self.dynamics.hid_noise_vector(self.alpha)

    @property
    def inp_noise_const(self) -> float:
        """``c_u`` the forward pass uses (see :meth:`mrnn_core.Dynamics.inp_noise_for`)."""
        return self.dynamics.inp_noise_for(self.alpha, learned_tau=self._learns_tau)

    @property
    def tonic_inp(self):
        """``base_firing`` ``[H]``, the current (possibly learned) baseline."""
        return self.base_firing

    @property
    def initial_condition(self):
        """``init`` ``[H]``: the default initial state of every unit (leaky: the
        pre-activation ``x0``; Elman: the rate ``h0``). Regions with
        ``learnable_init`` pass gradients to their slice."""
        return _gated(self.init, _trains(self.spec)["init"])

    def _check_finite(self, states, name: str) -> None:
        """:func:`mrnn_core.check_finite` on a call's returned states (concrete only)."""
        if is_traced(states):
            raise MRNNConfigError(
                f"check_finite: expected concrete states, got traced ones (inside jax.jit, "
                f"vmap or grad the values are not known yet); call "
                f"mrnn_core.check_finite({name}, model.spec, batch_first=...) on the arrays the "
                f"transformed function returns")
        check_finite(np.asarray(states), self.spec, batch_first=self.dynamics.batch_first,
                     name=name)

    def _default_state(self, inp, stim_input):
        """``init`` shaped like the state a call with ``inp`` / ``stim_input`` needs.

        ``[B, H]`` for batched (3-d) input, else ``[H]``; bad shapes are left
        for :func:`simulate` to report.
        """
        init = self.initial_condition
        seq = inp if inp is not None else stim_input
        if seq is None or jnp.ndim(seq) != 3:
            return init
        batch = jnp.shape(seq)[0 if self.dynamics.batch_first else 1]
        return jnp.broadcast_to(init, (batch, init.shape[0]))

    def get_region_indices(self, region: str) -> tuple[int, int]:
        """``(start, end)`` of ``region`` in the hidden (or input) vector."""
        return self._structure.region_indices(region)

    def get_region_size(self, region: str) -> int:
        """Number of units of ``region`` (a parent counts all its children)."""
        return int(self._structure.unit_indices(region, allow_input=True).size)

    def get_region_activity(self, act, *regions: str):
        """``act`` ``[..., H]`` restricted to ``regions``, in the order given (parents expanded)."""
        return region_activity(self.spec, act, *regions)

    def named_rec_regions(self, prefix: str = ""):
        """Yield ``(prefix + name, region spec)`` for every recurrent region, in network order."""
        for region in self.spec.recurrent_regions:
            yield prefix + region.name, region

    def named_inp_regions(self, prefix: str = ""):
        """Yield ``(prefix + name, region spec)`` for every input region, in network order."""
        for region in self.spec.input_regions:
            yield prefix + region.name, region

    def get_excluded_hid_regions(self, *regions: str) -> list[str]:
        """The recurrent regions not named (parents expand), in network order."""
        return self._structure.excluded(*regions)

    def get_excluded_inp_regions(self, *regions: str) -> list[str]:
        """The input regions not named, in network order."""
        return self._structure.excluded(*regions, inputs=True)

    def combine_states(self, states_a, states_b, region_list_a, region_list_b,
                       keep_dims: bool = True):
        """Interleave two partial states ``[..., n_a]`` and ``[..., n_b]`` into ``[..., H]``.

        ``states_a`` holds the regions of ``region_list_a`` in that list's order
        (as :meth:`get_region_activity` returns them), likewise ``b``; the
        lists (parents expand) must be disjoint and cover every recurrent
        region. The result is in network order; ``keep_dims=False`` flattens
        the leading dimensions to ``[N, H]``. Differentiable (a gather).
        """
        perm = self._structure.combine_index(region_list_a, region_list_b,
                                             jnp.shape(states_a), jnp.shape(states_b))
        full = jnp.take(jnp.concatenate([states_a, states_b], axis=-1),
                        jnp.asarray(perm, dtype=jnp.int32), axis=-1)
        return full if keep_dims else full.reshape(-1, full.shape[-1])

    def get_projection(self, to: str, from_: str, W=None):
        """Effective weights from ``from_`` (recurrent or input region) to ``to``.

        ``W`` replaces the effective matrix (``[H, H]``, or ``[H, I]`` when
        ``from_`` is an input region).
        """
        if W is None:
            W_rec_eff, W_inp_eff = self.effective_weights()
            W = W_inp_eff if from_ in self.spec.input_names else W_rec_eff
        return projection(self.spec, W, to, from_)

    def get_weight_subset(self, *regions: str, W=None):
        """The square block of the effective ``W_rec`` (or ``W``) among ``regions``, network order."""
        return weight_subset(self.spec, self.effective_weights()[0] if W is None else W, *regions)


@final
class mRNN(mRNNBase):
    """Leaky (continuous-time, Euler) multi-regional RNN, ``alpha = dt / tau``.

        x_{t+1} = x_t + alpha (-x_t + W_rec_eff h_t + W_inp_eff (u_t + c_u eps_u)
                               + b + c_x eps_x + s_t)
        h_{t+1} = f(x_{t+1})

    **Arguments:**

    Regions may set their own ``tau`` (the spec's ``RecurrentRegionSpec.tau``;
    ``tau`` here is the default), making ``alpha = dt / tau`` a per-unit
    vector: each unit's row of the update uses its own alpha, and ``c_x`` is per
    unit too. Regions with ``learnable_tau`` train ``log_tau``.

    **Arguments:**

    - `config`: an mRNNTorch-format JSON path, a dict or a :class:`mrnn_core.NetworkSpec`.
    - `activation`, `noise_level_act`, `noise_level_inp`, `rec_constrained`,
      `inp_constrained`, `batch_first`, `spectral_radius`, `dt`, `tau`,
      `balance_ei`, `allow_unstable_alpha`: see :class:`mrnn_core.Dynamics`
      (``alpha = dt / tau > 1`` for any unit is refused unless
      `allow_unstable_alpha`).
    - `key`: a PRNG key the numpy seed of the masks and weights is derived from;
      or `seed`: that seed itself (then the arrays equal
      ``Checkpoint.initialise(spec, dynamics, seed)`` and the torch model's).
    """

    _kind: ClassVar[str] = "leaky"

    W_rec: jax.Array
    W_rec_mask: jax.Array
    W_rec_sign_matrix: jax.Array
    W_inp: jax.Array
    W_inp_mask: jax.Array
    W_inp_sign_matrix: jax.Array
    base_firing: jax.Array
    init: jax.Array
    log_tau: jax.Array
    tau_ref: jax.Array
    log_tau_ref: jax.Array
    spec: NetworkSpec = eqx.field(static=True)
    dynamics: Dynamics = eqx.field(static=True)
    uniform_tau: float | None = eqx.field(static=True)

    def __init__(self, config=None, activation="relu", noise_level_act=0.01,
                 noise_level_inp=0.01, rec_constrained=True, inp_constrained=True,
                 batch_first=True, spectral_radius=None, dt=10, tau=100, *, key=None, seed=None,
                 balance_ei=False, allow_unstable_alpha=False):
        if not isinstance(config, _Fields):
            dynamics = Dynamics(kind="leaky", activation=activation, dt=dt, tau=tau,
                                noise_level_act=noise_level_act, noise_level_inp=noise_level_inp,
                                rec_constrained=rec_constrained, inp_constrained=inp_constrained,
                                batch_first=batch_first, spectral_radius=spectral_radius,
                                balance_ei=balance_ei, allow_unstable_alpha=allow_unstable_alpha)
            config = _initialised_fields(config, dynamics, key, seed)
        for name, value in config.values.items():
            setattr(self, name, value)

    def __call__(self, inp, x0=None, h0=None, *, stim_input=None, W_rec=None, key=None,
                 eps_x=None, eps_u=None, recurrence="auto", check_finite=False):
        """Run ``T`` steps; see :func:`mrnn_jax.simulate` for shapes and the noise arguments.

        Without `x0` the network starts from :attr:`initial_condition`
        (``x0 = init`` per batch entry, ``h0 = f(x0)`` unless given), which
        trains where regions have ``learnable_init``.

        Array arguments may be JAX arrays, numpy arrays or nested lists of real
        floating numbers (README, "Inputs a forward call accepts"): a lower
        precision than the model's is cast up; a higher one, integers,
        booleans, complex numbers and strings raise
        :class:`mrnn_core.MRNNConfigError`. ``T = 0`` returns empty outputs.
        `check_finite` raises :class:`mrnn_core.NonFiniteStateError` naming the
        first step and unit whose ``x`` became inf or NaN; it needs concrete
        values, so under ``jax.jit`` call :func:`mrnn_core.check_finite` on the
        returned arrays instead.

        **Returns:** ``(xs, hs)``, each ``[B, T, H]`` (``[T, B, H]`` if not
        ``batch_first``; ``[T, H]`` for unbatched ``inp`` ``[T, I]`` and ``x0`` ``[H]``).
        """
        inp, stim_input = (call_input(n, a, self.W_rec.dtype)
                           for n, a in (("inp", inp), ("stim_input", stim_input)))
        if x0 is None:
            x0 = self._default_state(inp, stim_input)
        out = simulate(self.params(), self.dynamics, inp, x0, h0, stim_input=stim_input,
                       W_rec=W_rec, eps_x=eps_x, eps_u=eps_u, key=key,
                       recurrence=self._recurrence(recurrence))
        if check_finite:
            self._check_finite(out[0], "xs")
        return out

    def batched_initial_condition(self, batch_size: int):
        """``(x0, h0)``: ``init`` repeated to ``[batch_size, H]`` and its rates ``f(x0)``."""
        x0 = jnp.broadcast_to(self.initial_condition,
                              (check_batch_size(batch_size), self.spec.hidden_size))
        return x0, get_activation(self.dynamics.activation)(x0)


@final
class ElmanmRNN(mRNNBase):
    """Elman (discrete) multi-regional RNN.

        x_{t+1} = W_rec_eff h_t + W_inp_eff (u_t + sigma_u eps_u) + b + sigma_x eps_x + s_t
        h_{t+1} = f(x_{t+1})

    Arguments as :class:`mRNN`, without `dt` and `tau`.
    """

    _kind: ClassVar[str] = "elman"

    W_rec: jax.Array
    W_rec_mask: jax.Array
    W_rec_sign_matrix: jax.Array
    W_inp: jax.Array
    W_inp_mask: jax.Array
    W_inp_sign_matrix: jax.Array
    base_firing: jax.Array
    init: jax.Array
    log_tau: jax.Array
    tau_ref: jax.Array
    log_tau_ref: jax.Array
    spec: NetworkSpec = eqx.field(static=True)
    dynamics: Dynamics = eqx.field(static=True)
    uniform_tau: float | None = eqx.field(static=True)

    def __init__(self, config=None, activation="relu", noise_level_act=0.01,
                 noise_level_inp=0.01, rec_constrained=True, inp_constrained=True,
                 batch_first=True, spectral_radius=None, *, key=None, seed=None,
                 balance_ei=False):
        if not isinstance(config, _Fields):
            dynamics = Dynamics(kind="elman", activation=activation,
                                noise_level_act=noise_level_act, noise_level_inp=noise_level_inp,
                                rec_constrained=rec_constrained, inp_constrained=inp_constrained,
                                batch_first=batch_first, spectral_radius=spectral_radius,
                                balance_ei=balance_ei)
            config = _initialised_fields(config, dynamics, key, seed)
        for name, value in config.values.items():
            setattr(self, name, value)

    def __call__(self, inp, h0=None, *, stim_input=None, W_rec=None, key=None, eps_x=None,
                 eps_u=None, recurrence="auto", check_finite=False):
        """Run ``T`` steps from rates ``h0``; see :func:`mrnn_jax.simulate`. Accepted
        inputs and `check_finite` (on ``hs``) as :meth:`mRNN.__call__`.

        Without `h0` the network starts from :attr:`initial_condition` (``init``
        per batch entry), which trains where regions have ``learnable_init``.

        **Returns:** ``hs`` ``[B, T, H]`` (``[T, B, H]`` if not ``batch_first``).
        """
        inp, stim_input = (call_input(n, a, self.W_rec.dtype)
                           for n, a in (("inp", inp), ("stim_input", stim_input)))
        if h0 is None:
            h0 = self._default_state(inp, stim_input)
        out = simulate(self.params(), self.dynamics, inp, h0=h0, stim_input=stim_input,
                       W_rec=W_rec, eps_x=eps_x, eps_u=eps_u, key=key,
                       recurrence=self._recurrence(recurrence))
        if check_finite:
            self._check_finite(out, "hs")
        return out

    def batched_initial_condition(self, batch_size: int):
        """``h0``: ``init`` repeated to ``[batch_size, H]`` (the Elman state is the rate)."""
        return jnp.broadcast_to(self.initial_condition,
                                (check_batch_size(batch_size), self.spec.hidden_size))


_CLASSES = {"leaky": mRNN, "elman": ElmanmRNN}


def trainable_filter(tree):
    """A pytree of bools over ``tree``: True for the arrays an optimiser should train.

    Inside every model: ``W_rec`` and ``W_inp``; ``base_firing`` when some
    region has ``learnable_bias``, ``init`` when some has ``learnable_init``,
    ``log_tau`` when some has ``learnable_tau`` (leaky); never masks, sign
    matrices or the ``tau_ref`` / ``log_tau_ref`` anchors. Entries that do not
    train (frozen projections, other regions' slices) get exactly zero
    gradient, which keeps them fixed under SGD (with momentum) or Adam; weight
    decay acts on the raw arrays, so decoupled decay (``optax.adamw``) would still shrink them unless masked out
    of the decay. Elsewhere in ``tree`` (a readout, say): every floating-point
    array. Use it with ``eqx.partition``::

        trainable, frozen = eqx.partition(model, mrnn_jax.trainable_filter(model))
    """
    def model_filter(model: mRNNBase):
        flags = jax.tree.map(lambda _: False, model)
        learns = {k: bool(v.any()) for k, v in _trains(model.spec).items()}
        return eqx.tree_at(lambda m: (m.W_rec, m.W_inp, m.base_firing, m.init, m.log_tau), flags,
                           (True, True, learns["base_firing"], learns["init"],
                            model._learns_tau))

    return jax.tree.map(
        lambda x: model_filter(x) if isinstance(x, mRNNBase) else eqx.is_inexact_array(x),
        tree, is_leaf=lambda x: isinstance(x, mRNNBase))

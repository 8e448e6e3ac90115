"""Ensembles: ``E`` networks of one spec run, trained and sharded as one.

:class:`Ensemble` holds its members' arrays stacked along a leading member
axis (one equinox pytree, so ``jit``, ``grad`` and optax see one model);
:func:`ensemble_simulate` is the pure function under it. Each step of the
loop is one batched matmul over members (:mod:`._ensemble_recurrence`), not
``E`` loops and not a ``vmap`` of the single-network loop. Member ``e`` of
every result equals ``ens.members()[e]`` run alone (to rounding: a batched
matmul may sum in another order; float64 agrees to 1e-12).

:func:`member_optimiser` gives each member its own optax state (a clipped
global norm is per member, as if trained alone); :func:`mesh`,
:meth:`Ensemble.shard` and :func:`shard_batch` spread members and trials
over devices and hosts with ``jax.sharding``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mrnn_core import (Checkpoint, Dynamics, MRNNConfigError, effective_weight,
                       input_noise_constant, uniform_alpha)
from mrnn_core import ensemble as core
from mrnn_core.ensemble import MEMBER_VALUES as MEMBER_VALUES

from ._activations import get_activation
from ._ensemble_recurrence import Config, ensemble_recurrence
from ._model import _ARRAYS, ElmanmRNN, mRNN, mRNNBase
from ._recurrence import _ACCUMULATE_MAX_WEIGHTS, _GEMM_MAX_ELEMENTS, _INPUT_FMA_MAX
from ._simulate import _USED, _check_network

_CLASSES = {"leaky": mRNN, "elman": ElmanmRNN}
_LEAVES = _ARRAYS + ("log_tau", "tau_ref", "log_tau_ref")
"""The array fields of a model, each stacked to ``[E, ...]`` in an ensemble."""

MEMBERS_AXIS = "members"
BATCH_AXIS = "batch"


def _shape(a):
    return None if a is None else tuple(jnp.shape(a))


# --------------------------------------------------------------------------- checks


def _member_dynamics(dynamics, E: int) -> tuple[Dynamics, ...]:
    """``E`` Dynamics from one (shared) or a sequence of ``E``; they must agree on
    :data:`mrnn_core.ensemble.SHARED_DYNAMICS`."""
    if isinstance(dynamics, Dynamics):
        return (dynamics,) * E
    if not isinstance(dynamics, Sequence) or not all(isinstance(d, Dynamics) for d in dynamics):
        raise MRNNConfigError(
            f"dynamics: expected a mrnn_core.Dynamics or a sequence of {E}, one per member, "
            f"got {type(dynamics).__name__}")
    if len(dynamics) != E:
        raise MRNNConfigError(
            f"dynamics: expected {E} Dynamics, one per member (E = {E} from "
            f"params['W_rec']), got {len(dynamics)}")
    core.check_shared(list(dynamics), "dynamics")
    return tuple(dynamics)


def _members_of(params: Mapping) -> int:
    """``E`` of a stacked params mapping; every array must carry it first."""
    if not isinstance(params, Mapping):
        raise MRNNConfigError(
            f"params: expected a mapping of stacked arrays [E, ...], got {type(params).__name__}")
    if "W_rec" not in params or len(_shape(params["W_rec"])) != 3:
        got = _shape(params["W_rec"]) if "W_rec" in params else "no 'W_rec'"
        raise MRNNConfigError(
            f"params['W_rec']: expected the stacked weights [E, H, H] of E members, got {got}")
    E = _shape(params["W_rec"])[0]
    for name in _USED + ("tau",):
        if params.get(name) is None:
            continue
        shape = _shape(params[name])
        if not shape or shape[0] != E:
            raise MRNNConfigError(
                f"params[{name!r}]: expected a leading member axis of E = {E} (from "
                f"params['W_rec']), got shape {shape}")
    return E


def _member_view(params: Mapping) -> dict:
    """Zero-copy stand-ins with one member's shapes, for the single-network checks."""
    return {n: np.broadcast_to(np.zeros((), np.float32), _shape(params[n])[1:])
            for n in _USED + ("tau",) if params.get(n) is not None}


def _member_keys(key, E: int):
    """One PRNG key per member: a key array with ``E`` keys, or one key split in ``E``."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    single = key.ndim == (0 if typed else 1)
    if single:
        return jax.random.split(key, E)
    if key.shape[0] != E or key.ndim != (1 if typed else 2):
        raise MRNNConfigError(
            f"key: expected one PRNG key or E = {E} of them (jax.random.split(key, {E})), got "
            f"shape {tuple(key.shape)}")
    return key


# --------------------------------------------------------------------------- the pure function


def _alphas(params, dynamics: tuple[Dynamics, ...], H: int):
    """``(rows, leak, c_x, c_u, learn)``: per member alpha ``[E, H]``, ``1 - alpha``
    (None for Elman), ``c_x`` ``[E, H]``, ``c_u`` ``[E]``; ``learn`` is True when
    ``tau`` is traced (a learned time constant: its gradient flows)."""
    tau = params.get("tau") if dynamics[0].kind == "leaky" else None
    learn = isinstance(tau, jax.core.Tracer)
    if learn:
        alpha = [d.dt / tau[e] for e, d in enumerate(dynamics)]
        stack = jnp.stack
    else:
        alpha = [d.alpha if tau is None else uniform_alpha(np.asarray(tau[e]), d)
                 for e, d in enumerate(dynamics)]
        stack = np.stack
    rows = stack([jnp.broadcast_to(a, (H,)) if learn else np.broadcast_to(a, (H,))
                  for a in alpha])
    c_x = stack([jnp.broadcast_to(d.hid_noise_vector(a), (H,)) if learn
                 else np.broadcast_to(d.hid_noise_vector(a), (H,))
                 for d, a in zip(dynamics, alpha)])
    c_u = stack([input_noise_constant(params, d, a) for d, a in zip(dynamics, alpha)])
    leak = 1.0 - rows if dynamics[0].kind == "leaky" else None
    return rows, leak, c_x, c_u, learn


def ensemble_simulate(params: Mapping, dynamics, inp, x0=None, h0=None, *, stim_input=None,
                      eps_x=None, eps_u=None, key=None):
    """Run ``E`` networks of one spec for ``T`` steps in one loop (the pure form).

    Member ``e`` computes exactly what :func:`mrnn_jax.simulate` computes for
    ``{name: params[name][e]}`` and ``dynamics[e]`` (to rounding). Pure and
    transformable: ``jit`` (``dynamics`` static), ``grad`` (a hand-written
    reverse pass; forward mode is not defined), sharding over members or trials.

    **Arguments:**

    - `params`: a mapping of stacked arrays, each with a leading member axis
      ``E``: ``W_rec`` ``[E, H, H]``, ``W_inp`` ``[E, H, I]``, their ``_mask``
      and ``_sign_matrix``, ``base_firing`` ``[E, H]`` and optionally ``tau``
      ``[E, H]`` (leaky; a traced one is differentiated).
    - `dynamics`: one :class:`mrnn_core.Dynamics` for every member, or a
      sequence of ``E`` (they may differ in ``dt``, ``tau``, noise levels,
      ``spectral_radius``, Dale flags; not in ``kind``, ``activation``,
      ``batch_first``).
    - `inp`: ``[E, B, T, I]`` (one per member) or ``[B, T, I]`` (shared);
      ``T`` and ``B`` swap places when not ``batch_first``. None when ``I = 0``
      and `stim_input` gives ``T``.
    - `x0`: leaky, ``[E, B, H]`` or ``[B, H]`` shared. `h0`: the initial rates
      (Elman's state, required there; leaky default ``f(x0)``).
    - `stim_input`, `eps_x`: ``[E, B, T, H]`` or shared ``[B, T, H]``;
      `eps_u`: the layout of `inp`. Standard-normal noise draws.
    - `key`: one PRNG key per member (``[E]``; member ``e`` draws as a single
      network called with ``key[e]``) or one key (split in ``E``); not with
      `eps_x` / `eps_u`.

    **Returns:** leaky ``(xs, hs)``, Elman ``hs``; each ``[E, B, T, H]``
    (``[E, T, B, H]`` if not ``batch_first``).
    """
    E = _members_of(params)
    dynamics = _member_dynamics(dynamics, E)
    d0 = dynamics[0]
    H, I = _check_network(_member_view(params), d0)
    leaky = d0.kind == "leaky"
    if leaky and x0 is None:
        raise MRNNConfigError(
            "x0: the leaky model needs an initial pre-activation [E, B, H], got None")
    if not leaky and x0 is None and h0 is None:
        raise MRNNConfigError("h0: the Elman model needs an initial state [E, B, H], got None")
    if key is not None and (eps_x is not None or eps_u is not None):
        raise MRNNConfigError(
            "key: noise is drawn from key or given as eps_x / eps_u, not both; "
            "got key together with explicit eps arrays")
    call = core.check_call(E, d0, H, I, inp, x0, h0, stim_input, eps_x, eps_u)
    state = x0 if leaky else h0
    if key is not None:
        key = _member_keys(key, E)
    rows, leak, c_x, c_u, learn = _alphas(params, dynamics, H)
    flags = tuple((d.rec_constrained, d.inp_constrained) for d in dynamics)
    weights = {n: params[n] for n in _USED if n != "tau"}
    # The single network's rule, per member: small outputs store every g_t and
    # form the weight gradients in one batched GEMM (per-step [H, B] x [B, H]
    # updates of many small members measured 4x slower than the loop itself);
    # large ones accumulate, so the ensemble needs no more memory than its members.
    gemm = (call.batch * call.steps * H <= _GEMM_MAX_ELEMENTS
            and H * H <= _ACCUMULATE_MAX_WEIGHTS)
    cfg = Config(leaky=leaky, activation=d0.activation, batch_first=d0.batch_first,
                 steps=call.steps, reverse_gemm=gemm, fma=I <= _INPUT_FMA_MAX,
                 learn_leak=learn)
    return _ensemble_scan(weights, rows, leak, c_x, c_u, inp, state, h0 if leaky else None,
                          stim_input, eps_x, eps_u, key, cfg=cfg, flags=flags)


def _time_major(a, batch_first: bool):
    """Call layout -> time-major: shared ``[B, T, F]`` -> ``[T, B, F]``, per member
    ``[E, B, T, F]`` -> ``[T, E, B, F]``."""
    if a is None:
        return None
    if a.ndim == 3:
        return jnp.swapaxes(a, 0, 1) if batch_first else a
    return jnp.moveaxis(a, 2 if batch_first else 1, 0)


def _effective(weights, flags):
    """``(W_rec_eff [E, H, H], W_inp_eff [E, H, I])``, each member with its Dale flags."""
    def eff(name, k):
        mask = jax.lax.stop_gradient(weights[f"{name}_mask"])
        sign = jax.lax.stop_gradient(weights[f"{name}_sign_matrix"])
        if len({f[k] for f in flags}) == 1:
            return effective_weight(weights[name], mask, sign, flags[0][k])
        return jnp.stack([effective_weight(weights[name][e], mask[e], sign[e], f[k])
                          for e, f in enumerate(flags)])

    return eff("W_rec", 0), eff("W_inp", 1)


@eqx.filter_jit
def _ensemble_scan(weights, rows, leak, c_x, c_u, inp, state, h0, stim_input, eps_x, eps_u, key,
                   *, cfg: Config, flags):
    """The compiled part of :func:`ensemble_simulate`: checked arrays in, outputs out."""
    W_rec_eff, W_inp_eff = _effective(weights, flags)
    E, H, I = W_inp_eff.shape
    dtype = jnp.result_type(W_inp_eff, weights["base_firing"])
    rows, c_x, c_u = (jnp.asarray(a, dtype) for a in (rows, c_x, c_u))
    leak = None if leak is None else jnp.asarray(leak, dtype)
    tm = lambda a: _time_major(a, cfg.batch_first)  # noqa: E731
    source = tm(inp if inp is not None else stim_input)
    T, B = cfg.steps, source.shape[-2]
    u, eps_x, eps_u = tm(inp), tm(eps_x), tm(eps_u)
    if key is not None:
        def draw(k):
            key_x, key_u = jax.random.split(k)
            return (jax.random.normal(key_x, (T, B, H), dtype),
                    jax.random.normal(key_u, (T, B, I), dtype))

        eps_x, eps_u = (jnp.moveaxis(a, 0, 1) for a in jax.vmap(draw)(key))
    if eps_u is not None:
        noise_u = c_u[:, None, None] * (eps_u if eps_u.ndim == 4 else eps_u[:, None])
        u = noise_u if u is None else (u if u.ndim == 4 else u[:, None]) + noise_u
    if I == 0:
        u = None
    extra = None
    if eps_x is not None:
        extra = c_x[:, None, :] * (eps_x if eps_x.ndim == 4 else eps_x[:, None])
    if stim_input is not None:
        s = tm(stim_input)
        s = s if s.ndim == 4 else s[:, None]
        extra = s if extra is None else extra + s
    if extra is not None:
        extra = jnp.broadcast_to(extra, (T, E, B, H))
        if cfg.leaky:
            extra = rows[:, None, :] * extra

    x = jnp.broadcast_to(state, (E, B, H))
    f = get_activation(cfg.activation)
    if not cfg.leaky:
        h = x
    elif h0 is None:
        h = f(x)
    else:
        h = jnp.broadcast_to(h0, (E, B, H))
    if cfg.leaky:
        W_rec_eff = rows[:, :, None] * W_rec_eff
        W_inp_eff = rows[:, :, None] * W_inp_eff
        bias = rows * weights["base_firing"]
    else:
        bias = weights["base_firing"]
    return ensemble_recurrence(cfg, jnp.swapaxes(W_rec_eff, 1, 2),
                               None if u is None else jnp.swapaxes(W_inp_eff, 1, 2),
                               bias, leak, x if cfg.leaky else None, h, u, extra)


# --------------------------------------------------------------------------- the Module


class Ensemble(eqx.Module):
    """``E`` networks that share a spec, stacked into one pytree and run as one.

    Build it with :meth:`from_seeds`, :meth:`from_models` or
    :meth:`from_checkpoints`. Members may differ in everything a single model
    draws or learns (masks, weights, biases, ``init``, learned ``tau``) and in
    ``dt``, ``tau``, noise levels, ``spectral_radius``, ``balance_ei`` and the
    Dale flags; they share the spec, the kind (all leaky or all Elman), the
    activation and ``batch_first``.

    **Fields:** `model`, one :class:`mRNN` / :class:`ElmanmRNN` whose every
    array carries a leading member axis ``[E, ...]`` (so
    ``mrnn_jax.trainable_filter(ens)`` and ``eqx.partition`` work as for one
    model: masks, signs and frozen entries get no gradient); static
    `member_dynamics` (each member's :class:`mrnn_core.Dynamics`) and
    `member_tau` (each member's shared time constant, None where its units
    differ).

    **Call** (leaky): ``xs, hs = ens(inp, x0=None, h0=None, stim_input=None, *,
    key=None, eps_x=None, eps_u=None)``; Elman: ``hs = ens(inp, h0=...)``.
    Shapes with ``batch_first`` (else swap ``B`` and ``T``): ``inp``
    ``[B, T, I]`` shared or ``[E, B, T, I]`` per member; ``x0`` / ``h0``
    ``[E, B, H]`` or ``[B, H]`` shared (default: each member's
    ``initial_condition``); ``stim_input``, ``eps_x`` ``[E, B, T, H]`` (or
    shared); ``key``: one PRNG key per member (``jax.random.split(k, E)``;
    member ``e`` draws the noise it would draw alone with ``key[e]``) or one
    key to split. **Returns:** ``(xs, hs)`` (Elman ``hs``), each
    ``[E, B, T, H]``; member ``e``'s slice equals ``ens.members()[e](inp, ...)``
    (to rounding).
    """

    model: mRNNBase
    member_dynamics: tuple = eqx.field(static=True)
    member_tau: tuple = eqx.field(static=True)

    def __init__(self, models: Sequence[mRNNBase]):
        """The ensemble of ``models`` (see :meth:`from_models`)."""
        models = _check_models(models)
        first = models[0]
        changes = {f.name: jnp.stack([getattr(m, f.name) for m in models])
                   for f in dataclasses.fields(first) if f.name in _LEAVES}
        taus = {m.uniform_tau for m in models}
        changes["uniform_tau"] = first.uniform_tau if len(taus) == 1 else None
        self.model = first._replace(**changes)
        self.member_dynamics = tuple(m.dynamics for m in models)
        self.member_tau = tuple(m.uniform_tau for m in models)

    # building ----------------------------------------------------------------

    @classmethod
    def from_models(cls, models: Sequence[mRNNBase]) -> Ensemble:
        """An ensemble of copies of ``models`` (a non-empty sequence of :class:`mRNN`
        or :class:`ElmanmRNN` of one spec); every array is kept exactly."""
        return cls(models)

    @classmethod
    def from_seeds(cls, config_or_spec, seeds: Sequence[int], *, dynamics: Dynamics | None = None,
                   model: str = "leaky", activation: str = "relu",
                   member_values: Mapping[str, Sequence] | None = None) -> Ensemble:
        """``E = len(seeds)`` fresh networks of one spec.

        **Arguments:**

        - `config_or_spec`: a JSON path, an mRNNTorch-format dict or a
          :class:`mrnn_core.NetworkSpec`.
        - `seeds`: one non-negative integer per member: member ``e``'s masks
          and weights are those of ``mrnn_core.Checkpoint.initialise(spec,
          dynamics_e, seeds[e])`` (so equal to ``mRNN(spec, ..., seed=seeds[e])``
          and to the torch ensemble's member).
        - `dynamics`: a :class:`mrnn_core.Dynamics` (default
          ``Dynamics(kind=model, activation=activation)``; when given, `model`
          and `activation` are not used).
        - `member_values`: a dict from some of ``tau``, ``noise_level_act``,
          ``noise_level_inp``, ``spectral_radius`` to ``E`` values each:
          member ``e``'s dynamics take the ``e``-th value.

        **Returns:** the ensemble.
        """
        return cls([_CLASSES[c.dynamics.kind].from_checkpoint(c) for c in core.seed_checkpoints(
            config_or_spec, seeds, dynamics=dynamics, model=model, activation=activation,
            member_values=member_values)])

    @classmethod
    def from_checkpoints(cls, checkpoints) -> Ensemble:
        """The networks of ``checkpoints`` (each a :class:`mrnn_core.Checkpoint`
        or the path of one saved by ``Checkpoint.save``), arrays unchanged."""
        return cls([mRNNBase.from_checkpoint(c) for c in core.load_checkpoints(checkpoints)])

    # the members -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.member_dynamics)

    @property
    def dynamics(self) -> list[Dynamics]:
        """Each member's :class:`mrnn_core.Dynamics`."""
        return list(self.member_dynamics)

    @property
    def kind(self) -> str:
        """``"leaky"`` or ``"elman"``."""
        return self.member_dynamics[0].kind

    @property
    def spec(self):
        """The :class:`mrnn_core.NetworkSpec` every member shares."""
        return self.model.spec

    def members(self) -> list[mRNNBase]:
        """The ``E`` members as single models (their arrays are slices of the ensemble's)."""
        out = []
        for e, (d, tau) in enumerate(zip(self.member_dynamics, self.member_tau)):
            changes = {f.name: getattr(self.model, f.name)[e]
                       for f in dataclasses.fields(self.model) if f.name in _LEAVES}
            out.append(self.model._replace(dynamics=d, uniform_tau=tau, **changes))
        return out

    def to_checkpoints(self) -> list[Checkpoint]:
        """Each member's :meth:`~mRNNBase.to_checkpoint` (bit-identical to it)."""
        return [m.to_checkpoint() for m in self.members()]

    def batched_initial_condition(self, batch_size: int):
        """Each member's ``batched_initial_condition``, stacked: leaky ``(x0, h0)``,
        Elman ``h0``, each ``[E, B, H]``."""
        init = self.model.initial_condition
        x0 = jnp.broadcast_to(init[:, None, :], (len(self), batch_size, init.shape[-1]))
        if self.kind == "leaky":
            return x0, get_activation(self.model.dynamics.activation)(x0)
        return x0

    def params(self) -> dict:
        """The stacked mapping :func:`ensemble_simulate` takes (``tau`` ``[E, H]`` included;
        entries that do not train are behind ``stop_gradient``)."""
        p = self.model.params()
        if not self.model._learns_tau and all(t is not None for t in self.member_tau):
            p["tau"] = np.repeat(np.asarray(self.member_tau, float)[:, None],
                                 self.spec.hidden_size, axis=1)
        return p

    # running -----------------------------------------------------------------

    def __call__(self, inp, x0=None, h0=None, stim_input=None, *, key=None, eps_x=None,
                 eps_u=None):
        """Run every member for ``T`` steps; see the class docstring for shapes."""
        leaky = self.kind == "leaky"
        if leaky and x0 is None:
            x0 = self._default_state(inp, stim_input)
        if not leaky and h0 is None and x0 is None:
            h0 = self._default_state(inp, stim_input)
        return ensemble_simulate(self.params(), self.member_dynamics, inp, x0, h0,
                                 stim_input=stim_input, eps_x=eps_x, eps_u=eps_u, key=key)

    def _default_state(self, inp, stim_input):
        init = self.model.initial_condition[:, None, :]
        seq = inp if inp is not None else stim_input
        if seq is None or jnp.ndim(seq) not in (3, 4):
            return init  # bad shapes: left for ensemble_simulate to report
        batch = jnp.shape(seq)[-3 if self.model.dynamics.batch_first else -2]
        return jnp.broadcast_to(init, (len(self), batch, init.shape[-1]))

    # devices -----------------------------------------------------------------

    def shard(self, mesh: Mesh) -> Ensemble:
        """This ensemble with every array split over ``mesh``'s ``"members"`` axis.

        Works across hosts (after ``jax.distributed.initialize()``): each
        process places the members its devices hold from its own copy. A
        jitted call or training step on the result then runs each device's
        members there (computation follows the data).
        """
        return shard_members(self, mesh)


def _check_models(models) -> list[mRNNBase]:
    models = core.model_list(models, mRNNBase)
    core.check_models_agree(
        models, lambda m: m.spec,
        lambda m: {n: (tuple(jnp.shape(getattr(m, n))), f"dtype {jnp.result_type(getattr(m, n))}")
                   for n in _LEAVES})
    return models


# --------------------------------------------------------------------------- training


def member_optimiser(optimiser):
    """``optimiser`` (an ``optax.GradientTransformation``) run per member.

    Its ``init`` and ``update`` are ``jax.vmap``-ed over the leading member
    axis of every array, so each member keeps its own state and anything that
    looks across arrays (``optax.clip_by_global_norm``) sees that member's
    gradients only: each member trains exactly as it would alone.

    **Returns:** an ``optax.GradientTransformation``.
    """
    import optax

    def update(updates, state, params=None):
        if params is None:
            return jax.vmap(lambda u, s: optimiser.update(u, s))(updates, state)
        return jax.vmap(optimiser.update)(updates, state, params)

    return optax.GradientTransformation(jax.vmap(optimiser.init), update)


# --------------------------------------------------------------------------- devices


def mesh(members: int | None = None, batch: int = 1, devices=None) -> Mesh:
    """A ``jax.sharding.Mesh`` of axes ``("members", "batch")`` over ``devices``.

    **Arguments:** `members` devices along the member axis (default: all
    devices divided by `batch`), `batch` along the trial axis, `devices`
    (default ``jax.devices()``: every device of every process after
    ``jax.distributed.initialize()``).

    **Returns:** the mesh; its sizes must multiply to the number of devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise MRNNConfigError(f"mesh: batch: expected a positive integer, got {batch!r}")
    if members is None:
        members = len(devices) // batch
    if members * batch != len(devices) or members < 1:
        raise MRNNConfigError(
            f"mesh: members x batch must equal the number of devices, {len(devices)}; got "
            f"members = {members}, batch = {batch}")
    return Mesh(np.asarray(devices, dtype=object).reshape(members, batch),
                (MEMBERS_AXIS, BATCH_AXIS))


def _axis_size(mesh_, name: str) -> int:
    if not isinstance(mesh_, Mesh):
        raise MRNNConfigError(
            f"mesh: expected a jax.sharding.Mesh (mrnn_jax.ensemble.mesh), got "
            f"{type(mesh_).__name__}")
    return int(mesh_.shape.get(name, 1))


def _place(a, mesh_, spec: PartitionSpec):
    """``a`` as a global array sharded by ``spec`` (from this process's full copy)."""
    if not eqx.is_array(a) and not isinstance(a, np.ndarray):
        return a
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):  # PRNG keys travel as their data
        placed = _place(jax.random.key_data(a), mesh_, spec)
        return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(a))
    sharding = NamedSharding(mesh_, PartitionSpec(*spec[:np.ndim(a)]))
    if isinstance(a, jax.Array) and a.is_fully_addressable is False:
        return jax.device_put(a, sharding)
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_members(tree, mesh_: Mesh):
    """``tree`` (an :class:`Ensemble`, stacked readouts, optimiser states: every array
    with a leading member axis ``E``) with its arrays split over ``mesh_``'s
    ``"members"`` axis and replicated along ``"batch"``.

    Works across hosts (after ``jax.distributed.initialize()``): each process
    places the members its devices hold from its own full copy. Raises, before
    moving anything, when the axis does not divide ``E``.
    """
    n = _axis_size(mesh_, MEMBERS_AXIS)
    for a in jax.tree.leaves(tree):
        if (eqx.is_array(a) or isinstance(a, np.ndarray)) and (np.ndim(a) == 0
                                                                or np.shape(a)[0] % n):
            E = np.shape(a)[0] if np.ndim(a) else "no member axis"
            raise MRNNConfigError(
                f"shard: the mesh's {MEMBERS_AXIS!r} axis has {n} devices, which does not "
                f"divide E = {E} members (an array of shape {np.shape(a)}); use a number "
                f"of members that is a multiple of {n}, or a mesh with a divisor of it there")
    return jax.tree.map(lambda a: _place(a, mesh_, PartitionSpec(MEMBERS_AXIS)), tree)


def shard_batch(a, mesh_: Mesh, *, per_member: bool):
    """A call argument split over ``mesh_``: the trial axis over ``"batch"`` and,
    for ``per_member`` arrays (a leading ``E``), the member axis over ``"members"``.

    **Arguments:** `a`: an input such as ``inp`` ``[B, T, I]`` (shared) or
    ``[E, B, T, I]`` (per member), or a state ``[E, B, H]``, batch-first (the
    trial axis is the first after ``E``); `mesh_`: from :func:`mesh`.

    **Returns:** the sharded global array. Raises when a mesh axis does not
    divide the axis it splits.
    """
    shape = _shape(a)
    n_b = _axis_size(mesh_, BATCH_AXIS)
    n_e = _axis_size(mesh_, MEMBERS_AXIS)
    b_axis = 1 if per_member else 0
    if len(shape) <= b_axis or shape[b_axis] % n_b:
        raise MRNNConfigError(
            f"shard_batch: the mesh's {BATCH_AXIS!r} axis has {n_b} devices, which does not "
            f"divide the trial axis (axis {b_axis}) of shape {shape}; use a batch size that "
            f"is a multiple of {n_b}")
    if per_member and shape[0] % n_e:
        raise MRNNConfigError(
            f"shard_batch: the mesh's {MEMBERS_AXIS!r} axis has {n_e} devices, which does not "
            f"divide the member axis of shape {shape}")
    spec = (MEMBERS_AXIS, BATCH_AXIS) if per_member else (BATCH_AXIS,)
    return _place(a, mesh_, PartitionSpec(*spec))

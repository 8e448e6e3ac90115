"""What both backends' ensembles check and build before any array work.

An ensemble is ``E`` networks of one spec run as one (``mrnn_torch.Ensemble``,
``mrnn_jax.Ensemble``). Everything here is the same for both backends and
numpy-only: the per-member dynamics of ``from_seeds(member_values=...)``,
the seeds, the checkpoints of ``from_checkpoints``, the rule that members
share a spec and what the batched loop shares (kind, activation,
``batch_first``), and the member axis of a call's arguments. A backend keeps
only what touches its own arrays and models.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .checkpoint import Checkpoint
from .config import load_config
from .dynamics import Dynamics
from .errors import MRNNConfigError
from .shapes import CallShape, check_call_shapes

MEMBER_VALUES = ("tau", "noise_level_act", "noise_level_inp", "spectral_radius")
"""The dynamics values ``Ensemble.from_seeds(member_values=...)`` may set per member."""

SHARED_DYNAMICS = ("kind", "activation", "batch_first")
"""What the batched loop shares, so every member must agree on it."""

_MODELS = "mRNN or ElmanmRNN"


# --------------------------------------------------------------------------- members agree


def check_specs(specs: Sequence, what: str) -> None:
    """Every spec equals ``specs[0]``; ``what`` names the list in messages
    (``"models"``, ``"checkpoints"``)."""
    spec0 = specs[0]
    for e, spec in enumerate(specs[1:], start=1):
        if spec != spec0:
            same_sizes = (spec.hidden_size, spec.input_size) == (spec0.hidden_size,
                                                                 spec0.input_size)
            raise MRNNConfigError(
                f"Ensemble: {what}[{e}] has a different network spec from {what}[0]; every "
                f"member must share one spec (regions, connections, sizes): expected "
                f"H = {spec0.hidden_size}, I = {spec0.input_size} and the same regions and "
                f"connections, got H = {spec.hidden_size}, I = {spec.input_size}"
                + (" with other regions or connections" if same_sizes else ""))


def check_shared(dynamics: Sequence[Dynamics], what: str) -> None:
    """Every :class:`Dynamics` agrees with ``dynamics[0]`` on :data:`SHARED_DYNAMICS`."""
    for e, d in enumerate(dynamics[1:], start=1):
        for name in SHARED_DYNAMICS:
            if getattr(d, name) != getattr(dynamics[0], name):
                raise MRNNConfigError(
                    f"Ensemble: {what}[{e}] has {name}={getattr(d, name)!r}, expected "
                    f"{getattr(dynamics[0], name)!r} as {what}[0]: members must share kind, "
                    f"activation and batch_first")


def model_list(models, model_types: type | tuple) -> list:
    """``models`` as a non-empty list of ``model_types`` instances (the backend's
    mRNN / ElmanmRNN classes), or :class:`MRNNConfigError`."""
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise MRNNConfigError(
            f"Ensemble: expected a non-empty sequence of {_MODELS} models, got "
            f"{type(models).__name__}")
    models = list(models)
    if not models:
        raise MRNNConfigError("Ensemble: expected at least one model, got an empty list")
    for e, m in enumerate(models):
        if not isinstance(m, model_types):
            raise MRNNConfigError(
                f"Ensemble: models[{e}]: expected an {_MODELS}, got {type(m).__name__}")
    return models


def check_models_agree(models: list, spec_of: Callable, arrays_of: Callable) -> None:
    """The members of :func:`model_list` can run as one: same class (so kind),
    spec, activation and ``batch_first``, and arrays of the same names, shapes
    and types.

    **Arguments:** `spec_of(model)` its :class:`NetworkSpec`; `arrays_of(model)`
    a dict from each array's name to ``(shape, what)``, ``what`` the rest that
    must agree, as text (dtype, device).
    """
    first = models[0]
    for e, m in enumerate(models[1:], start=1):
        if type(m) is not type(first):
            raise MRNNConfigError(
                f"Ensemble: models[{e}] is a {type(m).__name__}, expected a "
                f"{type(first).__name__} as models[0] (models[{e}] has "
                f"kind={m.dynamics.kind!r}, expected {first.dynamics.kind!r}: members must "
                f"share kind, activation and batch_first)")
    check_specs([spec_of(m) for m in models], "models")
    check_shared([m.dynamics for m in models], "models")
    ref = arrays_of(first)
    for e, m in enumerate(models[1:], start=1):
        got = arrays_of(m)
        if got.keys() != ref.keys():
            raise MRNNConfigError(
                f"Ensemble: models[{e}] has other arrays than models[0]: "
                f"{sorted(got.keys() ^ ref.keys())}")
        for name, (shape, what) in ref.items():
            if got[name] != (shape, what):
                raise MRNNConfigError(
                    f"Ensemble: models[{e}].{name}: expected shape {shape}, {what} as "
                    f"models[0], got shape {got[name][0]}, {got[name][1]}")


# --------------------------------------------------------------------------- building


def member_dynamics(dynamics: Dynamics, E: int, member_values) -> list[Dynamics]:
    """``E`` copies of ``dynamics``, member ``e`` with the ``e``-th entry of each
    ``member_values`` list (a dict from some of :data:`MEMBER_VALUES` to ``E``
    values; None: every member the same). Each copy is validated as a
    :class:`Dynamics` (a bad value names its field)."""
    if member_values is None:
        return [dynamics] * E
    if not isinstance(member_values, Mapping):
        raise MRNNConfigError(
            f"Ensemble.from_seeds: member_values: expected a dict from some of "
            f"{', '.join(MEMBER_VALUES)} to {E} values each, got {type(member_values).__name__}")
    for key, values in member_values.items():
        if key not in MEMBER_VALUES:
            raise MRNNConfigError(
                f"Ensemble.from_seeds: member_values: unknown key {key!r}; expected some of "
                f"{', '.join(MEMBER_VALUES)}")
        sized = isinstance(values, (Sequence, np.ndarray)) and not isinstance(values,
                                                                              (str, bytes))
        if not sized or len(values) != E:
            got = f"length {len(values)}" if sized else repr(values)
            raise MRNNConfigError(
                f"Ensemble.from_seeds: member_values[{key!r}]: expected {E} values, one per "
                f"seed, got {got}")
    return [dataclasses.replace(dynamics, **{k: v[e] for k, v in member_values.items()})
            for e in range(E)]


def check_seeds(seeds) -> list[int]:
    """``seeds`` as a non-empty list of non-negative Python ints."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, np.ndarray)) \
            or len(seeds) == 0:
        raise MRNNConfigError(
            f"Ensemble.from_seeds: seeds: expected a non-empty sequence of integers, "
            f"one per member, got {seeds!r}")
    for e, seed in enumerate(seeds):
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
                or seed < 0:
            raise MRNNConfigError(
                f"Ensemble.from_seeds: seeds[{e}]: expected a non-negative integer, "
                f"got {seed!r}")
    return [int(s) for s in seeds]


def seed_checkpoints(config_or_spec, seeds, *, dynamics: Dynamics | None = None,
                     model: str = "leaky", activation: str = "relu",
                     member_values: Mapping[str, Sequence] | None = None) -> list[Checkpoint]:
    """The checkpoints of ``Ensemble.from_seeds``: member ``e`` is
    ``Checkpoint.initialise(spec, dynamics_e, seeds[e])``.

    **Arguments:** as ``Ensemble.from_seeds`` (``dynamics`` default
    ``Dynamics(kind=model, activation=activation)``; when given, ``model`` and
    ``activation`` are not used). Everything is checked before any member is
    drawn.

    **Returns:** a list of ``E`` :class:`Checkpoint`.
    """
    spec = load_config(config_or_spec)
    if dynamics is None:
        dynamics = Dynamics(kind=model, activation=activation)
    if not isinstance(dynamics, Dynamics):
        raise MRNNConfigError(
            f"Ensemble.from_seeds: dynamics: expected a mrnn_core.Dynamics or None, "
            f"got {type(dynamics).__name__}")
    seeds = check_seeds(seeds)
    per_member = member_dynamics(dynamics, len(seeds), member_values)
    return [Checkpoint.initialise(spec, d, s) for s, d in zip(seeds, per_member)]


def load_checkpoints(checkpoints) -> list[Checkpoint]:
    """The checkpoints of ``Ensemble.from_checkpoints`` (each a :class:`Checkpoint`
    or the path of one saved by ``Checkpoint.save``), checked to share a spec,
    kind, activation and ``batch_first``."""
    if isinstance(checkpoints, (str, bytes, os.PathLike)) or not isinstance(checkpoints,
                                                                             Sequence):
        raise MRNNConfigError(
            f"Ensemble.from_checkpoints: expected a sequence of checkpoints or paths, "
            f"got {type(checkpoints).__name__}")
    loaded = [c if isinstance(c, Checkpoint) else Checkpoint.load(c) for c in checkpoints]
    if not loaded:
        raise MRNNConfigError("Ensemble.from_checkpoints: expected at least one checkpoint, got none")
    check_specs([c.spec for c in loaded], "checkpoints")
    check_shared([c.dynamics for c in loaded], "checkpoints")
    return loaded


# --------------------------------------------------------------------------- calls


def member_shape(a, name: str, E: int, shared_rank: int, expected: str, *,
                 shared: bool = True) -> tuple | None:
    """``a``'s per-member shape (None when ``a`` is None): rank ``shared_rank + 1``
    must have ``E`` first; rank ``shared_rank`` is one array shared by every member
    (only when ``shared``). ``expected`` is the per-member layout for messages."""
    if a is None:
        return None
    shape = tuple(np.shape(a))
    if len(shape) == shared_rank + 1:
        if shape[0] != E:
            raise MRNNConfigError(
                f"Ensemble call: {name}: a leading member axis must have E = {E} entries, "
                f"got shape {shape}")
        return shape[1:]
    if len(shape) == shared_rank and shared:
        return shape
    also = " (or the same without E, shared by every member)" if shared else ""
    raise MRNNConfigError(
        f"Ensemble call: {name}: expected {expected}{also}, got {len(shape)}-D shape {shape}")


def check_call(E: int, dynamics: Dynamics, hidden_size: int, input_size: int, inp, x0=None,
               h0=None, stim_input=None, eps_x=None, eps_u=None, *,
               shared_noise: bool = True) -> CallShape:
    """Check an ensemble call's arguments (arrays of any library, or None) and
    return one member's :class:`CallShape`.

    **Arguments:** ``E`` members sharing ``dynamics``' kind and ``batch_first``,
    ``H = hidden_size``, ``I = input_size``; ``inp`` ``[E, B, T, I]`` or shared
    ``[B, T, I]`` (``B`` and ``T`` swapped when not ``batch_first``); ``x0``
    (leaky) / ``h0`` ``[E, B, H]`` or ``[B, H]``; ``stim_input``, ``eps_x``
    ``[E, B, T, H]``; ``eps_u`` ``[E, B, T, I]``; the noise draws may drop
    ``E`` only when ``shared_noise``.
    """
    leaky = dynamics.kind == "leaky"
    if not leaky and x0 is not None:
        raise MRNNConfigError(
            "Ensemble of ElmanmRNN: x0: the initial state is h0 [E, B, H] (Elman networks "
            "have no separate pre-activation); got x0, pass h0=...")
    layout = "[E, B, T, {}]" if dynamics.batch_first else "[E, T, B, {}]"
    state_name = "x0" if leaky else "h0"
    shapes = dict(
        inp=member_shape(inp, "inp", E, 3, layout.format("I")),
        state=member_shape(x0 if leaky else h0, state_name, E, 2, "[E, B, H]"),
        h0=member_shape(h0, "h0", E, 2, "[E, B, H]") if leaky else None,
        stim_input=member_shape(stim_input, "stim_input", E, 3, layout.format("H")),
        eps_x=member_shape(eps_x, "eps_x", E, 3, layout.format("H"), shared=shared_noise),
        eps_u=member_shape(eps_u, "eps_u", E, 3, layout.format("I"), shared=shared_noise))
    return check_call_shapes(hidden_size=hidden_size, input_size=input_size,
                             batch_first=dynamics.batch_first, state_name=state_name, **shapes)

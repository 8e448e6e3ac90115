"""Resumable training of an mrnn_jax model (and a readout) on a task, with optax.

::

    from mrnn_core.tasks import make_task
    from mrnn_jax import Readout, mRNN
    from mrnn_jax.train import train

    task = make_task("flip_flop", steps=100)
    readout = Readout(model, "ctx", task.n_outputs, seed=1)
    result = train(model, task, readout=readout, steps=2000, batch_size=32,
                   run_dir="runs/ff", checkpoint_every=100)
    model, readout = result.model, result.readout      # new pytrees, trained
    # killed? the same call with resume=True continues from the newest checkpoint

The run folder, checkpoint layout and fallback rules are
:mod:`mrnn_core.training`'s, shared with ``mrnn_torch.train``.
"""

from __future__ import annotations

import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mrnn_core import MRNNConfigError
from mrnn_core import training as core
from mrnn_core.training import TrainResult as TrainResult

from . import losses
from ._model import mRNNBase, trainable_filter
from .ensemble import (BATCH_AXIS, MEMBERS_AXIS, Ensemble, member_optimiser, shard_batch,
                       shard_members)
from .readout import Readout

__all__ = ["train", "TrainResult"]

TRAINING = "training.npz"


def _batch(sample, batch_size: int, seed: int, step: int, loss: str, n_outputs: int, dtype):
    """Step ``step``'s batch as arrays ``(inputs, targets, mask)``; class labels (a
    cross-entropy's targets) are checked against ``n_outputs`` and stay integers."""
    inputs, targets, mask = core.check_batch(sample(batch_size, core.step_rng(seed, step)), loss)
    if loss == "cross_entropy":
        core.check_labels(n_outputs, targets)
        labels = jnp.asarray(targets, dtype=jnp.int32)
    else:
        labels = jnp.asarray(targets, dtype=dtype)
    return (jnp.asarray(inputs, dtype=dtype), labels,
            None if mask is None else jnp.asarray(mask, dtype=dtype))


def _check_model(model, readout):
    if not isinstance(model, mRNNBase):
        raise MRNNConfigError(
            f"train: model: expected an mrnn_jax model (mRNN or ElmanmRNN), got {type(model).__name__}")
    if readout is not None and not isinstance(readout, Readout):
        raise MRNNConfigError(
            f"train: readout: expected an mrnn_jax.Readout or None, got {type(readout).__name__}")


def _make_optimizer(optimizer, lr):
    if optimizer is None:
        return _adam(float(lr))
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    raise MRNNConfigError(
        f"train: optimizer: expected an optax.GradientTransformation or None (optax.adam(lr)), "
        f"got {type(optimizer).__name__}")


def _arrays(tree) -> list:
    return [leaf for leaf in jax.tree.leaves(tree) if eqx.is_array(leaf)]


def _fill(template, stored: list, what: str, folder: str):
    """``template`` with its array leaves replaced by ``stored`` (same count, shapes and dtypes)."""
    leaves, treedef = jax.tree.flatten(template)
    slots = [k for k, leaf in enumerate(leaves) if eqx.is_array(leaf)]
    if len(slots) != len(stored):
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: {TRAINING} holds {len(stored)} {what} arrays, this run has "
            f"{len(slots)} (a different model, readout or optimiser)")
    for k, a in zip(slots, stored):
        if a.shape != leaves[k].shape or a.dtype != leaves[k].dtype:
            raise core.RunMismatchError(
                f"checkpoint {folder!r}: {TRAINING}: a {what} array is {a.dtype}{list(a.shape)}, "
                f"this run's is {leaves[k].dtype}{list(leaves[k].shape)}")
        leaves[k] = jnp.asarray(a)
    return jax.tree.unflatten(treedef, leaves)


def _read(folder, trainable, frozen, opt_state):
    """``(trainable, frozen, opt_state)`` as checkpoint ``folder`` holds them, in the
    templates' structure (the frozen arrays too: masks, signs, anchors, as torch's
    buffers travel in its ``state_dict``)."""
    with np.load(os.path.join(folder, TRAINING), allow_pickle=False) as data:
        stored = {k: data[k] for k in data.files}
    groups = {prefix: [stored[k] for k in sorted(k for k in stored if k.startswith(prefix))]
              for prefix in ("param_", "frozen_", "opt_")}
    if sum(map(len, groups.values())) != len(stored):
        raise MRNNConfigError(
            f"checkpoint {folder!r}: {TRAINING} holds arrays other than param_*, frozen_*, opt_*")
    return (_fill(trainable, groups["param_"], "trainable", folder),
            _fill(frozen, groups["frozen_"], "frozen", folder),
            _fill(opt_state, groups["opt_"], "optimiser state", folder))


def _loss_value(outputs, targets, mask, loss):
    if loss == "mse":
        return losses.mse(outputs, targets, mask)
    per_step = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    if mask is None:
        return jnp.mean(per_step)
    return jnp.sum(mask * per_step) / jnp.maximum(jnp.sum(mask), 1.0)


@eqx.filter_jit
def _update(trainable, frozen, opt_state, inputs, targets, mask, key, optimizer, loss, noise,
            regularizer):
    """One optax step: ``(trainable, opt_state, loss)``.

    Module-level, with the optimiser, loss, noise switch and regularizer as
    static arguments, so that runs with the same optimiser object and shapes share
    one compiled step.
    """
    def loss_fn(trainable):
        rnn, out = eqx.combine(trainable, frozen)
        noise_key = key if noise else None
        if rnn.dynamics.kind == "leaky":
            x0, h0 = rnn.batched_initial_condition(inputs.shape[0])
            _, hs = rnn(inputs, x0, h0, key=noise_key)
        else:
            hs = rnn(inputs, rnn.batched_initial_condition(inputs.shape[0]), key=noise_key)
        outputs = hs if out is None else out(hs)
        value = _loss_value(outputs, targets, mask, loss)
        return value if regularizer is None else value + regularizer(hs)

    value, grads = eqx.filter_value_and_grad(loss_fn)(trainable)
    changes, opt_state = optimizer.update(grads, opt_state, trainable)
    return eqx.apply_updates(trainable, changes), opt_state, value


@functools.lru_cache(maxsize=16)
def _adam(lr: float):
    """``optax.adam(lr)``, one object per rate, so that runs with the default share a compiled step."""
    return optax.adam(lr)


def train(model, task, *, optimizer=None, lr: float = 1e-3, steps: int, batch_size: int,
          readout=None, run_dir=None, checkpoint_every: int = 100, keep: int = 3,
          resume: bool = False, seed: int = 0, progress: bool = True, callback=None,
          callback_every: int | None = None, loss: str = "mse", noise: bool = True,
          regularizer=None, mesh=None) -> TrainResult:
    """Train ``model`` (and ``readout``) on ``task`` for ``steps`` steps, checkpointing as it goes.

    Each step draws ``batch_size`` trials with ``task.sample(batch_size, rng)``
    (``rng`` seeded from ``(seed, step)``), runs the model from its initial
    condition (noise, if ``noise``, from the key ``fold_in(key(seed), step)``),
    reads out (``readout(hs)``, or ``hs`` itself without a readout), and
    takes one jitted optax step on the loss of the arrays
    :func:`mrnn_jax.trainable_filter` selects (never masks or sign matrices):

    - ``"mse"``: :func:`mrnn_jax.losses.mse` against ``[B, T, O]`` targets
      (and the task's ``[B, T]`` mask, if any);
    - ``"cross_entropy"``: softmax cross-entropy of the ``[B, T, C]``
      outputs against ``[B, T]`` class labels (neurogym tasks), mask-weighted.

    **Arguments:** as ``mrnn_torch.train.train``, except:

    - `model`: an mrnn_jax ``mRNN`` or ``ElmanmRNN``; `readout`: an
      :class:`mrnn_jax.Readout` or ``None``. Neither is changed: the trained
      ones are returned.
    - `optimizer`: an ``optax.GradientTransformation`` or ``None``
      (``optax.adam(lr)``).
    - Batches are cast to the model's dtype (``W_rec``'s).
    - `regularizer`: ``regularizer(hs)`` of the rates ``[B, T, H]``, a scalar
      added to the loss (``lambda hs: 1e-3 * mrnn_jax.losses.rate_l2(hs)``), or ``None``.

    **Ensembles:** `model` may be an :class:`mrnn_jax.Ensemble` of ``E``
    members, with `readout` ``None`` or a list of ``E`` readouts (one per
    member, all reading the same units). The step's loss is the sum of the
    members' own losses (each as above, `regularizer` included, on the
    member's rates), and the optimiser runs per member
    (:func:`mrnn_jax.ensemble.member_optimiser`: its own state, and a
    clipped global norm of its own gradients), so each member trains exactly
    as if alone. Every member sees the same trials and draws the same noise,
    that of the key of step ``(seed, i)``, so member ``e`` ends as
    ``train(ens.members()[e], task, seed=seed, ...)`` would (to rounding:
    the batched matmul may sum in another order). A checkpoint holds one
    network checkpoint per member, ``network_<e>.npz``
    (``Ensemble.from_checkpoints`` loads them), the stacked arrays and
    optimiser states, and the loss history of every member.

    **Devices:** `mesh`, a ``jax.sharding.Mesh`` from
    :func:`mrnn_jax.ensemble.mesh` (ensembles only), splits the members over
    its ``"members"`` axis (the ensemble, readouts and optimiser states go
    through :func:`mrnn_jax.ensemble.shard_members`) and each batch over its
    ``"batch"`` axis (:func:`mrnn_jax.ensemble.shard_batch`); the step key is
    replicated. The losses and trained arrays are those of the run without a
    mesh (to rounding). With several processes (after
    ``jax.distributed.initialize()``) every process makes the same call. A
    mesh whose axes do not divide the members or `batch_size`, or a mesh for
    a single model, is refused before any work.

    **Returns:** :class:`mrnn_core.training.TrainResult` with the trained
    ``model`` and ``readout`` (an ensemble's run: the trained ``Ensemble``,
    the list of trained readouts, ``member_history`` ``[steps, E]``, and
    ``history`` holding the sums).
    """
    callback_every = core.check_settings(
        steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, keep=keep,
        seed=seed, callback_every=callback_every, loss=loss, run_dir=run_dir, resume=resume,
        lr=lr, callback=callback)
    if mesh is not None and not isinstance(model, Ensemble):
        raise MRNNConfigError(
            f"train: mesh: expected None for a single model (a mesh splits an Ensemble's "
            f"members over devices), got a mesh for a {type(model).__name__}")
    if isinstance(model, Ensemble):
        return _train_ensemble(
            model, task, optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size,
            readout=readout, run_dir=run_dir, checkpoint_every=checkpoint_every, keep=keep,
            resume=resume, seed=seed, progress=progress, callback=callback,
            callback_every=callback_every, loss=loss, noise=noise, regularizer=regularizer,
            mesh=mesh)
    _check_model(model, readout)
    sample = core.check_task(task, loss)
    if regularizer is not None and not callable(regularizer):
        raise MRNNConfigError(f"train: regularizer must be callable(hs) -> scalar, got {regularizer!r}")
    optimizer = _make_optimizer(optimizer, lr)
    run_dir = core.prepare_run_dir(run_dir, resume)

    net = (model, readout)
    trainable, frozen = eqx.partition(net, trainable_filter(net))
    opt_state = optimizer.init(trainable)
    start, history = 0, []
    if resume:
        found = core.load_latest(
            run_dir, lambda folder, state: _read(folder, trainable, frozen, opt_state),
            lambda state, folder: core.check_resumed_state(state, seed, steps, folder))
        if found is not None:
            (trainable, frozen, opt_state), state, _ = found
            start, history = state["step"], [float(v) for v in state["history"]]

    dtype = model.W_rec.dtype
    base_key = jax.random.key(seed)

    n_outputs = (model.spec.hidden_size if readout is None
                 else readout.readout_spec.out_features)
    carry = {"trainable": trainable, "opt_state": opt_state}

    def do_step(i: int) -> float:
        x, y, m = _batch(sample, batch_size, seed, i, loss, n_outputs, dtype)
        carry["trainable"], carry["opt_state"], value = _update(
            carry["trainable"], frozen, carry["opt_state"], x, y, m,
            jax.random.fold_in(base_key, i), optimizer, loss, noise, regularizer)
        return float(value)

    def save(step: int, history: list) -> str:
        rnn, out = eqx.combine(carry["trainable"], frozen)
        ckpt = rnn.to_checkpoint()
        if out is not None:
            ckpt = out.add_to_checkpoint(ckpt)
        arrays = {f"param_{k:05d}": np.asarray(a) for k, a in enumerate(_arrays(carry["trainable"]))}
        arrays.update({f"frozen_{k:05d}": np.asarray(a) for k, a in enumerate(_arrays(frozen))})
        arrays.update({f"opt_{k:05d}": np.asarray(a) for k, a in enumerate(_arrays(carry["opt_state"]))})

        def write_training(path):
            with open(path, "wb") as f:
                np.savez(f, **arrays)

        return core.save_checkpoint(
            run_dir, step, {core.NETWORK: ckpt.save, TRAINING: write_training},
            core.network_state(step=step, seed=seed, backend="jax", history=history), keep)

    loop = {"checkpoint_every": checkpoint_every, "callback": callback,
            "callback_every": callback_every, "progress": progress}
    last = core.run_loop(start=start, steps=steps, seed=seed, do_step=do_step, save=save,
                         history=history, run_dir=run_dir, **loop)
    trained_model, trained_readout = eqx.combine(carry["trainable"], frozen)
    return TrainResult(trained_model, trained_readout, history, len(history), run_dir, last)


# ----------------------------------------------------------------------------- ensembles

@functools.lru_cache(maxsize=16)
def _per_member(optimizer):
    """``member_optimiser(optimizer)``, one object per optimiser, so runs share a compiled step."""
    return member_optimiser(optimizer)


def _stack_readouts(readouts):
    """The members' readouts as one pytree with a leading member axis (they must read alike)."""
    if readouts is None:
        return None
    first = readouts[0]
    for e, r in enumerate(readouts[1:], start=1):
        if (r.readout_spec, r.spec) != (first.readout_spec, first.spec) or (
                r.weight.shape, r.weight.dtype) != (first.weight.shape, first.weight.dtype):
            raise MRNNConfigError(
                f"train: readout[{e}]: expected a readout like readout[0] (the same regions, "
                f"outputs, Dale flag, bias and dtype {first.weight.dtype}{list(first.weight.shape)}, "
                f"for the same spec), got {r!r} with weight {r.weight.dtype}{list(r.weight.shape)}")
    return jax.tree.map(lambda *a: jnp.stack(a), *readouts)


@eqx.filter_jit
def _update_ensemble(trainable, frozen, opt_state, inputs, targets, mask, key, optimizer, loss,
                     noise, regularizer):
    """One optax step of every member: ``(trainable, opt_state, losses [E])``."""
    def loss_fn(trainable):
        ens, out = eqx.combine(trainable, frozen)
        E = len(ens)
        # every member draws the noise it would draw alone with this step's key
        keys = jax.vmap(lambda _: key)(jnp.arange(E)) if noise else None
        if ens.kind == "leaky":
            x0, h0 = ens.batched_initial_condition(inputs.shape[0])
            _, hs = ens(inputs, x0, h0, key=keys)
        else:
            hs = ens(inputs, h0=ens.batched_initial_condition(inputs.shape[0]), key=keys)
        outputs = hs if out is None else jax.vmap(lambda r, h: r(h))(out, hs)

        def own(o, h):
            value = _loss_value(o, targets, mask, loss)
            return value if regularizer is None else value + regularizer(h)

        values = jax.vmap(own)(outputs, hs)
        return jnp.sum(values), values

    grads, values = eqx.filter_grad(loss_fn, has_aux=True)(trainable)
    changes, opt_state = optimizer.update(grads, opt_state, trainable)
    return eqx.apply_updates(trainable, changes), opt_state, values


def _check_mesh(mesh, E: int, batch_size: int) -> None:
    """Refuse a mesh that is not a ``Mesh`` or whose axes do not divide ``E`` or the batch."""
    from jax.sharding import Mesh

    if not isinstance(mesh, Mesh):
        raise MRNNConfigError(
            f"train: mesh: expected a jax.sharding.Mesh (mrnn_jax.ensemble.mesh) or None, "
            f"got {type(mesh).__name__}")
    n_e, n_b = int(mesh.shape.get(MEMBERS_AXIS, 1)), int(mesh.shape.get(BATCH_AXIS, 1))
    if E % n_e:
        raise MRNNConfigError(
            f"train: mesh: its {MEMBERS_AXIS!r} axis has {n_e} devices, which does not divide "
            f"E = {E} members; use a number of members that is a multiple of {n_e}")
    if batch_size % n_b:
        raise MRNNConfigError(
            f"train: mesh: its {BATCH_AXIS!r} axis has {n_b} devices, which does not divide "
            f"batch_size = {batch_size}; use a multiple of {n_b}")


def _replicate(key, mesh):
    """A PRNG key as a global array held whole by every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    data = np.asarray(jax.random.key_data(key))
    placed = jax.make_array_from_callback(data.shape, NamedSharding(mesh, PartitionSpec()),
                                          lambda index: data[index])
    return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(key))


def _host(tree):
    """``tree`` with arrays that span several processes gathered whole onto this one."""
    def gather(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return a

    return jax.tree.map(gather, tree)


def _train_ensemble(ens, task, *, optimizer, lr, steps, batch_size, readout, run_dir,
                    checkpoint_every, keep, resume, seed, progress, callback, callback_every,
                    loss, noise, regularizer, mesh) -> TrainResult:
    """:func:`train` for an :class:`Ensemble` (its docstring's "Ensembles" and "Devices")."""
    E = len(ens)
    readouts = core.check_member_readouts(readout, E, Readout, "mrnn_jax.Readout", distinct=False)
    stacked = _stack_readouts(readouts)
    if mesh is not None:
        _check_mesh(mesh, E, batch_size)
    sample = core.check_task(task, loss)
    if regularizer is not None and not callable(regularizer):
        raise MRNNConfigError(f"train: regularizer must be callable(hs) -> scalar, got {regularizer!r}")
    optimizer = _per_member(_make_optimizer(optimizer, lr))
    run_dir = core.prepare_run_dir(run_dir, resume)

    net = (ens, stacked)
    trainable, frozen = eqx.partition(net, trainable_filter(net))
    opt_state = optimizer.init(trainable)
    start, history, member_history = 0, [], []
    if resume:
        found = core.load_latest(
            run_dir, lambda folder, state: _read(folder, trainable, frozen, opt_state),
            lambda state, folder: core.check_resumed_ensemble(state, seed, steps, E, folder))
        if found is not None:
            (trainable, frozen, opt_state), state, _ = found
            start, history = state["step"], [float(v) for v in state["history"]]
            member_history = [[float(v) for v in row] for row in state["member_history"]]
    if mesh is not None:
        trainable, frozen, opt_state = shard_members((trainable, frozen, opt_state), mesh)

    dtype = ens.model.W_rec.dtype
    base_key = jax.random.key(seed)
    n_outputs = ens.spec.hidden_size if readouts is None else readouts[0].readout_spec.out_features
    carry = {"trainable": trainable, "opt_state": opt_state}

    def do_step(i: int) -> float:
        x, y, m = _batch(sample, batch_size, seed, i, loss, n_outputs, dtype)
        key = jax.random.fold_in(base_key, i)
        if mesh is not None:
            x, y, m = (None if a is None else shard_batch(a, mesh, per_member=False)
                       for a in (x, y, m))
            key = _replicate(key, mesh)
        carry["trainable"], carry["opt_state"], values = _update_ensemble(
            carry["trainable"], frozen, carry["opt_state"], x, y, m,
            key, optimizer, loss, noise, regularizer)
        values = np.asarray(_host(values))
        member_history.append([float(v) for v in values])
        return float(values.sum())

    def members_now():
        trained, out = eqx.combine(_host(carry["trainable"]), _host(frozen))
        outs = ([None] * E if out is None
                else [jax.tree.map(lambda a, e=e: a[e], out) for e in range(E)])
        return trained, outs

    def save(step: int, history: list) -> str:
        trained, outs = members_now()
        writers = {}
        for e, (member, out) in enumerate(zip(trained.members(), outs)):
            ckpt = member.to_checkpoint()
            writers[core.member_network_name(e)] = (ckpt if out is None
                                                    else out.add_to_checkpoint(ckpt)).save
        arrays = {f"param_{k:05d}": np.asarray(a)
                  for k, a in enumerate(_arrays(_host(carry["trainable"])))}
        arrays.update({f"frozen_{k:05d}": np.asarray(a) for k, a in enumerate(_arrays(_host(frozen)))})
        arrays.update({f"opt_{k:05d}": np.asarray(a)
                       for k, a in enumerate(_arrays(_host(carry["opt_state"])))})

        def write_training(path):
            with open(path, "wb") as f:
                np.savez(f, **arrays)

        writers[TRAINING] = write_training
        return core.save_checkpoint(
            run_dir, step, writers,
            core.ensemble_state(step=step, seed=seed, backend="jax", history=history,
                                member_history=member_history, members=E),
            keep)

    loop = {"checkpoint_every": checkpoint_every, "callback": callback,
            "callback_every": callback_every, "progress": progress}
    last = core.run_loop(start=start, steps=steps, seed=seed, do_step=do_step, save=save,
                         history=history, run_dir=run_dir, **loop)
    if mesh is not None:  # the trained arrays stay where they trained
        trained, out = eqx.combine(carry["trainable"], frozen)
        outs = (None if out is None
                else [jax.tree.map(lambda a, e=e: a[e] if eqx.is_array(a) else a, _host(out))
                      for e in range(E)])
        return TrainResult(trained, outs, history, len(history), run_dir, last,
                           member_history=np.asarray(member_history, np.float64).reshape(-1, E))
    trained, outs = members_now()
    return TrainResult(trained, None if readouts is None else outs, history, len(history), run_dir,
                       last, member_history=np.asarray(member_history, np.float64).reshape(-1, E))

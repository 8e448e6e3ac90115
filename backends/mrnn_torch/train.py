"""Resumable training of an mrnn_torch model (and a readout) on a task.

::

    from mrnn_core.tasks import make_task
    from mrnn_torch import Readout, mRNN
    from mrnn_torch.train import train

    task = make_task("flip_flop", steps=100)
    readout = Readout(model, "ctx", task.n_outputs)
    result = train(model, task, readout=readout, steps=2000, batch_size=32,
                   run_dir="runs/ff", checkpoint_every=100)
    # killed? the same call with resume=True continues from the newest checkpoint

The run folder, checkpoint layout and fallback rules are
:mod:`mrnn_core.training`'s, shared with ``mrnn_jax.train``.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
from torch.nn import functional as F

from mrnn_core import Checkpoint, MRNNConfigError
from mrnn_core import training as core
from mrnn_core.training import TrainResult as TrainResult

from . import losses
from ._base import mRNNBase
from .ensemble import Ensemble
from .readout import Readout

__all__ = ["train", "TrainResult"]

TRAINING = "training.pt"


def _batch(sample, batch_size: int, seed: int, step: int, loss: str, device, dtype):
    """Step ``step``'s batch: its numpy targets and the tensors ``(inputs, targets, mask)``
    on ``device``; class labels (a cross-entropy's targets) stay integers."""
    inputs, targets, mask = core.check_batch(sample(batch_size, core.step_rng(seed, step)), loss)

    def tensor(a, kind=dtype):
        return None if a is None else torch.as_tensor(a, device=device, dtype=kind)

    labels = torch.long if loss == "cross_entropy" else dtype
    return targets, tensor(inputs), tensor(targets, labels), tensor(mask)


def _check_model(model, readout):
    if not isinstance(model, mRNNBase):
        raise MRNNConfigError(
            f"train: model: expected an mrnn_torch model (mRNN or ElmanmRNN), got {type(model).__name__}")
    model._check_finalised("both", "a training step")
    if readout is not None and not isinstance(readout, Readout):
        raise MRNNConfigError(
            f"train: readout: expected an mrnn_torch.Readout or None, got {type(readout).__name__}")


def _make_optimizer(optimizer, params, lr):
    if optimizer is None:
        return torch.optim.Adam(params, lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer):
        made = optimizer(params)
        if isinstance(made, torch.optim.Optimizer):
            return made
        raise MRNNConfigError(
            f"train: optimizer: a factory must return a torch.optim.Optimizer, got {type(made).__name__}")
    raise MRNNConfigError(
        f"train: optimizer: expected a torch.optim.Optimizer, a factory params -> optimizer, or None "
        f"(Adam with lr), got {type(optimizer).__name__}")


def _network_checkpoint(model, readout) -> Checkpoint:
    ckpt = model.to_checkpoint()
    return ckpt if readout is None else readout.add_to_checkpoint(ckpt)


def _restore(model, readout, optimizer, folder):
    """Load a checkpoint folder's training state into the model, readout and optimiser in place.

    ``training.pt`` holds their ``state_dict``s (read with ``weights_only=True``:
    tensors and plain data, never arbitrary objects); ``network.npz`` is the
    portable copy of the network for analysis and the other backend.
    """
    state = torch.load(os.path.join(folder, TRAINING), map_location=model.device, weights_only=True)
    if not isinstance(state, dict) or set(state) != {"model", "readout", "optimizer"}:
        raise MRNNConfigError(f"checkpoint {folder!r}: {TRAINING} is not an mrnn_torch training state")
    if (state["readout"] is None) != (readout is None):
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: the run was {'without' if state['readout'] is None else 'with'} "
            f"a readout, train got {'none' if readout is None else 'one'}")
    backup = [model.state_dict(), None if readout is None else readout.state_dict(),
              optimizer.state_dict()]
    backup = [None if b is None else _copy(b) for b in backup]
    try:
        model.load_state_dict(state["model"])
        if readout is not None:
            readout.load_state_dict(state["readout"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        model.load_state_dict(backup[0])
        if readout is not None:
            readout.load_state_dict(backup[1])
        optimizer.load_state_dict(backup[2])
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: its state does not fit this run's model, readout or "
            f"optimizer: {err}") from None


def _copy(state):
    """A deep copy of a state_dict's tensors (``state_dict`` returns views of the live ones)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return type(state)((k, _copy(v)) for k, v in state.items())
    if isinstance(state, (list, tuple)):
        return type(state)(_copy(v) for v in state)
    return state


@contextlib.contextmanager
def _step_rng(device: torch.device, seed: int):
    """torch's RNG seeded for one step, the caller's RNG state restored afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


def _loss(outputs, targets, mask, loss):
    if loss == "mse":
        return losses.mse(outputs, targets, mask)
    per_step = F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1),
                               reduction="none").reshape(targets.shape)
    if mask is None:
        return per_step.mean()
    return (mask * per_step).sum() / torch.clamp(mask.sum(), min=1.0)


def train(model, task, *, optimizer=None, lr: float = 1e-3, steps: int, batch_size: int,
          readout=None, run_dir=None, checkpoint_every: int = 100, keep: int = 3,
          resume: bool = False, seed: int = 0, progress: bool = True, callback=None,
          callback_every: int | None = None, loss: str = "mse", noise: bool = True,
          regularizer=None) -> TrainResult:
    """Train ``model`` (and ``readout``) on ``task`` for ``steps`` steps, checkpointing as it goes.

    Each step draws ``batch_size`` trials with ``task.sample(batch_size, rng)``
    (``rng`` seeded from ``(seed, step)``), runs the model from its initial
    condition (noise, if ``noise``, from torch's RNG seeded the same way; the
    caller's RNG state is left as it was), reads out (``readout(hs)``, or
    ``hs`` itself without a readout), and takes one optimiser step on the loss:

    - ``"mse"``: :func:`mrnn_torch.losses.mse` against ``[B, T, O]`` targets
      (and the task's ``[B, T]`` mask, if any);
    - ``"cross_entropy"``: softmax cross-entropy of the ``[B, T, C]``
      outputs against ``[B, T]`` class labels (neurogym tasks), mask-weighted.

    **Arguments:**

    - `model`: an mrnn_torch ``mRNN`` or ``ElmanmRNN`` (finalised); trained in place.
    - `task`: an object with ``sample(batch_size, rng)`` returning a
      :class:`mrnn_core.tasks.Batch` (:func:`mrnn_core.tasks.make_task`).
      Arrays are cast to the model's dtype.
    - `optimizer`: a ``torch.optim.Optimizer`` over the model's (and
      readout's) parameters, a factory ``params -> optimizer``, or ``None``
      (``torch.optim.Adam(params, lr=lr)``).
    - `steps`: the total number of steps of the run (a resumed run counts
      the steps done before); `batch_size`: trials per step.
    - `readout`: an :class:`mrnn_torch.Readout` or ``None``.
    - `run_dir`: the run's folder (checkpoints and ``history.json``); ``None``
      keeps no checkpoints.
    - `checkpoint_every`, `keep`: a checkpoint every that many steps (and
      after the last), keeping the newest `keep`.
    - `resume`: continue the run in `run_dir` from its newest complete
      checkpoint (an older one, with a warning, when the newest is corrupt
      or partial); a fresh run when it has none. Without it, a `run_dir`
      that holds checkpoints is refused.
    - `seed`: seeds every step's batch and noise (a resumed run needs the same).
    - `progress`: a tqdm bar with the loss and steps/s on stderr.
    - `callback`: ``callback(step, loss, checkpoint_dir)`` every
      `callback_every` steps (default `checkpoint_every`) and after the
      last, right after that step's checkpoint is complete
      (``checkpoint_dir`` ``None`` when the step wrote none).
    - `loss`: ``"mse"`` or ``"cross_entropy"``.
    - `noise`: run the model with its noise (``noise_level_act``, ``noise_level_inp``).
    - `regularizer`: ``regularizer(hs)`` of the rates ``[B, T, H]``, a scalar
      added to the loss (e.g. ``lambda hs: 1e-3 * losses.rate_l2(hs)``), or ``None``.

    **Ensembles:** `model` may be an :class:`mrnn_torch.Ensemble` of ``E``
    members, with `readout` ``None`` or a list of ``E`` readouts (one per
    member). The step's loss is the sum of the members' own losses (each as
    above, `regularizer` included, on the member's rates ``hs[e]``), and one
    optimiser over the ensemble's (and readouts') parameters takes the step.
    Members share no parameter, so each gets exactly the gradient it would
    get alone; Adam, SGD and every per-parameter ``torch.optim`` optimiser
    then train each member exactly as if alone (one that looks across
    parameters, such as LBFGS, would couple them). Every member sees the
    same trials and the same noise draws, those of step ``(seed, i)``, so
    member ``e`` ends as ``train(ens.members()[e], task, seed=seed, ...)``
    would (to rounding: the batched matmul may sum in another order). A
    checkpoint holds one network checkpoint per member, ``network_<e>.npz``
    (``Ensemble.from_checkpoints`` loads them), the ensemble's, readouts'
    and optimiser's state, and the loss history of every member.

    **Returns:** :class:`mrnn_core.training.TrainResult` (``model`` and
    ``readout`` are the objects passed in, trained; an ensemble's run also
    sets ``member_history`` ``[steps, E]``, and ``history`` holds the sums).
    """
    callback_every = core.check_settings(
        steps=steps, batch_size=batch_size, checkpoint_every=checkpoint_every, keep=keep,
        seed=seed, callback_every=callback_every, loss=loss, run_dir=run_dir, resume=resume,
        lr=lr, callback=callback)
    if isinstance(model, Ensemble):
        return _train_ensemble(
            model, task, optimizer=optimizer, lr=lr, steps=steps, batch_size=batch_size,
            readout=readout, run_dir=run_dir, checkpoint_every=checkpoint_every, keep=keep,
            resume=resume, seed=seed, progress=progress, callback=callback,
            callback_every=callback_every, loss=loss, noise=noise, regularizer=regularizer)
    _check_model(model, readout)
    sample = core.check_task(task, loss)
    if regularizer is not None and not callable(regularizer):
        raise MRNNConfigError(f"train: regularizer must be callable(hs) -> scalar, got {regularizer!r}")
    params = list(model.parameters()) + ([] if readout is None else list(readout.parameters()))
    optimizer = _make_optimizer(optimizer, params, lr)
    run_dir = core.prepare_run_dir(run_dir, resume)

    start, history = 0, []
    if resume:
        found = core.load_latest(
            run_dir, lambda folder, state: _restore(model, readout, optimizer, folder),
            lambda state, folder: core.check_resumed_state(state, seed, steps, folder))
        if found is not None:
            _, state, _ = found
            start, history = state["step"], [float(v) for v in state["history"]]

    device, dtype = model.device, model._dtype
    kind = model.dynamics.kind

    def do_step(i: int) -> float:
        targets, x, y, m = _batch(sample, batch_size, seed, i, loss, device, dtype)
        with _step_rng(device, core.step_seed(seed, i)):
            if kind == "leaky":
                x0, h0 = model.batched_initial_condition(x.shape[0])
                _, hs = model(x, x0, h0, noise=noise)
            else:
                hs = model(x, model.batched_initial_condition(x.shape[0]), noise=noise)
            outputs = hs if readout is None else readout(hs)
            if loss == "cross_entropy":
                core.check_labels(outputs.shape[-1], targets)
            value = _loss(outputs, y, m, loss)
            if regularizer is not None:
                value = value + regularizer(hs)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        return float(value.item())

    def save(step: int, history: list) -> str:
        ckpt = _network_checkpoint(model, readout)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "readout": None if readout is None else readout.state_dict()}
        return core.save_checkpoint(
            run_dir, step,
            {core.NETWORK: ckpt.save, TRAINING: lambda path: torch.save(state, path)},
            core.network_state(step=step, seed=seed, backend="torch", history=history), keep)

    loop = {"checkpoint_every": checkpoint_every, "callback": callback,
            "callback_every": callback_every, "progress": progress}
    last = core.run_loop(start=start, steps=steps, seed=seed, do_step=do_step, save=save,
                         history=history, run_dir=run_dir, **loop)
    return TrainResult(model, readout, history, len(history), run_dir, last)


# ----------------------------------------------------------------------------- ensembles

def _restore_ensemble(ens, readouts, optimizer, folder):
    """:func:`_restore` for an ensemble: its, its readouts' and the optimiser's state, in place."""
    state = torch.load(os.path.join(folder, TRAINING), map_location=ens.networks[0].device,
                       weights_only=True)
    if not isinstance(state, dict) or set(state) != {"ensemble", "readouts", "optimizer"}:
        raise MRNNConfigError(
            f"checkpoint {folder!r}: {TRAINING} is not an mrnn_torch ensemble training state")
    if (state["readouts"] is None) != (readouts is None):
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: the run was {'without' if state['readouts'] is None else 'with'} "
            f"readouts, train got {'none' if readouts is None else 'them'}")
    modules = [ens] + ([] if readouts is None else readouts)
    stored = [state["ensemble"]] + ([] if readouts is None else list(state["readouts"]))
    if len(stored) != len(modules):
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: {len(stored) - 1} readouts stored, train got {len(modules) - 1}")
    backup = [_copy(m.state_dict()) for m in modules], _copy(optimizer.state_dict())
    try:
        for m, s in zip(modules, stored):
            m.load_state_dict(s)
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        for m, s in zip(modules, backup[0]):
            m.load_state_dict(s)
        optimizer.load_state_dict(backup[1])
        raise core.RunMismatchError(
            f"checkpoint {folder!r}: its state does not fit this run's ensemble, readouts or "
            f"optimizer: {err}") from None


def _train_ensemble(ens, task, *, optimizer, lr, steps, batch_size, readout, run_dir,
                    checkpoint_every, keep, resume, seed, progress, callback, callback_every,
                    loss, noise, regularizer) -> TrainResult:
    """:func:`train` for an :class:`Ensemble` (its docstring's "Ensembles")."""
    E = len(ens)
    readouts = core.check_member_readouts(readout, E, Readout, "mrnn_torch.Readout")
    sample = core.check_task(task, loss)
    if regularizer is not None and not callable(regularizer):
        raise MRNNConfigError(f"train: regularizer must be callable(hs) -> scalar, got {regularizer!r}")
    params = list(ens.parameters()) + [p for r in readouts or () for p in r.parameters()]
    optimizer = _make_optimizer(optimizer, params, lr)
    run_dir = core.prepare_run_dir(run_dir, resume)

    start, history, member_history = 0, [], []
    if resume:
        found = core.load_latest(
            run_dir, lambda folder, state: _restore_ensemble(ens, readouts, optimizer, folder),
            lambda state, folder: core.check_resumed_ensemble(state, seed, steps, E, folder))
        if found is not None:
            _, state, _ = found
            start, history = state["step"], [float(v) for v in state["history"]]
            member_history = [[float(v) for v in row] for row in state["member_history"]]

    members = ens.members()
    first = members[0]
    device, dtype = first.device, first._dtype

    def do_step(i: int) -> float:
        targets, x, y, m = _batch(sample, batch_size, seed, i, loss, device, dtype)
        with _step_rng(device, core.step_seed(seed, i)):
            init = ens.batched_initial_condition(x.shape[0])
            eps = {}
            if noise:
                # the draws a single member makes with this step's seed, shared by all
                eps_x, eps_u = first._noise_draws(x, init[0][0] if ens.kind == "leaky" else init[0],
                                                  None)
                eps = {"eps_x": eps_x.expand(E, *eps_x.shape),
                       "eps_u": eps_u.expand(E, *eps_u.shape)}
            if ens.kind == "leaky":
                _, hs = ens(x, *init, **eps)
            else:
                hs = ens(x, h0=init, **eps)
            own = []
            for e in range(E):
                outputs = hs[e] if readouts is None else readouts[e](hs[e])
                if loss == "cross_entropy":
                    core.check_labels(outputs.shape[-1], targets)
                value = _loss(outputs, y, m, loss)
                if regularizer is not None:
                    value = value + regularizer(hs[e])
                own.append(value)
            total = torch.stack(own).sum()
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        member_history.append([float(v) for v in torch.stack(own).detach().cpu().tolist()])
        return float(total.item())

    def save(step: int, history: list) -> str:
        ckpts = [_network_checkpoint(mm, None if readouts is None else readouts[e])
                 for e, mm in enumerate(members)]
        state = {"ensemble": ens.state_dict(), "optimizer": optimizer.state_dict(),
                 "readouts": None if readouts is None else [r.state_dict() for r in readouts]}
        writers = {core.member_network_name(e): c.save for e, c in enumerate(ckpts)}
        writers[TRAINING] = lambda path: torch.save(state, path)
        return core.save_checkpoint(
            run_dir, step, writers,
            core.ensemble_state(step=step, seed=seed, backend="torch", history=history,
                                member_history=member_history, members=E),
            keep)

    loop = {"checkpoint_every": checkpoint_every, "callback": callback,
            "callback_every": callback_every, "progress": progress}
    last = core.run_loop(start=start, steps=steps, seed=seed, do_step=do_step, save=save,
                         history=history, run_dir=run_dir, **loop)
    return TrainResult(ens, readouts, history, len(history), run_dir, last,
                       member_history=np.asarray(member_history, dtype=np.float64).reshape(-1, E))

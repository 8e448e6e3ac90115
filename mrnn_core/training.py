"""The backend-neutral half of a resumable training run: its folder, checkpoints and history.

``mrnn_torch.train.train`` and ``mrnn_jax.train.train`` share this. A run
folder looks like::

    run_dir/
      history.json                    losses so far (rewritten at each checkpoint)
      checkpoints/
        step-000000100/               one complete checkpoint per folder
          network.npz                 mrnn_core.Checkpoint: the network and its readout
                                      (portable: analysis, the other backend, sweeps)
          training.<ext>              what resuming needs, exactly: the trained arrays
                                      and the optimiser's state (the backend's format)
          state.json                  step, seed, loss history, sha256 of every file
        step-000000200/
        .step-000000300.tmp-x1y2/     a checkpoint being written (never read)

An ensemble's run (``train(ensemble, task, ...)``) writes ``network_<e>.npz``
(member ``e``'s network and readout; :func:`member_network_paths`) in place
of ``network.npz``; its ``state.json`` adds ``members`` (``E``) and
``member_history`` (``[step][E]``, each member's own loss; ``history``
holds their sums), and ``history.json`` adds ``member_loss``.

A checkpoint is written into a hidden temporary folder (each file through
:func:`mrnn_core.files.atomic_write`, ``state.json`` last, holding a sha256
of every other file) and only then renamed to ``step-<step>``; so a
``step-*`` folder is complete unless its files were damaged afterwards,
which the digests catch. :func:`load_latest` reads the newest checkpoint
that verifies and loads, warning (:class:`CheckpointFallbackWarning`) about
each newer one it skips.

Randomness is a function of ``(seed, step)`` (:func:`step_rng`,
:func:`step_seed`), so a checkpoint's RNG state is its seed and step: a run
resumed from step ``k`` draws exactly what an uninterrupted run draws from
step ``k`` on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import MRNNConfigError
from .files import _fsync_dir, atomic_write

CHECKPOINTS = "checkpoints"
HISTORY = "history.json"
STATE = "state.json"
NETWORK = "network.npz"
STATE_VERSION = 1
LOSSES = ("mse", "cross_entropy")
_NAME = re.compile(r"^step-(\d{9,})$")


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint of a run was corrupt or partial; an older one is used."""


class RunMismatchError(MRNNConfigError):
    """A checkpoint is intact but does not fit the resuming call (another model,
    readout, optimiser or seed): an error, never a reason to fall back."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run hands back.

    **Fields:**

    - `model`, `readout`: the trained network and readout (``readout`` is
      ``None`` when the run had none). In torch these are the objects passed
      in, trained in place; in JAX new pytrees.
    - `history`: the loss of every step, from step 1 (resumed runs included).
    - `step`: the number of steps done.
    - `run_dir`: the run's folder (``None`` when it kept no checkpoints).
    - `last_checkpoint`: the folder of the newest checkpoint, or ``None``.
    - `member_history`: for an ensemble, each member's own loss at every
      step, a ``[step, E]`` float64 array (``history`` is then their sum);
      ``None`` for a single model. An ensemble's ``readout`` is the list of
      the members' readouts (or ``None``).
    """

    model: Any
    readout: Any
    history: list = field(default_factory=list)
    step: int = 0
    run_dir: str | None = None
    last_checkpoint: str | None = None
    member_history: Any = None


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MRNNConfigError(f"train: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_settings(*, steps, batch_size, checkpoint_every, keep, seed, callback_every,
                   loss, run_dir, resume, lr, callback):
    """Validate :func:`train`'s plain arguments; return ``callback_every`` resolved.

    Shared by both backends, so both reject the same settings with the same message.
    """
    _positive_int("steps", steps, 0)
    _positive_int("batch_size", batch_size)
    _positive_int("checkpoint_every", checkpoint_every)
    _positive_int("keep", keep)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MRNNConfigError(f"train: seed must be an integer >= 0, got {seed!r}")
    if loss not in LOSSES:
        raise MRNNConfigError(f"train: loss must be one of {', '.join(map(repr, LOSSES))}, got {loss!r}")
    if resume and run_dir is None:
        raise MRNNConfigError("train: resume=True needs run_dir (the folder of the run to continue), got None")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (lr > 0 and math.isfinite(lr)):
        raise MRNNConfigError(f"train: lr must be a finite number > 0, got {lr!r}")
    if callback is not None and not callable(callback):
        raise MRNNConfigError(f"train: callback must be callable(step, loss, checkpoint_dir), got {callback!r}")
    return checkpoint_every if callback_every is None else _positive_int("callback_every", callback_every)


def check_task(task, loss: str):
    """The task's ``sample`` method, or an error saying what a task must have."""
    sample = getattr(task, "sample", None)
    if not callable(sample):
        raise MRNNConfigError(
            f"train: task: expected a task with sample(batch_size, rng) (mrnn_core.tasks.make_task), "
            f"got {type(task).__name__}")
    task_loss = getattr(task, "loss", None)
    if task_loss in LOSSES and task_loss != loss:
        raise MRNNConfigError(
            f"train: loss={loss!r} does not fit the task {getattr(task, 'name', task)!r}, whose "
            f"targets need loss={task_loss!r}")
    return sample


def step_seed(seed: int, step: int) -> int:
    """A 63-bit integer seed for step ``step`` (0-based) of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, step]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The numpy Generator that draws step ``step``'s batch (0-based)."""
    return np.random.default_rng([seed, step])


def check_batch(batch, loss: str):
    """``(inputs, targets, mask)`` of a task's batch, checked against each other and the loss."""
    inputs, targets, mask = (np.asarray(batch.inputs), np.asarray(batch.targets),
                             None if getattr(batch, "mask", None) is None else np.asarray(batch.mask))
    if inputs.ndim != 3:
        raise MRNNConfigError(f"task batch: inputs: expected [B, T, I], got shape {inputs.shape}")
    if loss == "cross_entropy":
        if targets.shape != inputs.shape[:2] or not np.issubdtype(targets.dtype, np.integer):
            raise MRNNConfigError(
                f"task batch: loss 'cross_entropy' needs integer class labels [B, T] = "
                f"{inputs.shape[:2]}, got targets of shape {targets.shape} and dtype {targets.dtype}")
    elif targets.ndim != 3 or targets.shape[:2] != inputs.shape[:2]:
        raise MRNNConfigError(
            f"task batch: loss 'mse' needs targets [B, T, O] with [B, T] = {inputs.shape[:2]}, "
            f"got shape {targets.shape}")
    if mask is not None and mask.shape != inputs.shape[:2]:
        raise MRNNConfigError(f"task batch: mask: expected [B, T] = {inputs.shape[:2]}, got {mask.shape}")
    return inputs, targets, mask


def check_labels(n_classes: int, labels: np.ndarray) -> None:
    """Class labels must lie in ``[0, n_classes)``: the readout has ``n_classes`` outputs."""
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise MRNNConfigError(
            f"task batch: class labels must lie in [0, {n_classes}) for outputs with {n_classes} "
            f"features, got labels from {labels.min()} to {labels.max()}")


# ----------------------------------------------------------------------------- checkpoints

def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}"


def checkpoints_folder(run_dir) -> str:
    return os.path.join(os.fspath(run_dir), CHECKPOINTS)


def list_checkpoints(run_dir) -> list[tuple[int, str]]:
    """``(step, folder)`` of every ``step-*`` checkpoint folder, newest first (unverified)."""
    folder = checkpoints_folder(run_dir)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), os.path.join(folder, n)) for n in names if (m := _NAME.match(n))]
    return sorted(found, reverse=True)


def _digest(path: str, sync: bool = False) -> str:
    """sha256 of a file; with `sync`, the file is fsynced too (its writer may not have)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest()


def write_checkpoint(run_dir, step: int, writers: Mapping[str, Callable], state: Mapping,
                     keep: int) -> str:
    """Write checkpoint ``step`` of a run and prune to the newest ``keep``; return its folder.

    **Arguments:**

    - `writers`: file name -> ``write(path)`` writing that file at ``path``
      (inside the temporary folder): ``network.npz``, the optimiser's state, ...
    - `state`: JSON-serialisable facts of the run (step, seed, history);
      ``files`` (name -> sha256) is added.
    """
    folder = checkpoints_folder(run_dir)
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, checkpoint_name(step))
    tmp = tempfile.mkdtemp(prefix=f".{checkpoint_name(step)}.tmp-", dir=folder)
    try:
        digests = {}
        for name, write in writers.items():
            path = os.path.join(tmp, name)
            write(path)
            digests[name] = _digest(path, sync=True)
        with atomic_write(os.path.join(tmp, STATE), "w", encoding="utf-8") as f:
            json.dump({"version": STATE_VERSION, **state, "files": digests}, f)
        if os.path.exists(final):
            # Rewriting a step after a fallback: the old folder goes aside first
            # (a directory cannot be renamed over a non-empty one).
            aside = tempfile.mkdtemp(prefix=f".{checkpoint_name(step)}.old-", dir=folder)
            os.replace(final, os.path.join(aside, "old"))
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(folder)
    prune(run_dir, keep)
    return final


def prune(run_dir, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoint folders, and stale temporary folders."""
    folder = checkpoints_folder(run_dir)
    for _, path in list_checkpoints(run_dir)[keep:]:
        shutil.rmtree(path, ignore_errors=True)
    for name in os.listdir(folder):
        if name.startswith(".step-") and (".tmp-" in name or ".old-" in name):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def read_state(checkpoint_dir) -> dict:
    """The verified ``state.json`` of a checkpoint folder, or an error saying what is wrong.

    Every file the state lists must exist with its recorded sha256.
    """
    checkpoint_dir = os.fspath(checkpoint_dir)
    path = os.path.join(checkpoint_dir, STATE)
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        raise MRNNConfigError(f"checkpoint {checkpoint_dir!r}: no {STATE} (a partial checkpoint)") from None
    except (OSError, ValueError) as err:
        raise MRNNConfigError(f"checkpoint {checkpoint_dir!r}: {STATE} is unreadable: {err}") from None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict) or "step" not in state:
        raise MRNNConfigError(f"checkpoint {checkpoint_dir!r}: {STATE} lacks 'step' or 'files'")
    if state.get("version") != STATE_VERSION:
        raise MRNNConfigError(
            f"checkpoint {checkpoint_dir!r}: {STATE} version {state.get('version')!r}, expected "
            f"{STATE_VERSION}")
    for name, digest in state["files"].items():
        file = os.path.join(checkpoint_dir, name)
        if not os.path.isfile(file):
            raise MRNNConfigError(f"checkpoint {checkpoint_dir!r}: {name} is missing")
        if _digest(file) != digest:
            raise MRNNConfigError(f"checkpoint {checkpoint_dir!r}: {name} is corrupt (sha256 differs "
                                  f"from the one recorded when it was written)")
    return state


def load_latest(run_dir, read: Callable[[str, dict], Any],
                check: Callable[[dict, str], None] | None = None):
    """The newest checkpoint of ``run_dir`` that verifies and loads.

    **Arguments:** `read(folder, state)` loads a verified checkpoint (raising
    on failure); `check(state, folder)`, called before it, raises when the
    caller's settings do not fit the run. A :class:`RunMismatchError` from
    either propagates: a wrong setting is not a damaged checkpoint.

    **Returns:** ``(read's result, state, folder)``, or ``None`` when the run
    has no checkpoint. ``history.json`` is rewritten from the checkpoint
    found. Each newer checkpoint that fails is skipped with a
    :class:`CheckpointFallbackWarning` naming it and why; when every one
    fails, :class:`MRNNConfigError` lists them.
    """
    failures = []
    for _, folder in list_checkpoints(run_dir):
        try:
            state = read_state(folder)
        except MRNNConfigError as err:
            failures.append(f"{folder}: {err}")
            warnings.warn(f"checkpoint {folder} cannot be used ({err}); falling back to the "
                          f"previous one", CheckpointFallbackWarning, stacklevel=3)
            continue
        if check is not None:
            check(state, folder)
        try:
            loaded = read(folder, state)
        except RunMismatchError:
            raise
        except Exception as err:  # any failure to read means: try the previous checkpoint
            failures.append(f"{folder}: {err}")
            warnings.warn(f"checkpoint {folder} cannot be used ({err}); falling back to the "
                          f"previous one", CheckpointFallbackWarning, stacklevel=3)
            continue
        # A run killed between a checkpoint and its history.json (or resumed
        # from an older checkpoint) gets the history of what it resumes from.
        write_history(run_dir, state["history"], state["step"], state.get("member_history"))
        return loaded, state, folder
    if failures:
        raise MRNNConfigError(f"resume: no usable checkpoint in {os.fspath(run_dir)!r}; "
                              + "; ".join(failures))
    return None


def write_history(run_dir, history, step: int, member_history=None) -> None:
    """``run_dir/history.json``: ``{"step": step, "loss": [...]}``, written atomically.

    An ensemble's run adds ``"member_loss"``: ``[step][E]``, each member's own loss
    (``"loss"`` is their sum).
    """
    record = {"step": step, "loss": [float(v) for v in history]}
    if member_history is not None:
        record["member_loss"] = [[float(v) for v in row] for row in member_history]
    with atomic_write(os.path.join(os.fspath(run_dir), HISTORY), "w", encoding="utf-8") as f:
        json.dump(record, f)


def read_history(run_dir) -> list[float]:
    """The losses ``run_dir/history.json`` holds (those up to its last checkpoint)."""
    with open(os.path.join(os.fspath(run_dir), HISTORY), encoding="utf-8") as f:
        return list(json.load(f)["loss"])


def check_resumed_state(state: dict, seed: int, steps: int, folder: str) -> None:
    """A resumed run must keep the seed it started with and not have passed ``steps``."""
    if state.get("members") is not None:
        raise RunMismatchError(
            f"resume: the run in {folder!r} trained an ensemble of {state['members']} members; "
            f"resuming it needs that Ensemble, train got a single model")
    _check_seed_and_steps(state, seed, steps, folder)


def _check_seed_and_steps(state: dict, seed: int, steps: int, folder: str) -> None:
    if state.get("seed") != seed:
        raise RunMismatchError(
            f"resume: the run in {folder!r} was started with seed={state.get('seed')!r}; resuming "
            f"with seed={seed!r} would not continue it (pass the same seed)")
    if state["step"] > steps:
        raise RunMismatchError(
            f"resume: checkpoint {folder!r} is at step {state['step']}, beyond steps={steps}")
    if len(state.get("history", ())) != state["step"]:
        raise MRNNConfigError(
            f"checkpoint {folder!r}: history holds {len(state.get('history', ()))} losses for "
            f"step {state['step']}")


# ----------------------------------------------------------------------------- ensembles

def member_network_name(e: int) -> str:
    """The file of member ``e``'s network checkpoint in an ensemble's checkpoint folder."""
    return f"network_{e}.npz"


def member_network_paths(checkpoint_dir, members: int) -> list[str]:
    """The ``members`` network checkpoints of an ensemble's checkpoint folder, in member order
    (what ``Ensemble.from_checkpoints`` takes)."""
    return [os.path.join(os.fspath(checkpoint_dir), member_network_name(e)) for e in range(members)]


def check_member_readouts(readout, members: int, readout_type: type, type_name: str,
                          distinct: bool = True):
    """An ensemble's readouts: ``None``, or a list of ``members`` ``readout_type``, distinct
    objects when `distinct` (torch modules are trained in place; JAX pytrees are not)."""
    if readout is None:
        return None
    if isinstance(readout, readout_type) or isinstance(readout, (str, bytes)) or not isinstance(
            readout, (list, tuple)):
        raise MRNNConfigError(
            f"train: readout: an ensemble of {members} members takes a list of {members} "
            f"{type_name} (one per member) or None, got {type(readout).__name__}")
    if len(readout) != members:
        raise MRNNConfigError(
            f"train: readout: expected {members} readouts, one per member, got {len(readout)}")
    seen = {}
    for e, r in enumerate(readout):
        if not isinstance(r, readout_type):
            raise MRNNConfigError(
                f"train: readout[{e}]: expected an {type_name}, got {type(r).__name__}")
        if distinct and id(r) in seen:
            raise MRNNConfigError(
                f"train: readout[{e}] is the same object as readout[{seen[id(r)]}]; every "
                f"member needs its own readout")
        seen[id(r)] = e
    return list(readout)


def check_resumed_ensemble(state: dict, seed: int, steps: int, members: int, folder: str) -> None:
    """:func:`check_resumed_state` for an ensemble of ``members`` networks."""
    if state.get("members") != members:
        what = ("a single model" if state.get("members") is None
                else f"an ensemble of {state['members']} members")
        raise RunMismatchError(
            f"resume: the run in {folder!r} trained {what}; train got an ensemble of "
            f"{members} members")
    _check_seed_and_steps(state, seed, steps, folder)
    rows = state.get("member_history")
    if (not isinstance(rows, list) or len(rows) != state["step"]
            or any(not isinstance(r, list) or len(r) != members for r in rows)):
        raise MRNNConfigError(
            f"checkpoint {folder!r}: member_history is not [step, E] = [{state['step']}, "
            f"{members}]")


def network_state(*, step: int, seed: int, backend: str, history: list) -> dict:
    """The ``state.json`` facts of one network's checkpoint."""
    return {"step": step, "seed": seed, "backend": backend, "history": list(history),
            "rng": {"kind": "(seed, step)", "seed": seed, "next_step": step}}


def ensemble_state(*, step: int, seed: int, backend: str, history: list, member_history: list,
                   members: int) -> dict:
    """The ``state.json`` facts of an ensemble's checkpoint."""
    return {**network_state(step=step, seed=seed, backend=backend, history=history),
            "members": members,
            "member_history": [list(map(float, r)) for r in member_history]}


def save_checkpoint(run_dir, step: int, writers: Mapping[str, Callable], state: Mapping,
                    keep: int) -> str:
    """:func:`write_checkpoint`, then ``history.json`` from the state's history
    (and member history); returns the checkpoint's folder."""
    folder = write_checkpoint(run_dir, step, writers, state, keep)
    write_history(run_dir, state["history"], step, state.get("member_history"))
    return folder


def prepare_run_dir(run_dir, resume: bool) -> str | None:
    """Create ``run_dir``; a fresh run refuses a folder that already holds checkpoints."""
    if run_dir is None:
        return None
    run_dir = os.fspath(run_dir)
    if not resume and list_checkpoints(run_dir):
        raise MRNNConfigError(
            f"train: run_dir {run_dir!r} already holds checkpoints; pass resume=True to continue "
            f"that run, or a new folder")
    os.makedirs(checkpoints_folder(run_dir), exist_ok=True)
    return run_dir


class _LogLines:
    """A stream for tqdm where stderr is not a terminal: each redraw becomes one line.

    tqdm redraws in place with carriage returns, which a log file keeps as
    one ever-growing line; here every redraw ends with a newline instead.
    """

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "")
        if text.strip():
            self.stream.write(text if text.endswith("\n") else text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int, initial: int, enabled: bool, desc: str = "training"):
    """A tqdm bar over the steps (steps/s shown by tqdm, loss as a postfix).

    Where stderr is not a terminal (a log file, a cluster job) it writes a
    plain line at most every 30 s (and at the end), not thousands of redraws.
    """
    from tqdm import tqdm

    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
                mininterval=0.2 if interactive else 30.0, dynamic_ncols=interactive,
                ascii=not interactive, leave=True,
                file=sys.stderr if interactive else _LogLines(sys.stderr))


def run_loop(*, start: int, steps: int, seed: int, do_step: Callable[[int], float],
             save: Callable[[int, list], str], checkpoint_every: int,
             callback, callback_every: int, history: list, progress: bool, run_dir=None):
    """The loop both backends share: steps ``start .. steps-1``, checkpoints, callbacks, bar.

    `do_step(i)` trains on step ``i``'s batch and returns its loss; `save(step,
    history)` writes the checkpoint after ``step`` steps and returns its
    folder (called only when there is a `run_dir`). Returns the folder of the last checkpoint written, else the newest
    one in `run_dir` (a resumed run that was already complete), or ``None``.
    """
    last = None
    bar = progress_bar(steps, start, progress)
    try:
        for i in range(start, steps):
            loss = do_step(i)
            history.append(loss)
            done = i + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            is_checkpoint = run_dir is not None and (done % checkpoint_every == 0 or done == steps)
            if is_checkpoint:
                last = save(done, history)
            if callback is not None and (done % callback_every == 0 or done == steps):
                callback(done, loss, last if is_checkpoint else None)
    finally:
        bar.close()
    if last is None and run_dir is not None:  # nothing new to write: the newest there is
        newest = list_checkpoints(run_dir)
        last = newest[0][1] if newest else None
    return last

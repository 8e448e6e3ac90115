"""A finished (or interrupted) sweep, re-opened from its folder: table, best trial, checkpoints, plots.

Reading needs neither Ray nor a backend: it reads the files Ray Tune wrote
in each trial's folder (``params.json``, ``result.json``, the reported
checkpoints) and the sweep's own ``mrnn_sweep.json``. Loading a checkpoint
into a backend imports that backend only.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field

from mrnn_core.errors import MRNNConfigError
from mrnn_core.files import atomic_write

DEFINITION = "mrnn_sweep.json"
TABLE = "results.csv"
COLUMNS = ("trial", "status", "final_loss", "best_loss", "steps", "wall_time_s", "checkpoint")


@dataclass(frozen=True)
class TrialResult:
    """One trial of a sweep.

    **Fields:**

    - `trial`: Tune's trial id; `path`: the trial's folder.
    - `values`: its swept settings, ``{"training.lr": 0.001, ...}``.
    - `status`: ``"finished"``, ``"error"`` (failed more often than
      ``max_failures`` allows) or ``"incomplete"`` (stopped early by a
      scheduler, or the sweep was interrupted).
    - `final_loss`, `best_loss`: the loss of the last reported step, and the
      lowest loss of any step (``nan`` before the first report).
    - `steps`: training steps done (as of the last report).
    - `wall_time_s`: Tune's ``time_total_s`` of the trial.
    - `checkpoint`: the folder of its last reported checkpoint (``network.npz``
      inside), or ``None``.
    - `curve`: ``[(step, loss), ...]`` at every report.
    """

    trial: str
    path: str
    values: dict
    status: str
    final_loss: float
    best_loss: float
    steps: int
    wall_time_s: float
    checkpoint: str | None
    curve: list = field(default_factory=list)

    def network_checkpoint(self):
        """The trial's trained network and readout as an :class:`mrnn_core.Checkpoint`."""
        from mrnn_core import Checkpoint
        from mrnn_core import training as core

        if self.checkpoint is None:
            raise MRNNConfigError(f"trial {self.trial}: it reported no checkpoint")
        core.read_state(self.checkpoint)  # every file present, with the digest it was written with
        return Checkpoint.load(os.path.join(self.checkpoint, core.NETWORK))

    def load(self, backend: str):
        """``(model, readout)`` of this trial's checkpoint in ``"torch"`` or ``"jax"``."""
        from ._trial import backend_objects

        if backend not in ("torch", "jax"):
            raise MRNNConfigError(f"load: backend: expected 'torch' or 'jax', got {backend!r}")
        model, readout, _ = backend_objects(backend, self.network_checkpoint())
        return model, readout


def _read_rows(path: str) -> list[dict]:
    rows = []
    try:
        with open(os.path.join(path, "result.json"), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        break  # a line cut by a killed process ends what can be read
    except FileNotFoundError:
        pass
    return rows


def _read_trial(path: str) -> TrialResult:
    with open(os.path.join(path, "params.json"), encoding="utf-8") as f:
        values = json.load(f)
    rows = [r for r in _read_rows(path) if "loss" in r and "step" in r]
    checkpoint = None
    for row in reversed(rows):
        name = row.get("checkpoint_dir_name")
        if name and os.path.isdir(os.path.join(path, name)):
            checkpoint = os.path.join(path, name)
            break
    last = rows[-1] if rows else {}
    if last.get("finished"):
        status = "finished"
    elif os.path.exists(os.path.join(path, "error.txt")):
        status = "error"
    else:
        status = "incomplete"
    trial = last.get("trial_id") or os.path.basename(path)
    return TrialResult(trial, path, values, status, float(last.get("loss", math.nan)),
                       float(last.get("best_loss", math.nan)), int(last.get("step", 0)),
                       float(last.get("time_total_s", math.nan)), checkpoint,
                       [(int(r["step"]), float(r["loss"])) for r in rows])


class SweepResults:
    """A sweep's trials, read from its folder (:func:`open_sweep`).

    **Attributes:** `path` (the sweep folder), `definition` (the sweep as
    run: ``backend``, ``base``, ``search``, ``metric``...), `trials` (a list
    of :class:`TrialResult`, in trial-id order), `swept` (the swept paths).
    """

    def __init__(self, path: str, definition: dict, trials: list[TrialResult]):
        self.path = path
        self.definition = definition
        self.trials = trials
        self.swept = list(definition.get("search", {}))

    def __len__(self) -> int:
        return len(self.trials)

    def __repr__(self) -> str:
        return f"SweepResults({self.path!r}, {len(self.trials)} trials)"

    @property
    def backend(self) -> str:
        return self.definition["backend"]

    def table(self) -> list[dict]:
        """One dict per trial: ``trial``, ``status``, each swept path, the losses, ``steps``,
        ``wall_time_s``, ``checkpoint``."""
        return [{"trial": t.trial, "status": t.status, **{p: t.values.get(p) for p in self.swept},
                 "final_loss": t.final_loss, "best_loss": t.best_loss, "steps": t.steps,
                 "wall_time_s": t.wall_time_s, "checkpoint": t.checkpoint} for t in self.trials]

    def dataframe(self):
        """:meth:`table` as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas

        return pandas.DataFrame(self.table())

    def save_table(self, path=None) -> str:
        """Write :meth:`table` as CSV (default ``<sweep folder>/results.csv``); return the path."""
        path = os.fspath(path) if path is not None else os.path.join(self.path, TABLE)
        header = ["trial", "status", *self.swept, *COLUMNS[2:]]
        with atomic_write(path, "w", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.table())
        return path

    def best(self, metric: str | None = None) -> TrialResult:
        """The trial with the lowest `metric` (``"final_loss"`` or ``"best_loss"``; default:
        the sweep's metric) among those that reported."""
        metric = metric or {"loss": "final_loss"}.get(self.definition["metric"], "best_loss")
        if metric not in ("final_loss", "best_loss"):
            raise MRNNConfigError(f"best: metric: expected 'final_loss' or 'best_loss', got {metric!r}")
        reported = [t for t in self.trials if not math.isnan(getattr(t, metric))]
        if not reported:
            raise MRNNConfigError(f"sweep {self.path!r}: no trial has reported a loss yet")
        return min(reported, key=lambda t: getattr(t, metric))

    def load_best(self, backend: str | None = None):
        """``(model, readout)`` of the best trial in ``backend`` (default: the sweep's)."""
        return self.best().load(backend or self.backend)

    def plot(self, folder=None) -> list[str]:
        """Write ``loss_curves.png`` (every trial's reported loss against step) and
        ``final_loss.png`` (final loss against each swept setting); return their paths.

        Drawn on ``matplotlib.figure.Figure`` objects: pyplot's global backend is
        never touched.
        """
        from matplotlib.figure import Figure

        folder = os.fspath(folder) if folder is not None else self.path
        paths = []
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        for t in self.trials:
            if t.curve:
                steps, losses = zip(*t.curve)
                label = ", ".join(f"{p.split('.')[-1]}={_short(t.values.get(p))}" for p in self.swept)
                ax.plot(steps, losses, marker=".", label=label or t.trial)
        ax.set(xlabel="step", ylabel="loss", yscale="log", title="loss per trial")
        if len(self.trials) <= 12:
            ax.legend(fontsize="small")
        paths.append(os.path.join(folder, "loss_curves.png"))
        fig.savefig(paths[-1], dpi=100)

        numeric = [p for p in self.swept
                   if all(_is_number(t.values.get(p)) for t in self.trials)]
        if numeric:
            fig = Figure(figsize=(4 * len(numeric), 3.5), layout="constrained")
            for i, p in enumerate(numeric):
                ax = fig.add_subplot(1, len(numeric), i + 1)
                ax.scatter([t.values[p] for t in self.trials], [t.final_loss for t in self.trials])
                kind = next(iter(self.definition["search"][p]))
                ax.set(xlabel=p, ylabel="final loss", yscale="log",
                       xscale="log" if kind == "loguniform" else "linear")
            paths.append(os.path.join(folder, "final_loss.png"))
            fig.savefig(paths[-1], dpi=100)
        return paths


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def open_sweep(path) -> SweepResults:
    """Re-open a sweep's folder (``<storage>/<name>``) for analysis; Ray need not run.

    **Returns:** :class:`SweepResults`: ``.table()``, ``.save_table()``,
    ``.best()``, ``.load_best("torch" | "jax")``, ``.plot()``.
    """
    path = os.path.abspath(os.fspath(path))
    try:
        with open(os.path.join(path, DEFINITION), encoding="utf-8") as f:
            definition = json.load(f)
    except FileNotFoundError:
        raise MRNNConfigError(
            f"open_sweep: {path!r} is not a sweep folder (no {DEFINITION}); expected "
            f"<storage>/<sweep name>") from None
    trials = [_read_trial(os.path.join(path, name)) for name in sorted(os.listdir(path))
              if os.path.isfile(os.path.join(path, name, "params.json"))]
    return SweepResults(path, definition, sorted(trials, key=lambda t: t.trial))

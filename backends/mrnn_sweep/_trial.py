"""One trial of a sweep: a resumable training run that reports to Ray Tune.

Runs in a Ray worker. The trial's settings (the sweep's base with this
trial's values written in) build the task, the network and its readout
exactly as validation did; the named backend's ``train`` runs with
``run_dir`` in the trial's folder and ``resume=True``, and each checkpoint
it completes is reported to Tune with its loss (``tune.report(...,
checkpoint=...)``). A restarted trial (``FailureConfig(max_failures=...)``,
after its worker died) finds its checkpoints in ``run_dir`` when it runs on
the same machine, and otherwise gets Tune's copy of the last reported one
(``tune.get_checkpoint()``), which it puts back in ``run_dir`` first; either
way ``train`` continues from there and draws what an uninterrupted run draws.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile

from ._schema import Sweep, build_trial

RUN = "run"
"""The training run's folder inside the trial's folder."""

MODELS = {"leaky": "mRNN", "elman": "ElmanmRNN"}
TORCH_OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}


def backend_objects(backend: str, checkpoint, device=None):
    """``(model, readout, backend's train module)`` built from an :class:`mrnn_core.Checkpoint`.

    `device` (torch only): ``None`` for torch's default (CPU), ``"cuda"``...;
    JAX places arrays on its default device.
    """
    package = importlib.import_module(f"mrnn_{backend}")
    model_class = getattr(package, MODELS[checkpoint.dynamics.kind])
    kwargs = {"device": device} if backend == "torch" else {}
    model = model_class.from_checkpoint(checkpoint, **kwargs)
    readout = (None if checkpoint.readout is None
               else package.Readout.from_checkpoint(checkpoint, **kwargs))
    return model, readout, importlib.import_module(f"mrnn_{backend}.train")


def _trial_device(sweep: Sweep):
    """torch: ``"cuda"`` when the trial has GPUs (``resources.gpus_per_trial > 0``; Ray makes
    only the trial's own GPUs visible to it), else the CPU. JAX: its default device."""
    if sweep.backend != "torch":
        return None
    return "cuda" if sweep.resources["gpus_per_trial"] > 0 else "cpu"


def _optimizer(backend: str, name: str, lr: float):
    if backend == "torch":
        import torch

        cls = getattr(torch.optim, TORCH_OPTIMIZERS[name])
        return lambda params: cls(params, lr=lr)
    import optax

    return getattr(optax, name)(lr)


def trial_run_dir() -> str:
    """The training run's folder: inside the trial's folder in the sweep's storage when that
    is a file system path (local or shared), else in the worker's temporary folder.

    Never inside Ray's local staging folder, which the driver copies to storage as a whole.
    """
    from pyarrow.fs import LocalFileSystem
    from ray import tune

    context = tune.get_context()
    storage = context.get_storage()
    if isinstance(storage.storage_filesystem, LocalFileSystem):
        return os.path.join(storage.trial_fs_path, RUN)
    return os.path.join(tempfile.gettempdir(), "mrnn_sweep", context.get_experiment_name(),
                        context.get_trial_id(), RUN)


def _restore_reported(run_dir: str) -> None:
    """Put Tune's copy of the last reported checkpoint into ``run_dir`` unless it is there."""
    from mrnn_core import training as core
    from ray import tune

    reported = tune.get_checkpoint()
    if reported is None:
        return
    with reported.as_directory() as folder:
        state = core.read_state(folder)
        target = os.path.join(core.checkpoints_folder(run_dir), core.checkpoint_name(state["step"]))
        if any(step >= state["step"] for step, _ in core.list_checkpoints(run_dir)):
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = target + ".restoring"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        os.replace(tmp, target)


def _best_loss(checkpoint_dir: str | None, loss: float) -> float:
    if checkpoint_dir is None:
        return loss
    from mrnn_core import training as core

    with open(os.path.join(checkpoint_dir, core.STATE), encoding="utf-8") as f:
        history = json.load(f)["history"]
    return float(min(history)) if history else loss


def run_trial(values: dict, *, sweep: Sweep, report_callback=None) -> None:
    """The Tune trainable: train with ``values`` (``{"training.lr": ...}``) written into the base.

    Reports ``loss`` (the loss of the reported step's batch), ``best_loss``
    (the lowest loss of any step so far), ``step`` and ``finished`` at every
    checkpoint, with that checkpoint. `report_callback(step, loss,
    checkpoint_dir)`, if given, runs in the worker right after each report.
    """
    from ray import tune

    settings = sweep.trial_settings(values)
    task, checkpoint, training = build_trial(settings)
    run_dir = trial_run_dir()
    os.makedirs(run_dir, exist_ok=True)
    _restore_reported(run_dir)
    model, readout, train_module = backend_objects(sweep.backend, checkpoint,
                                                   _trial_device(sweep))
    steps = training["steps"]

    def report(step: int, loss: float, checkpoint_dir: str | None) -> None:
        metrics = {"loss": float(loss), "best_loss": _best_loss(checkpoint_dir, float(loss)),
                   "step": int(step), "finished": step == steps}
        saved = None if checkpoint_dir is None else tune.Checkpoint.from_directory(checkpoint_dir)
        tune.report(metrics, checkpoint=saved)
        if report_callback is not None:
            report_callback(step, loss, checkpoint_dir)

    train_module.train(
        model, task, optimizer=_optimizer(sweep.backend, training["optimizer"], training["lr"]),
        lr=training["lr"], steps=steps, batch_size=training["batch_size"], readout=readout,
        run_dir=run_dir, checkpoint_every=training["checkpoint_every"], keep=training["keep"],
        resume=True, seed=training["seed"], progress=False, callback=report,
        callback_every=training["checkpoint_every"], loss=training["loss"],
        noise=training["noise"])

"""Running a sweep on Ray Tune: locally in this process, or on an existing Ray cluster."""

from __future__ import annotations

import json
import os
import sys

from mrnn_core.errors import MRNNConfigError
from mrnn_core.files import atomic_write

from ._results import DEFINITION, SweepResults, open_sweep
from ._schema import load_sweep, make_algorithm
from ._trial import run_trial

DEFAULT_STORAGE = "sweeps"


def _definition(sweep) -> dict:
    return {"name": sweep.name, "backend": sweep.backend, "metric": sweep.metric,
            "num_samples": sweep.num_samples, "base": sweep.base,
            "search": {path: {d.kind: list(d.values)} for path, d in sweep.search.items()},
            "search_algorithm": sweep.search_algorithm, "scheduler": sweep.scheduler,
            "resources": sweep.resources, "source": sweep.source}


def start_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, **options) -> None:
    """``ray.init()`` of a Ray inside this process, as :func:`run_sweep` starts it.

    Trial workers run at normal priority: Ray's default lowers theirs to nice
    15, which on a machine shared with other work lets that work starve the
    trials (a sweep then runs slower than the same runs one after another).
    ``RAY_worker_niceness`` in the environment, if set, is left to rule.
    """
    import ray

    if "RAY_worker_niceness" not in os.environ:
        options.setdefault("_system_config", {}).setdefault("worker_niceness", 0)
    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **options)


def run_sweep(source, *, storage_path=None, name: str | None = None, address: str | None = None,
              num_cpus: int | None = None, num_gpus: int | None = None, resume: bool = False,
              report_callback=None, verbose: int = 1, plots: bool = True) -> SweepResults:
    """Run every trial of a sweep on Ray Tune and write its results table and plots.

    The whole sweep is checked first (:func:`mrnn_sweep.load_sweep`): bad
    input raises :class:`mrnn_core.MRNNConfigError` before Ray starts any
    trial. Without a running Ray, this starts one in this process
    (``ray.init()``: local, no set-up) and stops it at the end; with
    `address` (or the ``RAY_ADDRESS`` environment variable) it connects to
    that cluster instead. A Ray already initialised by the caller is used
    as it is.

    **Arguments:**

    - `source`: the sweep file (TOML / JSON), a dict, or a :class:`Sweep`.
    - `storage_path`: where the sweep's folder ``<storage_path>/<name>`` goes
      (default ``./sweeps``; on a cluster, a folder every node sees, or a
      ``s3://`` / ``gs://`` URI).
    - `name`: overrides the sweep's ``name``.
    - `address`: a Ray cluster (``"auto"``, ``"ray://head:10001"``,
      ``"head:6379"``); ``None`` uses ``RAY_ADDRESS`` if set, else a local Ray.
    - `num_cpus`, `num_gpus`: the local Ray's size (default: the machine's).
    - `resume`: continue an interrupted sweep in the same folder (finished
      trials are kept, the others continue from their last checkpoints).
    - `report_callback`: ``callback(step, loss, checkpoint_dir)``, picklable,
      run in each trial's worker after each report (logging, fault tests).
    - `verbose`: Ray Tune's console output (0 silent, 1 status, 2 more).
    - `plots`: write the loss-curve and final-loss figures.

    **Returns:** the :class:`SweepResults` of the finished sweep (also written
    to ``<folder>/results.csv``); ``None`` for remote storage (a URI), whose
    folder is read after copying it here.
    """
    sweep = load_sweep(source, name=name)
    import ray
    from ray import tune

    storage = os.fspath(storage_path) if storage_path is not None else DEFAULT_STORAGE
    remote = "://" in storage
    if not remote:
        storage = os.path.abspath(storage)
    folder = f"{storage.rstrip('/')}/{sweep.name}" if remote else os.path.join(storage, sweep.name)
    if not remote and os.path.exists(os.path.join(folder, DEFINITION)) and not resume:
        raise MRNNConfigError(
            f"sweep folder {folder!r} already holds a sweep; pass resume=True (--resume) to "
            f"continue it, or another name (--name) or storage path (--storage)")
    text = json.dumps(_definition(sweep), indent=1)
    if remote:
        from pyarrow import fs as pafs

        filesystem, path = pafs.FileSystem.from_uri(folder)
        filesystem.create_dir(path, recursive=True)
        with filesystem.open_output_stream(f"{path}/{DEFINITION}") as f:
            f.write(text.encode("utf-8"))
    else:
        os.makedirs(folder, exist_ok=True)
        with atomic_write(os.path.join(folder, DEFINITION), "w", encoding="utf-8") as f:
            f.write(text)

    started = not ray.is_initialized()
    if started:
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address)  # None: RAY_ADDRESS
        else:
            start_local_ray(num_cpus, num_gpus)
    try:
        resources = sweep.resources
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, sweep=sweep, report_callback=report_callback),
            {"cpu": resources["cpus_per_trial"], "gpu": resources["gpus_per_trial"]})
        if resume and tune.Tuner.can_restore(folder):
            tuner = tune.Tuner.restore(folder, trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={path: d.to_tune() for path, d in sweep.search.items()},
                tune_config=tune.TuneConfig(
                    metric=sweep.metric, mode="min", num_samples=sweep.num_samples,
                    search_alg=make_algorithm("search_algorithm", sweep.search_algorithm,
                                              metric=sweep.metric, mode="min"),
                    scheduler=make_algorithm("scheduler", sweep.scheduler),
                    max_concurrent_trials=resources["max_concurrent_trials"] or None,
                    reuse_actors=True),
                run_config=tune.RunConfig(
                    name=sweep.name, storage_path=storage, verbose=verbose,
                    failure_config=tune.FailureConfig(max_failures=resources["max_failures"]),
                    checkpoint_config=tune.CheckpointConfig(
                        num_to_keep=sweep.base["training"]["keep"])))
        grid = tuner.fit()
        if grid.num_errors:
            print(f"mrnn_sweep: {grid.num_errors} of {len(grid)} trials failed; their errors: "
                  + ", ".join(str(r.error).splitlines()[0] for r in grid if r.error)[:2000],
                  file=sys.stderr)
    finally:
        if started:
            ray.shutdown()
    if remote:
        print(f"mrnn_sweep: results are in {folder}; copy that folder here and open it with "
              f"mrnn_sweep.open_sweep(...) or `mrnn results`", file=sys.stderr)
        return None
    results = open_sweep(folder)
    results.save_table()
    if plots:
        results.plot()
    return results

"""Sweeps run end to end on a local Ray (2 CPUs): every trial finishes, a trial whose worker is
killed resumes to the loss of its uninterrupted twin, the results re-open into either backend.

One Ray for the module and one 4-trial sweep shared by the tests that read it.
"""

import csv
import json
import os
import signal

import numpy as np
import pytest

import ray  # the sweep extra: CI installs it, so a missing Ray fails here  # noqa: E402

import mrnn_sweep  # noqa: E402
from mrnn_core import Checkpoint, MRNNConfigError  # noqa: E402

from .sweeps import small_sweep  # noqa: E402

# Starting Ray forks helper processes (fork + exec). When an earlier test in the
# session has initialised JAX, JAX's at-fork hook warns that forking a
# multithreaded process may deadlock; that concerns a fork without exec, not
# Ray's, so here that one warning is not an error.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

KILL_AT_STEP = 20


@pytest.fixture(scope="module")
def local_ray():
    mrnn_sweep.start_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def kill_once(marker: str, at_step: int):
    """A report callback killing the worker of the first trial to report `at_step` (SIGKILL:
    no clean-up at all). The marker file, created atomically, makes it happen once in the whole
    sweep and records which trial died. (A closure, so Ray ships it by value to the workers.)"""

    def callback(step, loss, checkpoint_dir):
        if step != at_step:
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, checkpoint_dir.encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    return callback


@pytest.fixture(scope="module")
def grid_sweep(local_ray, tmp_path_factory):
    """lr in {1e-3, 1e-2}, each twice (num_samples=2): 4 trials, two identical pairs; the first
    trial to reach step 20 is killed there once."""
    storage = tmp_path_factory.mktemp("sweeps")
    sweep = small_sweep(num_samples=2,
                        search={"training": {"lr": {"grid": [1e-3, 1e-2]}}})
    marker = str(storage / "killed")
    results = mrnn_sweep.run_sweep(sweep, storage_path=str(storage), verbose=0,
                                   report_callback=kill_once(marker, KILL_AT_STEP))
    return results, marker


def test_grid_sweep_runs_every_trial_to_the_end(grid_sweep):
    results, _ = grid_sweep
    assert len(results) == 4
    assert sorted(t.values["training.lr"] for t in results.trials) == [1e-3, 1e-3, 1e-2, 1e-2]
    for trial in results.trials:
        assert trial.status == "finished"
        assert trial.steps == 60
        assert [step for step, _ in trial.curve][-3:] == [20, 40, 60]
        assert np.isfinite(trial.final_loss) and trial.best_loss <= trial.final_loss
        assert os.path.isfile(os.path.join(trial.checkpoint, "network.npz"))


def test_results_table_has_one_row_per_trial(grid_sweep):
    results, _ = grid_sweep
    with open(os.path.join(results.path, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert set(rows[0]) == {"trial", "status", "training.lr", "final_loss", "best_loss", "steps",
                            "wall_time_s", "checkpoint"}
    by_trial = {t.trial: t for t in results.trials}
    for row in rows:
        trial = by_trial[row["trial"]]
        assert float(row["training.lr"]) == trial.values["training.lr"]
        assert float(row["final_loss"]) == trial.final_loss
        assert int(row["steps"]) == 60 and float(row["wall_time_s"]) > 0
        assert row["checkpoint"] == trial.checkpoint
    for figure in ("loss_curves.png", "final_loss.png"):
        assert os.path.getsize(os.path.join(results.path, figure)) > 0


def test_killed_trial_resumes_to_its_twins_final_loss(grid_sweep):
    results, marker = grid_sweep
    with open(marker) as f:
        killed_at = f.read()
    killed = [t for t in results.trials if killed_at.startswith(t.path)]
    assert len(killed) == 1, "the kill callback fired in no trial (or the paths moved)"
    killed = killed[0]
    assert killed.status == "finished" and killed.steps == 60
    twin, = [t for t in results.trials
             if t is not killed and t.values["training.lr"] == killed.values["training.lr"]]
    assert killed.final_loss == twin.final_loss
    assert killed.best_loss == twin.best_loss
    a, b = killed.network_checkpoint(), twin.network_checkpoint()
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)


def test_open_sweep_loads_the_best_trial_into_both_backends(grid_sweep):
    results, _ = grid_sweep
    reopened = mrnn_sweep.open_sweep(results.path)
    assert [t.final_loss for t in reopened.trials] == [t.final_loss for t in results.trials]
    best = reopened.best()
    assert best.final_loss == min(t.final_loss for t in reopened.trials)
    saved = Checkpoint.load(os.path.join(best.checkpoint, "network.npz"))
    torch_model, torch_readout = reopened.load_best("torch")
    jax_model, jax_readout = best.load("jax")
    for model in (torch_model, jax_model):
        params = model.to_checkpoint().params
        for name in ("W_rec", "W_inp", "base_firing"):
            np.testing.assert_array_equal(np.asarray(params[name], dtype=saved.params[name].dtype),
                                          saved.params[name], err_msg=name)
    np.testing.assert_array_equal(torch_readout.weight.detach().numpy(), saved.params["readout_W"])
    np.testing.assert_array_equal(np.asarray(jax_readout.weight), saved.params["readout_W"])


def record_niceness(path: str):
    """A report callback writing the trial worker's nice value (a closure: shipped by value)."""

    def callback(step, loss, checkpoint_dir):
        with open(path, "w") as f:
            f.write(str(os.nice(0)))

    return callback


def test_jax_sweep_trains_with_an_optax_optimiser(local_ray, tmp_path):
    sweep = small_sweep(backend="jax", name="jax_small",
                        training={"steps": 20, "batch_size": 4, "checkpoint_every": 10,
                                  "optimizer": "sgd", "lr": 1e-2})
    nice = str(tmp_path / "nice")
    results = mrnn_sweep.run_sweep(sweep, storage_path=str(tmp_path), verbose=0, plots=False,
                                   report_callback=record_niceness(nice))
    if "RAY_worker_niceness" not in os.environ:
        with open(nice) as f:  # Ray's default (15) would let other work starve the trials
            assert f.read() == str(os.nice(0))
    trial, = results.trials
    assert trial.status == "finished" and trial.steps == 20
    assert [s for s, _ in trial.curve] == [10, 20]
    with open(os.path.join(trial.checkpoint, "state.json")) as f:
        assert json.load(f)["backend"] == "jax"
    untrained = Checkpoint.initialise(trial.network_checkpoint().spec,
                                      trial.network_checkpoint().dynamics, seed=0)
    assert not np.array_equal(trial.network_checkpoint().params["W_rec"], untrained.params["W_rec"])


def test_a_finished_sweeps_folder_is_not_silently_reused(grid_sweep):
    results, _ = grid_sweep
    again = small_sweep(name=os.path.basename(results.path))
    with pytest.raises(MRNNConfigError, match="already holds a sweep; pass resume=True"):
        mrnn_sweep.run_sweep(again, storage_path=os.path.dirname(results.path), verbose=0)
    assert len(mrnn_sweep.open_sweep(results.path)) == 4


def test_results_command_prints_every_trial_and_the_best(grid_sweep, capsys):
    from mrnn_sweep._cli import main

    results, _ = grid_sweep
    assert main(["results", results.path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["trial", "status", "training.lr", "final_loss", "best_loss",
                              "steps", "wall_time_s"]
    assert sum(line.split()[0] in {t.trial for t in results.trials} for line in out) == 4
    best = results.best()
    assert out[-1].startswith(f"best: {best.trial} ") and best.checkpoint in out[-1]


def test_resuming_a_finished_sweep_keeps_its_trials(grid_sweep):
    results, _ = grid_sweep
    again = small_sweep(name=os.path.basename(results.path), num_samples=2,
                        search={"training": {"lr": {"grid": [1e-3, 1e-2]}}})
    resumed = mrnn_sweep.run_sweep(again, storage_path=os.path.dirname(results.path),
                                   resume=True, verbose=0, plots=False)
    assert [(t.trial, t.status, t.final_loss) for t in resumed.trials] == \
        [(t.trial, t.status, t.final_loss) for t in results.trials]

"""The sweep runner's boundaries: the ``mrnn`` command (console script, ``python -m mrnn``,
``python -m mrnn_sweep``), and Ray staying out of the core and the backends."""

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import ray  # noqa: E402,F401  (the sweep extra: CI installs it, so a missing Ray fails here)

from mrnn_sweep._cli import main  # noqa: E402

# Starting Ray forks helper processes (fork + exec). When an earlier test in the
# session has initialised JAX, JAX's at-fork hook warns that forking a
# multithreaded process may deadlock; that concerns a fork without exec, not
# Ray's, so here that one warning is not an error.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sweeps" / "flipflop_grid.toml"


def loaded_after(script_lines):
    """Top-level package names in a fresh interpreter's sys.modules after running the lines."""
    script = "\n".join(["import importlib, json, sys", *script_lines,
                        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_core_and_backends_never_import_ray_or_the_runner():
    modules = ["mrnn_core", "mrnn_core.training", "mrnn_core.tasks", "mrnn_torch",
               "mrnn_torch.train", "mrnn_torch.analysis", "mrnn_jax", "mrnn_jax.train",
               "mrnn_jax.analysis"]
    loaded = loaded_after([f"importlib.import_module({m!r})" for m in modules])
    assert {"mrnn_core", "mrnn_torch", "mrnn_jax", "torch", "jax"} <= loaded
    assert not {"ray", "mrnn_sweep", "mrnn"} & loaded


def test_the_runner_imports_ray_and_the_backends_only_when_it_runs():
    loaded = loaded_after(["import mrnn_sweep"])
    assert "mrnn_sweep" in loaded
    assert not {"ray", "torch", "jax"} & loaded


def test_console_script_is_declared_and_resolves():
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    target = project["project"]["scripts"]["mrnn"]
    module, name = target.split(":")
    assert getattr(importlib.import_module(module), name) is main
    setuptools = project["tool"]["setuptools"]
    for package in ("mrnn_sweep", "mrnn"):
        assert package in setuptools["packages"]
        assert (REPO / setuptools["package-dir"][package] / "__init__.py").is_file()


def test_python_dash_m_mrnn_checks_the_example_sweep():
    result = subprocess.run([sys.executable, "-m", "mrnn", "sweep", str(EXAMPLE), "--check"],
                            capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "sweep 'flipflop_grid': backend torch" in result.stdout
    assert "training.lr: grid [0.001, 0.01]" in result.stdout
    assert "network.dynamics.tau: grid [50.0, 100.0]" in result.stdout


def test_python_dash_m_mrnn_sweep_reports_a_bad_file_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace("lr = { grid = [1e-3, 1e-2] }",
                                               "lr = { loguniform = [0.0, 1e-2] }"))
    result = subprocess.run([sys.executable, "-m", "mrnn_sweep", "sweep", str(bad), "--check"],
                            capture_output=True, text=True, timeout=180, cwd=REPO)
    assert result.returncode == 2
    assert "mrnn sweep: error: search.training.lr.loguniform: expected 0 < low < high" in result.stderr


def test_check_prints_the_search_space(capsys, tmp_path):
    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps({
        "backend": "torch", "network": {"config": str(REPO / "examples/configs/cbgt_loop.json")},
        "task": {"name": "flip_flop"}, "training": {"steps": 5, "batch_size": 2},
        "search": {"training": {"seed": {"randint": [0, 100]}}}}))
    assert main(["sweep", str(sweep), "--check", "--name", "renamed"]) == 0
    out = capsys.readouterr().out
    assert "sweep 'renamed': backend torch, 1 sample(s)" in out
    assert "training.seed: randint [0, 100]" in out

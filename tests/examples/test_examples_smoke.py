"""Every script in examples/ runs, as a user runs it, with small sizes.

Each runs in a fresh interpreter from a temporary folder, so its figures
(``--out``) and any cache land there, never in the repository. A test checks
the exit status, the line of output that shows the script did its job, and
that every figure it wrote is a valid PNG. A last test fails when a script
is added to examples/ without a smoke test here.
"""

import re
import subprocess
import sys

import pytest

from examples_helpers import EXAMPLES, assert_png

TESTED = {"quickstart.py", "build_three_ways.py", "property_test_my_model.py",
          "torch_flipflop.py", "jax_flipflop.py", "torch_to_jax.py", "jax_ensemble.py",
          "analyse_flipflop.py",
          "nn4n_multiarea.py",  # its test: test_examples_nn4n.py
          "neurogym_decision.py"}  # its test: test_examples_neurogym_decision.py


def run(cwd, script, *args, module=None):
    """Run ``examples/<script>`` (or ``python -m <module> examples/<script>``) in ``cwd``;
    return its stdout after checking it exited 0."""
    command = [sys.executable] + (["-m", module] if module else []) + [str(EXAMPLES / script)]
    done = subprocess.run(command + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def number_after(pattern, text):
    match = re.search(pattern + r"\s*([0-9.]+e[+-]?[0-9]+|[0-9.]+)", text)
    assert match, f"no {pattern!r} in:\n{text}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``torch_flipflop.py`` trained briefly with ``--save``: (folder, stdout, checkpoint)."""
    folder = tmp_path_factory.mktemp("torch_flipflop")
    checkpoint = folder / "model.npz"
    out = run(folder, "torch_flipflop.py", "--steps", 15, "--batch", 8, "--length", 30,
              "--device", "cpu", "--save", checkpoint, "--out", folder)
    return folder, out, checkpoint


def test_quickstart(tmp_path):
    out = run(tmp_path, "quickstart.py", "--steps", 60, "--out", tmp_path)
    assert number_after(r"max \|difference\| =", out) < 1e-12
    assert "thal" in out and "H = 350 units" in out
    assert_png(tmp_path / "quickstart_rates.png")
    assert_png(tmp_path / "quickstart_connectivity.png")


def test_build_three_ways(tmp_path):
    out = run(tmp_path, "build_three_ways.py")
    assert out.count("identical to the config-built model: True") == 2
    assert "regions: ctx_exc 16 pos [ctx], ctx_inh 4 neg [ctx], thal 8 pos b=0.1" in out


def test_property_test_my_model(tmp_path):
    out = run(tmp_path, "property_test_my_model.py", "-q", "-p", "no:cacheprovider",
              module="pytest")
    assert re.search(r"^1 passed", out, re.MULTILINE), out


def test_torch_flipflop(trained):
    folder, out, checkpoint = trained
    assert "regions: exc 48 pos [ctx] b learnable, inh 16 neg [ctx] b learnable" in out
    assert re.search(r"trained 15 steps: loss [0-9.]+ \(first step\)", out)
    assert "held-out loss" in out and f"checkpoint written to {checkpoint}" in out
    assert checkpoint.stat().st_size > 0
    assert_png(folder / "torch_flipflop_loss.png")
    assert_png(folder / "torch_flipflop_connectivity.png")


def test_jax_flipflop(tmp_path):
    out = run(tmp_path, "jax_flipflop.py", "--steps", 20, "--batch", 4, "--trial-length", 20,
              "--out", tmp_path)
    assert "loss fell from" in out
    assert "masks and sign matrices unchanged" in out
    assert_png(tmp_path / "jax_flipflop_loss.png")


def test_jax_ensemble(tmp_path):
    out = run(tmp_path, "jax_ensemble.py", "--members", 2, "--steps", 10, "--batch", 4,
              "--trial-length", 20, "--out", tmp_path)
    assert "2 networks of H = 64 units trained together" in out
    assert len(re.findall(r"^\s+[01]\s+[0-9.]+\s+[0-9.]+$", out, re.MULTILINE)) == 2  # a row each
    assert "masks and sign matrices of every member unchanged" in out
    assert_png(tmp_path / "jax_ensemble_loss.png")


def test_torch_to_jax_trains_then_moves(tmp_path):
    out = run(tmp_path, "torch_to_jax.py", "--steps", 5, "--batch", 4, "--length", 20,
              "--out", tmp_path)
    assert "JAX model holds the checkpoint's arrays bit for bit: True" in out
    assert number_after(r"max \|torch - JAX\| rates", out) < 1e-12
    assert number_after(r", readout", out) < 1e-12
    assert_png(tmp_path / "torch_flipflop_loss.png")


def test_torch_to_jax_moves_a_saved_checkpoint(trained, tmp_path):
    _, _, checkpoint = trained
    out = run(tmp_path, "torch_to_jax.py", "--checkpoint", checkpoint, "--length", 30)
    assert "JAX model holds the checkpoint's arrays bit for bit: True" in out
    assert number_after(r"max \|torch - JAX\| rates", out) < 1e-12
    torch_loss = number_after(r"task loss: torch", out)
    assert number_after(r", JAX", out) == pytest.approx(torch_loss, abs=1e-6)
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing drawn


def test_analyse_flipflop_on_the_torch_checkpoint(trained, tmp_path):
    _, _, checkpoint = trained
    if not (EXAMPLES / "analyse_flipflop.py").exists():
        pytest.fail("examples/analyse_flipflop.py is listed in TESTED but missing")
    out = run(tmp_path, "analyse_flipflop.py", checkpoint, "--out", tmp_path)
    assert f"loaded {checkpoint}: leaky, H = 64" in out
    assert re.search(r"^\d+ fixed points: \d+ stable", out, re.MULTILINE), out
    assert_png(tmp_path / "flipflop_flow.png")


def test_every_example_has_a_smoke_test():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == TESTED, f"untested: {sorted(scripts - TESTED)}; gone: {sorted(TESTED - scripts)}"

"""examples/nn4n_multiarea.py: the nn4n-style three-area E/I network, trained in both backends.

The script runs once, in this process (``--quick``), so the test reads its
returned loss curves exactly as well as its printed report and figures.
"""

import contextlib
import importlib
import io
import re

import numpy as np
import pytest

import mrnn_core
from .examples_helpers import EXAMPLES, assert_png


@pytest.fixture(scope="module")
def example():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLES))
        yield importlib.import_module("nn4n_multiarea")


@pytest.fixture(scope="module")
def quick_run(example, tmp_path_factory):
    """``main(["--quick", "--out", folder])``: (folder, printed text, returned losses)."""
    folder = tmp_path_factory.mktemp("nn4n_multiarea")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        losses = example.main(["--quick", "--out", str(folder)])
    return folder, text.getvalue(), losses


def test_both_backends_start_from_the_same_loss(quick_run):
    _, out, losses = quick_run
    assert len(losses["torch"]) == len(losses["jax"]) == 30
    assert abs(losses["torch"][0] - losses["jax"][0]) < 1e-10
    printed = re.search(r"initial loss: torch ([0-9.]+), JAX ([0-9.]+)", out)
    assert printed, out
    assert float(printed.group(1)) == pytest.approx(losses["torch"][0], abs=1e-14)
    assert float(printed.group(2)) == pytest.approx(losses["jax"][0], abs=1e-14)


def test_both_backends_train_the_same_curve(quick_run):
    _, out, losses = quick_run
    # Same trials, same start, no noise, float64: only rounding tells the runs apart.
    np.testing.assert_allclose(losses["jax"], losses["torch"], rtol=1e-8)
    rows = re.findall(r"^\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)$", out, re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(1, 31, 3))  # every third step, side by side
    assert [float(r[1]) for r in rows] == pytest.approx(losses["torch"][::3], abs=1e-6)
    assert [float(r[2]) for r in rows] == pytest.approx(losses["jax"][::3], abs=1e-6)
    drift = re.search(r"trained weights: max \|torch - JAX\| = ([0-9.e+-]+)", out)
    assert drift and float(drift.group(1)) < 1e-8, out


def test_training_lowers_the_held_out_loss_in_both_backends(quick_run):
    _, out, losses = quick_run
    held_out = losses["held_out"]
    for backend in ("torch", "jax"):
        assert held_out[backend] < 0.95 * held_out["initial"], held_out
        assert np.mean(losses[backend][-10:]) < np.mean(losses[backend][:10]), losses[backend]
    assert held_out["jax"] == pytest.approx(held_out["torch"], rel=1e-8)
    assert re.search(r"held-out task loss \(256 trials, numpy reference\): initial [0-9.]+, "
                     r"torch-trained [0-9.]+, JAX-trained [0-9.]+", out), out


def test_figures_are_written(quick_run):
    folder, out, _ = quick_run
    assert_png(folder / "nn4n_multiarea_connectivity.png")
    assert_png(folder / "nn4n_multiarea_loss.png")
    assert f"figures written to {folder}" in out


def test_network_is_nn4n_multi_area_ei(example):
    """Three 80 % excitatory areas, local E/I, feedforward E->E only, input into the first."""
    spec = example.build_spec(units=10, local_density=1.0, ff_density=1.0)
    ckpt = example.initial_checkpoint(spec, seed=3)
    connectivity = ckpt.connectivity
    names = [f"{area}_{pop}" for area in example.AREAS for pop in ("exc", "inh")]
    assert spec.recurrent_names == tuple(names)
    assert [spec.region(n).num_units for n in names] == [8, 2] * 3
    assert [spec.region(n).sign for n in names] == ["pos", "neg"] * 3
    assert [spec.region(n).tau for n in names] == [t for t in example.TAU for _ in "ei"]

    block = lambda dst, src: connectivity.W_rec_mask[  # noqa: E731
        connectivity.region_slice(dst), connectivity.region_slice(src)]
    for dst in names:
        for src in names:
            same_area = dst.split("_")[0] == src.split("_")[0]
            a, b = (example.AREAS.index(n.split("_")[0]) for n in (src, dst))
            feedforward = b == a + 1 and src.endswith("exc") and dst.endswith("exc")
            expected = 1.0 if same_area or feedforward else 0.0
            assert block(dst, src).mean() == expected, (src, dst)
    receives_input = connectivity.W_inp_mask.any(axis=1)
    assert receives_input.tolist() == [True] * 10 + [False] * 20

    # Dale's law in the drawn weights; the readout reads motor_exc only, non-negatively.
    W = mrnn_core.effective_weight(ckpt.params["W_rec"], ckpt.params["W_rec_mask"],
                                   ckpt.params["W_rec_sign_matrix"], constrained=True)
    columns = np.split(W, np.cumsum([8, 2] * 3)[:-1], axis=1)
    assert all((c >= 0).all() if k % 2 == 0 else (c <= 0).all() for k, c in enumerate(columns))
    assert ckpt.readout.dale and ckpt.readout.regions == ("motor",)
    assert ckpt.params["readout_W"].shape == (3, 8)

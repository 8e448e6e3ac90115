"""The network, activity and loss plots draw what they claim and write valid PNGs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import mrnn_core
from .examples_helpers import assert_png
from mrnn_core.plotting import plot_connectivity, plot_loss, plot_region_activity


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


SPEC = (mrnn_core.NetworkSpec()
        .with_recurrent_region("exc", 6, sign="exc", parent_region="ctx")
        .with_recurrent_region("inh", 2, sign="inhib", parent_region="ctx")
        .with_recurrent_region("thal", 3)
        .with_input_region("cue", 2)
        .with_input_region("stop", 1, sign="neg")
        .with_recurrent_connection("exc", "exc", sparsity=0.5)
        .with_recurrent_connection("exc", "inh")
        .with_recurrent_connection("inh", "exc")
        .with_recurrent_connection("thal", "exc")
        .with_recurrent_connection("exc", "thal", zero_connection=True)
        .with_input_connection("cue", "thal")
        .with_input_connection("stop", "inh"))
# blocks that carry weights, as (destination, source, sign mark)
DECLARED_REC = {("exc", "exc", "+"), ("inh", "exc", "+"), ("exc", "inh", "\u2212"),
                ("exc", "thal", "+")}
DECLARED_INP = {("thal", "cue", "+"), ("inh", "stop", "\u2212")}


def checkpoint(**dynamics):
    return mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(**dynamics), seed=3)


def block_marks(ax, rows, cols):
    """``{(row region, column region, text)}`` of the marks drawn inside the matrix."""
    row_of = {(a + b - 1) / 2: n for n, (a, b) in rows.items()}
    col_of = {(a + b - 1) / 2: n for n, (a, b) in cols.items()}
    return {(row_of[t.get_position()[1]], col_of[t.get_position()[0]], t.get_text())
            for t in ax.texts}


REC = {"exc": (0, 6), "inh": (6, 8), "thal": (8, 11)}
INP = {"cue": (0, 2), "stop": (2, 3)}


def test_connectivity_draws_effective_weights_with_regions_and_block_signs(tmp_path):
    ckpt = checkpoint()
    ax = plot_connectivity(ckpt, path=tmp_path / "W_rec.png")
    assert_png(tmp_path / "W_rec.png")
    p = ckpt.params
    expected = p["W_rec_mask"] * np.abs(p["W_rec"]) * p["W_rec_sign_matrix"]
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["exc", "inh", "thal"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["exc", "inh", "thal"]
    assert block_marks(ax, REC, REC) == DECLARED_REC
    boundaries = sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] ==
                        line.get_ydata()[1])
    assert boundaries == [5.5, 7.5]


def test_input_matrix_marks_the_input_regions_sign():
    ax = plot_connectivity(checkpoint(), matrix="input")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cue", "stop"]
    assert block_marks(ax, REC, INP) == DECLARED_INP


def test_without_dales_law_blocks_are_marked_either_sign():
    ckpt = checkpoint(rec_constrained=False)
    ax = plot_connectivity(ckpt)
    p = ckpt.params
    np.testing.assert_array_equal(ax.images[0].get_array(), p["W_rec"] * p["W_rec_mask"])
    assert block_marks(ax, REC, REC) == {(d, s, "\u00b1") for d, s, _ in DECLARED_REC}


def test_structure_alone_draws_the_sign_matrix():
    connectivity = mrnn_core.build_connectivity(SPEC, seed=0)
    ax = plot_connectivity(connectivity)
    np.testing.assert_array_equal(ax.images[0].get_array(), connectivity.W_rec_sign_matrix)
    assert block_marks(ax, REC, REC) == DECLARED_REC


def test_a_network_without_inputs_draws_an_empty_input_matrix():
    spec = mrnn_core.NetworkSpec().with_recurrent_region("a", 3).with_recurrent_connection("a", "a")
    ax = plot_connectivity(mrnn_core.Checkpoint.initialise(spec, seed=0), matrix="input")
    assert "no input regions" in ax.get_title()


def test_connectivity_rejects_unknown_matrix_and_source():
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"matrix: expected 'recurrent' or 'input', got 'inp'"):
        plot_connectivity(checkpoint(), matrix="inp")
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"source: expected .*Checkpoint or Connectivity, got dict"):
        plot_connectivity({"W_rec": np.eye(2)})


def test_region_activity_plots_each_regions_mean_per_trial(tmp_path):
    rng = np.random.default_rng(0)
    hs = rng.normal(size=(5, 40, SPEC.hidden_size))
    fig = plot_region_activity(SPEC, hs, regions=("ctx", "thal", "inh"), trials=(4, 1), dt=10,
                               path=tmp_path / "activity.png")
    assert_png(tmp_path / "activity.png")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["ctx (8 units)", "thal (3 units)", "inh (2 units)"]
    for ax, units in zip(panels, (np.arange(0, 8), np.arange(8, 11), np.arange(6, 8))):
        assert len(ax.lines) == 2
        for line, trial in zip(ax.lines, (4, 1)):
            np.testing.assert_allclose(line.get_ydata(), hs[trial][:, units].mean(axis=1))
            np.testing.assert_allclose(line.get_xdata(), 10 * np.arange(1, 41))


def test_region_activity_takes_any_layout_and_backend_array():
    import jax.numpy as jnp
    import torch

    hs = np.random.default_rng(1).normal(size=(3, 20, SPEC.hidden_size))
    reference = plot_region_activity(SPEC, hs, trials=2)
    drawn = [line.get_ydata() for ax in reference.axes for line in ax.lines]
    assert len(drawn) == 3 * 2  # every region by default, the first two trials
    for variant, kwargs in ((hs.transpose(1, 0, 2), dict(batch_first=False)),
                            (torch.tensor(hs, requires_grad=True), {}),
                            (jnp.asarray(hs), {})):
        fig = plot_region_activity(SPEC, variant, trials=2, **kwargs)
        again = [line.get_ydata() for ax in fig.axes for line in ax.lines]
        for a, b in zip(drawn, again, strict=True):
            np.testing.assert_allclose(a, b)
    single = plot_region_activity(SPEC, hs[0])  # [T, H]: one trial
    assert [len(ax.lines) for ax in single.axes] == [1, 1, 1]


def test_region_activity_rejects_bad_shapes_regions_and_trials():
    hs = np.zeros((2, 5, SPEC.hidden_size))
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"activity: expected \[B, T, H\] or \[T, H\] with H=11, got shape \(2, 5, 4\)"):
        plot_region_activity(SPEC, np.zeros((2, 5, 4)))
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"unknown region 'thalamus'.*did you mean 'thal'"):
        plot_region_activity(SPEC, hs, regions=("thalamus",))
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"trials: expected indices below the 2 trials given, got \(0, 5\)"):
        plot_region_activity(SPEC, hs, trials=(0, 5))


def test_loss_draws_one_curve_per_member_and_its_running_mean(tmp_path):
    losses = np.exp(-np.linspace(0, 2, 50))[:, None] * np.array([1.0, 2.0, 3.0])
    ax = plot_loss(losses, smooth=5, path=tmp_path / "loss.png")
    assert_png(tmp_path / "loss.png")
    raw, smoothed = ax.lines[0::2], ax.lines[1::2]
    assert len(raw) == len(smoothed) == 3
    for k in range(3):
        np.testing.assert_allclose(raw[k].get_ydata(), losses[:, k])
        expected = [losses[t - 4:t + 1, k].mean() for t in range(4, 50)]
        np.testing.assert_allclose(smoothed[k].get_ydata(), expected)
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["member 0", "member 1", "member 2"]


def test_loss_of_one_run_and_loss_errors():
    ax = plot_loss([0.5, -0.1, 0.2])
    assert ax.get_yscale() == "linear" and ax.get_legend() is None  # a negative loss: no log axis
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"labels: expected 2 names \(one per run\), got 1"):
        plot_loss(np.ones((4, 2)), labels=["a"])
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"losses: expected \[steps\] or \[steps, N\].*got shape \(0,\)"):
        plot_loss([])


def test_nothing_is_written_unless_a_path_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = checkpoint()
    plot_connectivity(ckpt)
    plot_region_activity(SPEC, np.zeros((1, 4, SPEC.hidden_size)))
    plot_loss([1.0, 0.5])
    assert list(tmp_path.iterdir()) == []

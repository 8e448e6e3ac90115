"""The flow-field plot draws the field, the fixed points and the trajectories."""

import matplotlib
import numpy as np

from .analysis_helpers import checkpoint, two_region_spec
from mrnn_core.plotting import plot_flow_field
from mrnn_torch.analysis import find_fixed_points, flow_field

matplotlib.use("Agg")


def test_plot_marks_stable_and_unstable_points(tmp_path):
    import matplotlib.pyplot as plt

    ckpt = checkpoint(two_region_spec(), np.diag([2.0, 2.0]), activation="tanh")
    grid = np.array([[a, b] for a in (-3, 0.0, 3) for b in (-3, 0.0, 3)])
    fps = find_fixed_points(ckpt, initial_states=grid, progress=False)
    flow = flow_field(ckpt, basis=np.eye(2), origin=np.zeros(2), limits=((-3, 3), (-3, 3)),
                      resolution=9)
    path = np.linspace([0.1, 0.2], [1.9, 1.9], 20)
    ax = plot_flow_field(flow, fixed_points=fps, trajectories=path[None])
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["stable (4)", "unstable (5)"]
    assert len(ax.lines) == 1 and len(ax.collections) >= 4  # mesh, quiver, two point sets
    ax.figure.savefig(tmp_path / "flow.png")
    assert (tmp_path / "flow.png").stat().st_size > 0
    plot_flow_field(flow, linear=True, ax=ax)
    plt.close("all")

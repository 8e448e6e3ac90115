"""Drawing analysis results with matplotlib (imported only when a function is called)."""

from __future__ import annotations

import numpy as np


def plot_flow_field(flow, fixed_points=None, trajectories=None, ax=None, linear: bool = False,
                    title: str | None = None):
    """Draw a :class:`mrnn_core.analysis.FlowField` as a quiver plot over its speed.

    **Arguments:**

    - `flow`: from ``flow_field`` of either backend.
    - `fixed_points`: a :class:`mrnn_core.analysis.FixedPoints` to mark on the
      plane: filled dots are stable (``|lambda| < 1``), open dots unstable.
    - `trajectories` ``[..., T, H]``: drawn as thin lines (projected on the plane).
    - `ax`: the matplotlib axes to draw in (default: a new figure's).
    - `linear`: draw the linearised map's velocity instead of the nonlinear one.

    **Returns:** the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    velocity = flow.linear_velocity if linear else flow.velocity
    speed = np.linalg.norm(velocity, axis=-1)
    shading = ax.pcolormesh(flow.c1, flow.c2, np.log10(speed + 1e-12), shading="auto",
                            cmap="Greys", alpha=0.6)
    ax.figure.colorbar(shading, ax=ax, label="log10 speed in the plane (per step)")
    ax.quiver(flow.c1, flow.c2, velocity[..., 0], velocity[..., 1], color="tab:blue",
              angles="xy", pivot="mid")
    if trajectories is not None:
        paths = flow.project(np.asarray(trajectories))
        for path in paths.reshape(-1, *paths.shape[-2:]):
            ax.plot(path[:, 0], path[:, 1], color="tab:orange", lw=0.6, alpha=0.7)
    if fixed_points is not None and len(fixed_points):
        where = flow.project(fixed_points.points)
        stable = np.asarray(fixed_points.stable_discrete)
        ax.scatter(where[stable, 0], where[stable, 1], s=60, color="black", zorder=3,
                   label=f"stable ({int(stable.sum())})")
        ax.scatter(where[~stable, 0], where[~stable, 1], s=60, facecolors="white",
                   edgecolors="black", zorder=3, label=f"unstable ({int((~stable).sum())})")
        ax.legend(loc="upper right", fontsize=8)
    ax.set(xlim=(flow.c1[0], flow.c1[-1]), ylim=(flow.c2[0], flow.c2[-1]),
           xlabel="plane coordinate 1", ylabel="plane coordinate 2",
           title=title or f"{'linearised ' if linear else ''}flow ({flow.space}-space)")
    return ax

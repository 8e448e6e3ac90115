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
    if ax is None:
        _, ax = _new_axes(None, figsize=(6, 5))
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


# -- networks, activity and training ------------------------------------------------
# The functions below draw a model's structure, its activity per region and a
# training loss. They take numpy arrays (torch tensors and JAX arrays are
# converted), so one function serves both backends.

from .errors import MRNNConfigError  # noqa: E402


def _numpy(a) -> np.ndarray:
    """A float numpy array from numpy, a JAX array or a (possibly grad-tracking) torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a, dtype=float)


def _spec_of(source):
    """The :class:`NetworkSpec` of a spec, a ``Connectivity`` or a ``Checkpoint``."""
    from .spec import NetworkSpec

    spec = source if isinstance(source, NetworkSpec) else getattr(source, "spec", None)
    if not isinstance(spec, NetworkSpec):
        raise MRNNConfigError(
            f"expected a NetworkSpec, Connectivity or Checkpoint, got {type(source).__name__}")
    return spec


def _new_axes(path, rows: int = 1, cols: int = 1, **kwargs):
    """A new figure and its axes: a pyplot figure when drawing to the screen (inline
    in notebooks), a bare ``Figure`` when the drawing goes to `path`, so that writing
    files never touches pyplot's state or the backend."""
    if path is None:
        import matplotlib.pyplot as plt

        return plt.subplots(rows, cols, **kwargs)
    from matplotlib.figure import Figure

    figure = Figure(figsize=kwargs.pop("figsize", None), layout=kwargs.pop("layout", None))
    return figure, figure.subplots(rows, cols, **kwargs)


def _finish(figure, path):
    if path is not None:
        figure.savefig(path, dpi=120)


def plot_connectivity(source, matrix: str = "recurrent", ax=None, path=None,
                      title: str | None = None):
    """Draw a weight matrix with region boundaries, region names and each block's sign.

    **Arguments:**

    - `source`: a :class:`mrnn_core.Checkpoint` (draws the effective weights
      ``W_eff``: ``M * |W| * S`` under Dale's law, else ``W * M``; get one from
      any model with ``model.to_checkpoint()``) or a
      :class:`mrnn_core.Connectivity` (draws the structure ``S``: +1, -1 or 0).
    - `matrix`: ``"recurrent"`` (``[H, H]``) or ``"input"`` (``[H, I]``).
      Rows receive, columns send.
    - `ax`: the axes to draw in (default: a new figure's).
    - `path`: write the figure there (PNG by its suffix); nothing is written otherwise.
    - `title`: default says which matrix is drawn.

    Each non-empty block is marked ``+`` or ``-``, the sign of its source
    region, or ``±`` where Dale's law is off and the weights may take either sign.

    **Returns:** the axes.
    """
    from .checkpoint import Checkpoint
    from .connectivity import Connectivity, _offsets
    from .init import effective_weight

    if matrix not in ("recurrent", "input"):
        raise MRNNConfigError(f"matrix: expected 'recurrent' or 'input', got {matrix!r}")
    key = "W_rec" if matrix == "recurrent" else "W_inp"
    if isinstance(source, Checkpoint):
        p = source.params
        constrained = (source.dynamics.rec_constrained if matrix == "recurrent"
                       else source.dynamics.inp_constrained)
        mask = p[f"{key}_mask"]
        W = effective_weight(p[key], mask, p[f"{key}_sign_matrix"], constrained)
        label = "effective weight"
    elif isinstance(source, Connectivity):
        mask, W, constrained = getattr(source, f"{key}_mask"), getattr(source, f"{key}_sign_matrix"), True
        label = "sign of the connection (structure)"
    else:
        raise MRNNConfigError(
            f"source: expected a mrnn_core.Checkpoint or Connectivity, got {type(source).__name__}")
    spec = source.spec
    rows = _offsets(spec.recurrent_regions)
    cols = rows if matrix == "recurrent" else _offsets(spec.input_regions)
    sources = spec.recurrent_regions if matrix == "recurrent" else spec.input_regions

    if ax is None:
        _, ax = _new_axes(path, figsize=(6.5, 5.5) if matrix == "recurrent" else (4, 5.5),
                          layout="constrained")
    W = np.asarray(W, dtype=float)
    vmax = float(np.max(np.abs(W))) if W.size and np.any(W) else 1.0
    image = ax.imshow(W if W.size else np.zeros((max(W.shape[0], 1), 1)), cmap="RdBu_r",
                      vmin=-vmax, vmax=vmax, interpolation="nearest", aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=label)
    for start, _ in list(rows.values())[1:]:
        ax.axhline(start - 0.5, color="black", lw=0.6)
    for start, _ in list(cols.values())[1:]:
        ax.axvline(start - 0.5, color="black", lw=0.6)
    sign_of = {r.name: "+" if r.sign == "pos" else "\u2212" for r in sources}
    for dst, (r0, r1) in rows.items():
        for src, (c0, c1) in cols.items():
            if not np.any(mask[r0:r1, c0:c1]):
                continue
            ax.text((c0 + c1 - 1) / 2, (r0 + r1 - 1) / 2,
                    sign_of[src] if constrained else "\u00b1", ha="center", va="center",
                    fontsize=9, fontweight="bold",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.6))
    ax.set_yticks([(a + b - 1) / 2 for a, b in rows.values()], list(rows), fontsize=8)
    ax.set_xticks([(a + b - 1) / 2 for a, b in cols.values()], list(cols), fontsize=8,
                  rotation=90)
    ax.set(xlabel=f"from ({'recurrent' if matrix == 'recurrent' else 'input'} region)",
           ylabel="to (recurrent region)",
           title=title or f"{key} [to, from]" + ("" if W.size else ": no input regions"))
    _finish(ax.figure, path)
    return ax


def plot_region_activity(source, activity, regions=(), trials=3, dt: float | None = None,
                         batch_first: bool = True, path=None, title: str | None = None):
    """Plot each region's mean activity over time, one line per trial.

    **Arguments:**

    - `source`: the network's :class:`NetworkSpec`, ``Connectivity`` or ``Checkpoint``.
    - `activity`: ``[B, T, H]`` (``[T, B, H]`` if not `batch_first`) or
      ``[T, H]``: rates ``hs`` or pre-activations ``xs`` of any backend.
    - `regions`: region or parent names (a parent is averaged over all its
      children's units); default: every recurrent region, in network order.
    - `trials`: how many trials to draw (the first ones), or their indices.
    - `dt`: the step in ms, to label time in ms (default: in steps).
    - `path`: write the figure there; nothing is written otherwise.

    **Returns:** the figure, one panel per region.
    """
    import matplotlib

    from .connectivity import _offsets

    spec = _spec_of(source)
    act = _numpy(activity)
    if act.ndim == 2:
        act = act[None]
    elif act.ndim == 3 and not batch_first:
        act = act.transpose(1, 0, 2)
    if act.ndim != 3 or act.shape[-1] != spec.hidden_size:
        raise MRNNConfigError(
            f"activity: expected [B, T, H] or [T, H] with H={spec.hidden_size}, "
            f"got shape {tuple(np.shape(activity))}")
    picked = list(range(min(trials, act.shape[0]))) if isinstance(trials, int) else list(trials)
    bad = [k for k in picked if not -act.shape[0] <= k < act.shape[0]]
    if bad or not picked:
        raise MRNNConfigError(
            f"trials: expected indices below the {act.shape[0]} trials given, got {trials!r}")
    names = list(regions) or list(spec.recurrent_names)
    offsets = _offsets(spec.recurrent_regions)
    units = {n: np.concatenate([np.arange(*offsets[r]) for r in spec.expand(n)]) for n in names}

    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = _new_axes(path, rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True,
                             squeeze=False, layout="constrained")
    time = np.arange(1, act.shape[1] + 1) * (dt or 1.0)
    colours = matplotlib.colormaps["tab10"]
    for ax, name in zip(axes.flat, names):
        for j, k in enumerate(picked):
            ax.plot(time, act[k][:, units[name]].mean(axis=1), color=colours(j % 10), lw=1,
                    label=f"trial {k}")
        ax.set_title(f"{name} ({units[name].size} units)", fontsize=9)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("time (ms)" if dt else "step")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean activity")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title or "activity per region", fontsize=10)
    _finish(fig, path)
    return fig


def plot_loss(losses, ax=None, labels=None, smooth: int = 0, log: bool = True, path=None,
              title: str | None = None):
    """Plot a training loss against the optimiser step.

    **Arguments:**

    - `losses`: ``[steps]``, or ``[steps, N]`` for ``N`` runs (an ensemble's
      members), one line each.
    - `labels`: a name per run (default ``member 0..N-1`` when ``N > 1``).
    - `smooth`: draw the running mean over this many steps on top of the raw curve.
    - `log`: logarithmic loss axis (when every loss is positive).
    - `ax`, `path`, `title`: as in :func:`plot_connectivity`.

    **Returns:** the axes.
    """
    import matplotlib

    values = _numpy(losses)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0:
        raise MRNNConfigError(
            f"losses: expected [steps] or [steps, N] with at least one step, "
            f"got shape {tuple(np.shape(losses))}")
    n = values.shape[1]
    if labels is None:
        labels = [f"member {k}" for k in range(n)] if n > 1 else [None]
    if len(labels) != n:
        raise MRNNConfigError(f"labels: expected {n} names (one per run), got {len(labels)}")
    if ax is None:
        _, ax = _new_axes(path, figsize=(6, 4), layout="constrained")
    steps = np.arange(1, values.shape[0] + 1)
    colours = matplotlib.colormaps["tab10"]
    for k in range(n):
        colour = colours(k % 10)
        if smooth > 1 and values.shape[0] >= smooth:
            ax.plot(steps, values[:, k], color=colour, lw=0.5, alpha=0.35)
            window = np.ones(smooth) / smooth
            ax.plot(steps[smooth - 1:], np.convolve(values[:, k], window, mode="valid"),
                    color=colour, lw=1.5, label=labels[k])
        else:
            ax.plot(steps, values[:, k], color=colour, lw=1, label=labels[k])
    if log and np.all(values > 0):
        ax.set_yscale("log")
    ax.set(xlabel="optimiser step", ylabel="loss", title=title or "training loss")
    if any(label is not None for label in labels):
        ax.legend(fontsize=7, ncol=2 if n > 6 else 1)
    _finish(ax.figure, path)
    return ax

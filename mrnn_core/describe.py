"""A model's summary at a glance: the text both backends print as its ``repr``.

One function writes it, so a torch model and a JAX model of the same
network print the same text::

    mRNN(
      H=350, I=3, activation='tanh', spectral_radius=0.9
      regions: d1 50 neg [striatum], d2 50 neg [striatum], gpe 40 neg b=0.3,
               stn 30 pos b=0.2, snr 40 neg b=0.5, thal 50 pos, ...
      inputs: cue 3 pos
      connections: 15 recurrent (4 sparse), 3 input
    )

A region reads ``name units sign``, then ``[parent]``, ``b=...`` (a fixed
baseline other than 0; ``b learnable`` when it is trained) and ``x0=...``
(an initial pre-activation other than 0). Settings appear only where they
differ from :class:`Dynamics`' defaults.
"""

from __future__ import annotations

import dataclasses
import textwrap

from .dynamics import Dynamics
from .spec import NetworkSpec

WIDTH = 88
"""Lines of the region lists wrap at this many characters."""


def _number(value) -> str:
    """``0.3``, or ``min..max`` for a per-unit tuple."""
    if isinstance(value, tuple):
        low, high = min(value), max(value)
        return f"{low:g}" if low == high else f"{low:g}..{high:g}"
    return f"{value:g}"


def _is_zero(value) -> bool:
    return all(v == 0 for v in value) if isinstance(value, tuple) else value == 0


def _recurrent_item(region) -> str:
    words = [region.name, str(region.num_units), region.sign]
    if region.parent_region is not None:
        words.append(f"[{region.parent_region}]")
    if region.learnable_bias:
        words.append("b learnable")
    elif not _is_zero(region.base_firing):
        words.append(f"b={_number(region.base_firing)}")
    if region.learnable_init:
        words.append("x0 learnable")
    elif not _is_zero(region.init):
        words.append(f"x0={_number(region.init)}")
    if region.tau is not None or region.learnable_tau:
        words.append(("tau" if region.tau is None else f"tau={_number(region.tau)}")
                     + (" learnable" if region.learnable_tau else ""))
    if not region.trainable:
        words.append("frozen")
    return " ".join(words)


def _wrap(head: str, items: list[str]) -> str:
    """``head`` then ``a, b, c``, wrapped at :data:`WIDTH` with continuation lines aligned
    under the first item; an item is never split."""
    lines, line = [], head + items[0]
    for item in items[1:]:
        if len(line) + 2 + len(item) >= WIDTH:  # room for the trailing comma
            lines.append(line + ",")
            line = " " * len(head) + item
        else:
            line += ", " + item
    return "\n".join(lines + [line])


def _listing(label: str, items: list[str]) -> str:
    """``label: a, b, c``, or ``label: none``."""
    return _wrap(f"{label}: ", items) if items else f"{label}: none"


def _connections(spec: NetworkSpec) -> str:
    parts = []
    for label, connections in (("recurrent", spec.recurrent_connections),
                               ("input", spec.input_connections)):
        empty = sum(c.is_empty for c in connections)
        live = [c for c in connections if not c.is_empty]
        sparse = sum(c.sparsity is not None for c in live)
        density = sum(c.density is not None for c in live)
        masked = sum(c.mask is not None for c in live)
        frozen = sum(not c.trainable for c in connections)
        notes = [f"{n} {what}" for n, what in ((sparse, "sparse"), (density, "by density"),
                                               (masked, "masked"), (empty, "empty"),
                                               (frozen, "frozen")) if n]
        parts.append(f"{len(connections)} {label}" + (f" ({', '.join(notes)})" if notes else ""))
    return "connections: " + ", ".join(parts)


def _settings(dynamics: Dynamics) -> list[str]:
    defaults = Dynamics(kind=dynamics.kind)
    return [f"{f.name}={getattr(dynamics, f.name)!r}" for f in dataclasses.fields(Dynamics)
            if f.name != "kind" and getattr(dynamics, f.name) != getattr(defaults, f.name)]


def describe(spec: NetworkSpec, dynamics: Dynamics, *, open_sides=(), name: str | None = None) -> str:
    """The summary of a network: sizes, regions, inputs, connections, non-default settings.

    **Arguments:**

    - `spec`: the :class:`NetworkSpec`.
    - `dynamics`: the :class:`Dynamics`; only fields that differ from
      ``Dynamics(kind=dynamics.kind)`` are shown.
    - `open_sides`: the sides (``"recurrent"``, ``"input"``) not finalised
      yet, noted on a last line.
    - `name`: a class name; given, the text is wrapped as ``name(...)`` the
      way ``torch.nn.Module.__repr__`` wraps a multi-line ``extra_repr``.

    **Returns:** the text, several lines (no trailing newline).
    """
    head = _wrap("", [f"H={spec.hidden_size}", f"I={spec.input_size}", *_settings(dynamics)])
    lines = [head,
             _listing("regions", [_recurrent_item(r) for r in spec.recurrent_regions]),
             _listing("inputs", [f"{r.name} {r.num_units} {r.sign}" for r in spec.input_regions]),
             _connections(spec)]
    if open_sides:
        lines.append(f"not finalised: {' and '.join(open_sides)} connectivity still open")
    body = "\n".join(lines)
    if name is None:
        return body
    return f"{name}(\n" + textwrap.indent(body, "  ") + "\n)"

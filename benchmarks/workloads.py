"""The workloads of issue 6 (W1..W4) and the seeded arrays every run feeds them.

A *case* is one workload run with one kind of dynamics ("W2 leaky", "W2 elman").
Everything here is numpy: the torch and the JAX workers build their models and
inputs from the same checkpoint and the same arrays, so their outputs can be
compared after the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import mrnn_core

REPO = Path(__file__).resolve().parents[1]
CBGT_CONFIG = REPO / "examples" / "configs" / "cbgt_loop.json"
SEED = 0


def _two_regions(n_exc: int, n_inh: int, n_inputs: int) -> mrnn_core.NetworkSpec:
    """An E region and an I region, all four blocks dense, one input region into both."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("exc", n_exc, sign="pos")
            .with_recurrent_region("inh", n_inh, sign="neg")
            .with_input_region("inp", n_inputs))
    for src in ("exc", "inh"):
        for dst in ("exc", "inh"):
            spec = spec.with_recurrent_connection(src, dst)
    for dst in ("exc", "inh"):
        spec = spec.with_input_connection("inp", dst)
    return spec


def _ring(n_regions: int, units: int, n_inputs: int) -> mrnn_core.NetworkSpec:
    """Regions ``r0..r{n-1}``; each projects to itself and to the next one (``r{n-1} -> r0``).

    Every 4th region is inhibitory; the input region drives every region.
    """
    names = [f"r{k}" for k in range(n_regions)]
    spec = mrnn_core.NetworkSpec()
    for k, name in enumerate(names):
        spec = spec.with_recurrent_region(name, units, sign="neg" if k % 4 == 3 else "pos")
    spec = spec.with_input_region("inp", n_inputs)
    for k, name in enumerate(names):
        spec = spec.with_recurrent_connection(name, name)
        spec = spec.with_recurrent_connection(name, names[(k + 1) % n_regions])
        spec = spec.with_input_connection("inp", name)
    return spec


@dataclass(frozen=True)
class Workload:
    """One row of issue 6's table: a network, its activation, batch size and length."""

    name: str
    description: str
    spec: mrnn_core.NetworkSpec
    activation: str
    batch: int
    steps: int
    kinds: tuple[str, ...]
    # Scaling to a spectral radius keeps relu activity bounded; W4 skips it
    # because the eigenvalues of a 4000 x 4000 matrix cost more than its runs.
    spectral_radius: float | None = 0.9


def workloads() -> dict[str, Workload]:
    """W1..W4 exactly as issue 6 defines them."""
    return {w.name: w for w in (
        Workload("W1", "cortico-basal ganglia-thalamic config (8 regions, sparse blocks)",
                 mrnn_core.load_config(CBGT_CONFIG), "relu", 32, 200, ("leaky",)),
        Workload("W2", "E 320 (pos) + I 80 (neg), dense, 20 inputs",
                 _two_regions(320, 80, 20), "tanh", 64, 500, ("leaky", "elman")),
        Workload("W3", "2 x 32 units (pos, neg), dense, 4 inputs",
                 _two_regions(32, 32, 4), "tanh", 8, 1000, ("leaky", "elman")),
        Workload("W4", "8 x 500 units in a ring (self + next: 16 of 64 blocks), 64 inputs",
                 _ring(8, 500, 64), "tanh", 16, 100, ("leaky",), spectral_radius=None),
    )}


@dataclass(frozen=True)
class Case:
    """A workload with one kind of dynamics, possibly run for fewer steps (``--quick``)."""

    workload: Workload
    kind: str
    steps: int

    @property
    def label(self) -> str:
        return f"{self.workload.name} {self.kind}"

    @property
    def key(self) -> str:
        """Command-line form, ``W2:elman:500``."""
        return f"{self.workload.name}:{self.kind}:{self.steps}"

    @classmethod
    def from_key(cls, key: str) -> Case:
        name, kind, steps = key.split(":")
        return cls(workloads()[name], kind, int(steps))

    @property
    def hidden_size(self) -> int:
        return self.workload.spec.hidden_size

    @property
    def dense_flops(self) -> int:
        """Multiply-adds of the recurrent matmuls alone, counted dense: ``2 B H^2 T``."""
        return 2 * self.workload.batch * self.hidden_size**2 * self.steps

    def dynamics(self) -> mrnn_core.Dynamics:
        return mrnn_core.Dynamics(kind=self.kind, activation=self.workload.activation,
                                  spectral_radius=self.workload.spectral_radius)

    def checkpoint(self) -> mrnn_core.Checkpoint:
        return mrnn_core.Checkpoint.initialise(self.workload.spec, self.dynamics(), seed=SEED)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(inp [B, T, I], state [B, H])`` in float32; ``state`` is ``x0`` (leaky) or ``h0`` (Elman)."""
        rng = np.random.default_rng(SEED)
        B, T = self.workload.batch, self.steps
        inp = rng.standard_normal((B, T, self.workload.spec.input_size)).astype(np.float32)
        state = rng.uniform(-0.5, 0.5, (B, self.hidden_size)).astype(np.float32)
        return inp, state


def cases(names, quick: bool = False) -> list[Case]:
    """Every case of the named workloads; ``quick`` cuts each to a handful of steps."""
    table = workloads()
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown workload {unknown[0]!r}; expected some of {', '.join(table)}")
    out = []
    for name in names:
        w = table[name]
        steps = min(w.steps, 20) if quick else w.steps
        out.extend(Case(w, kind, steps) for kind in w.kinds)
    return out

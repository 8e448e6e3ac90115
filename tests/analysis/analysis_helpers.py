"""Networks with known answers, and helpers shared by the analysis tests.

Tolerances (float64): the finders polish every point with Newton steps to
rounding level, so a fixed point's error is about machine epsilon times the
condition number of ``J - I``; for the small, well-conditioned networks here
that stays below 1e-12. Comparisons use ``ATOL = 1e-9``.
"""

from __future__ import annotations

import numpy as np
import pytest

import mrnn_core
import mrnn_jax.analysis
import mrnn_torch.analysis

ATOL = 1e-9

BACKENDS = {"torch": mrnn_torch.analysis, "jax": mrnn_jax.analysis}


@pytest.fixture(params=sorted(BACKENDS))
def analysis(request):
    """The ``analysis`` subpackage of each backend in turn."""
    return BACKENDS[request.param]


def checkpoint(spec, W_rec, W_inp=None, base_firing=None, **dynamics) -> mrnn_core.Checkpoint:
    """A checkpoint of ``spec`` with the given raw weights (Dale's law off by default)."""
    dynamics = {"rec_constrained": False, "inp_constrained": False, **dynamics}
    ckpt = mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(**dynamics), seed=0)
    params = dict(ckpt.params, W_rec=np.asarray(W_rec, dtype=float))
    if W_inp is not None:
        params["W_inp"] = np.asarray(W_inp, dtype=float)
    if base_firing is not None:
        params["base_firing"] = np.asarray(base_firing, dtype=float)
    return mrnn_core.Checkpoint(spec, ckpt.dynamics, params)


def two_region_spec(coupled: bool = False, inputs: int = 0) -> mrnn_core.NetworkSpec:
    """Regions ``a`` and ``b`` of one unit each, each exciting itself (and ``b -> a`` if coupled)."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("a", 1, parent_region="pair")
            .with_recurrent_region("b", 1, parent_region="pair")
            .with_recurrent_connection("a", "a")
            .with_recurrent_connection("b", "b"))
    if coupled:
        spec = spec.with_recurrent_connection("b", "a")
    if inputs:
        spec = spec.with_input_region("cue", inputs).with_input_connection("cue", "a")
    return spec


def bistable_root(gain: float) -> float:
    """The positive root of ``x = gain * tanh(x)`` (gain > 1), by bisection."""
    lo, hi = 1e-9, gain + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid - gain * np.tanh(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def random_network(H: int, I: int, seed: int, gain: float = 1.5, kind: str = "leaky",
                   activation: str = "tanh") -> mrnn_core.Checkpoint:
    """Two dense regions (``e``: H - H // 3 units, ``i``: the rest) with Gaussian weights
    of standard deviation ``gain / sqrt(H)``, and ``I`` inputs into both."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", H - H // 3).with_recurrent_region("i", H // 3))
    for src in ("e", "i"):
        for dst in ("e", "i"):
            spec = spec.with_recurrent_connection(src, dst)
    if I:
        spec = spec.with_input_region("cue", I)
        spec = spec.with_input_connection("cue", "e").with_input_connection("cue", "i")
    rng = np.random.default_rng(seed)
    return checkpoint(spec, rng.normal(0.0, gain / np.sqrt(H), (H, H)),
                      rng.normal(0.0, 1.0, (H, I)), rng.normal(0.0, 0.1, H),
                      kind=kind, activation=activation,
                      **({"dt": 10.0, "tau": 50.0} if kind == "leaky" else {}))


def match(points_a, points_b, atol: float = ATOL) -> np.ndarray:
    """For each row of ``points_a`` the index of the row of ``points_b`` within ``atol``
    (max-norm); asserts that the two sets are the same."""
    a, b = np.asarray(points_a), np.asarray(points_b)
    assert a.shape == b.shape, f"{len(a)} points vs {len(b)}"
    index = []
    for p in a:
        d = np.max(np.abs(b - p), axis=1)
        assert d.min() <= atol, f"no match for {p} (closest at {d.min():.2e})"
        index.append(int(np.argmin(d)))
    assert len(set(index)) == len(index), "two points matched the same point"
    return np.asarray(index)

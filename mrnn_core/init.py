"""Seeded default weights (SEMANTICS.md section 3) and spectral-radius scaling."""

from __future__ import annotations

import math

import numpy as np

from .connectivity import Connectivity, Streams, _offsets, unit_tau
from .dynamics import Dynamics
from .errors import MRNNConfigError
from .spec import NetworkSpec

PARAM_NAMES = ("W_rec", "W_rec_mask", "W_rec_sign_matrix",
               "W_inp", "W_inp_mask", "W_inp_sign_matrix", "base_firing", "init", "tau")
"""The named arrays a backend-neutral parameter mapping holds."""


def effective_weight(W, mask, sign, constrained: bool):
    """``mask * |W| * sign`` under Dale's law, else ``W * mask`` (any array library)."""
    return mask * abs(W) * sign if constrained else W * mask


def _draw_blocks(spec: NetworkSpec, sources, connections, constrained: bool,
                 bound: float, rng: np.random.Generator) -> np.ndarray:
    dst = _offsets(spec.recurrent_regions)
    src = _offsets(sources)
    W = np.zeros((spec.hidden_size, sum(r.num_units for r in sources)))
    for c in connections:
        if c.zero_connection:
            continue
        (d0, d1), (s0, s1) = dst[c.dst_region], src[c.src_region]
        shape = (d1 - d0, s1 - s0)
        if constrained:
            W[d0:d1, s0:s1] = rng.uniform(0.0, bound, size=shape)
        else:
            std = math.sqrt(2.0 / (shape[0] + shape[1]))
            W[d0:d1, s0:s1] = rng.normal(0.0, std, size=shape)
    return W


def init_recurrent_weight(spec: NetworkSpec, constrained: bool,
                          rng: np.random.Generator) -> np.ndarray:
    """``[H, H]`` raw recurrent weights; undeclared and zero blocks are 0.

    Constrained blocks are ``U(0, sqrt(1 / (2H)))``; unconstrained blocks are
    Xavier normal per block, ``std = sqrt(2 / (n_src + n_dst))``.
    """
    bound = math.sqrt(1.0 / (2 * spec.hidden_size)) if spec.hidden_size else 0.0
    return _draw_blocks(spec, spec.recurrent_regions, spec.recurrent_connections,
                        constrained, bound, rng)


def init_input_weight(spec: NetworkSpec, constrained: bool,
                      rng: np.random.Generator) -> np.ndarray:
    """``[H, I]`` raw input weights: ``U(0, sqrt(1 / (H + I)))`` constrained, else Xavier."""
    total = spec.hidden_size + spec.input_size
    bound = math.sqrt(1.0 / total) if total else 0.0
    return _draw_blocks(spec, spec.input_regions, spec.input_connections,
                        constrained, bound, rng)


def spectral_radius(W) -> float:
    """``max |eig(W)|`` of a square matrix (0 for an empty one)."""
    W = np.asarray(W, dtype=float)
    return float(np.max(np.abs(np.linalg.eigvals(W)))) if W.size else 0.0


def scale_to_spectral_radius(W_rec, W_rec_eff, target: float) -> np.ndarray:
    """``W_rec * target / rho(W_rec_eff)``: the effective matrix then has radius ``target``.

    The factor is positive, so Dale's signs are kept. A matrix whose radius is
    zero (no recurrent loop, e.g. a purely feed-forward chain) cannot be scaled.
    """
    rho = spectral_radius(W_rec_eff)
    scale = np.linalg.norm(np.asarray(W_rec_eff, dtype=float), 2) if np.size(W_rec_eff) else 0.0
    if rho <= 1e-6 * scale or rho == 0.0:
        raise MRNNConfigError(
            f"spectral_radius={target!r}: the effective recurrent matrix has spectral "
            f"radius {rho:.3g} (no recurrent loop, e.g. no connections or a feed-forward "
            f"chain), so it cannot be scaled; expected a network with a recurrent loop "
            f"or spectral_radius=None"
        )
    return np.asarray(W_rec, dtype=float) * (target / rho)


def balance_ei(W_rec, W_rec_eff) -> np.ndarray:
    """``W_rec`` with each row's inhibitory entries scaled so the row's input cancels.

    In every row ``i`` of the effective matrix with both positive and
    negative entries, the negative entries are multiplied by
    ``c_i = sum_j max(W_eff_ij, 0) / sum_j max(-W_eff_ij, 0)``: then
    ``sum_j W_eff_ij = 0``, so a unit driven by equal presynaptic rates gets
    as much inhibition as excitation. Rows with only one sign are unchanged.
    The factor is positive, so Dale's signs are kept; the raw ``W_rec`` is
    scaled where the effective entry is negative.
    """
    W = np.array(W_rec, dtype=float)
    E = np.asarray(W_rec_eff, dtype=float)
    pos = np.where(E > 0, E, 0.0).sum(axis=1)
    neg = np.where(E < 0, -E, 0.0).sum(axis=1)
    both = (pos > 0) & (neg > 0)
    c = np.where(both, pos / np.where(both, neg, 1.0), 1.0)
    return np.where(E < 0, W * c[:, None], W)


def initial_params(connectivity: Connectivity, dynamics: Dynamics, seed=None,
                   streams: Streams | None = None) -> dict[str, np.ndarray]:
    """The full named-array mapping of a freshly initialised network.

    Use the same ``seed`` as :func:`build_connectivity` for a reproducible
    model: masks and weights come from separate streams of that seed.
    """
    spec = connectivity.spec
    streams = streams or Streams.from_seed(seed)
    W_rec = init_recurrent_weight(spec, dynamics.rec_constrained, streams.recurrent_weight)
    W_inp = init_input_weight(spec, dynamics.inp_constrained, streams.input_weight)
    eff = lambda W: effective_weight(W, connectivity.W_rec_mask,
                                     connectivity.W_rec_sign_matrix, dynamics.rec_constrained)
    if dynamics.balance_ei:
        W_rec = balance_ei(W_rec, eff(W_rec))
    if dynamics.spectral_radius is not None:
        W_rec = scale_to_spectral_radius(W_rec, eff(W_rec), dynamics.spectral_radius)
    return {
        "W_rec": W_rec,
        "W_rec_mask": np.array(connectivity.W_rec_mask),
        "W_rec_sign_matrix": np.array(connectivity.W_rec_sign_matrix),
        "W_inp": W_inp,
        "W_inp_mask": np.array(connectivity.W_inp_mask),
        "W_inp_sign_matrix": np.array(connectivity.W_inp_sign_matrix),
        "base_firing": np.array(connectivity.base_firing),
        "init": np.array(connectivity.init),
        "tau": unit_tau(spec, dynamics),
    }

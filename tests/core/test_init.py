"""Seeded initial weights and spectral-radius scaling (SEMANTICS.md section 3).

Sampling tolerance. Every statistical check below compares a sample statistic
with its exact value within 5 standard errors (a correct implementation fails
one check with probability about 6e-7; the seeds are fixed, so a run is
deterministic). For n draws of U(0, c): mean c/2 with standard error
c / sqrt(12 n); standard deviation c / sqrt(12) with standard error
c / sqrt(60 n) (from Var(s^2) = (mu_4 - sigma^4) / n = c^4 / (180 n)).
For n draws of N(0, sigma^2): mean 0 with standard error sigma / sqrt(n);
standard deviation sigma with standard error sigma / sqrt(2 (n - 1)).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.testing import network_specs

N_SE = 5
seeds = st.integers(0, 2**32 - 1)


def big_network():
    """H = 200, I = 50. ``a -> a`` and ``u -> a`` are declared while ``a`` (20
    units) is the only recurrent region, so their scale must still use the
    final totals."""
    return (mc.NetworkSpec()
            .with_recurrent_region("a", 20)
            .with_input_region("u", 50)
            .with_recurrent_connection("a", "a")
            .with_input_connection("u", "a")
            .with_recurrent_region("b", 180, sign="neg")
            .with_recurrent_connection("b", "a")
            .with_recurrent_connection("a", "b", sparsity=0.5)
            .with_input_connection("u", "b"))


def blocks(spec, stream):
    """(dst slice, src slice) of each non-empty declared block of one stream."""
    c = mc.build_connectivity(spec, seed=0)
    src_slices = c.recurrent_slices if stream == "recurrent" else c.input_slices
    connections = spec.recurrent_connections if stream == "recurrent" else spec.input_connections
    return [(c.recurrent_slices[k.dst_region], src_slices[k.src_region])
            for k in connections if not k.zero_connection]


def declared_entries(W, spec, stream):
    return np.concatenate([W[d, s].ravel() for d, s in blocks(spec, stream)])


def outside_declared(W, spec, stream):
    outside = np.ones(W.shape, dtype=bool)
    for d, s in blocks(spec, stream):
        outside[d, s] = False
    return W[outside]


def assert_uniform_sample(values, bound):
    n = values.size
    assert values.min() >= 0.0 and values.max() < bound
    assert abs(values.mean() - bound / 2) < N_SE * bound / math.sqrt(12 * n)
    assert abs(values.std() - bound / math.sqrt(12)) < N_SE * bound / math.sqrt(60 * n)


def assert_normal_sample(values, std):
    n = values.size
    assert abs(values.mean()) < N_SE * std / math.sqrt(n)
    assert abs(values.std(ddof=1) - std) < N_SE * std / math.sqrt(2 * (n - 1))


def test_constrained_recurrent_weights_are_uniform_on_0_to_sqrt_1_over_2H():
    spec = big_network()
    W = mc.init_recurrent_weight(spec, True, np.random.default_rng(1))
    bound = math.sqrt(1 / (2 * 200))
    assert_uniform_sample(declared_entries(W, spec, "recurrent"), bound)
    assert not outside_declared(W, spec, "recurrent").any()


def test_constrained_input_weights_are_uniform_on_0_to_sqrt_1_over_H_plus_I():
    spec = big_network()
    W = mc.init_input_weight(spec, True, np.random.default_rng(2))
    assert W.shape == (200, 50)
    assert_uniform_sample(declared_entries(W, spec, "input"), math.sqrt(1 / (200 + 50)))


def test_the_scale_uses_final_totals_not_the_totals_when_a_connection_was_added():
    # a -> a and u -> a were declared when H was 20; mRNNTorch would have used
    # sqrt(1/40) and sqrt(1/70), more than three times the bounds below.
    spec = big_network()
    c = mc.build_connectivity(spec, seed=0)
    a = c.region_slice("a")
    W_rec = mc.init_recurrent_weight(spec, True, np.random.default_rng(3))
    W_inp = mc.init_input_weight(spec, True, np.random.default_rng(4))
    assert_uniform_sample(W_rec[a, a].ravel(), math.sqrt(1 / 400))
    assert_uniform_sample(W_inp[a, :].ravel(), math.sqrt(1 / 250))


def test_unconstrained_blocks_are_xavier_normal_per_block():
    spec = big_network()
    c = mc.build_connectivity(spec, seed=0)
    a, b, u = c.region_slice("a"), c.region_slice("b"), c.region_slice("u")
    W_rec = mc.init_recurrent_weight(spec, False, np.random.default_rng(5))
    W_inp = mc.init_input_weight(spec, False, np.random.default_rng(6))
    # [n_dst, n_src] -> std sqrt(2 / (n_src + n_dst)); the 3600-entry blocks
    # pin the std to within 6 %, the 400-entry one to within 18 %.
    assert_normal_sample(W_rec[a, a].ravel(), math.sqrt(2 / 40))
    assert_normal_sample(W_rec[a, b].ravel(), math.sqrt(2 / 200))
    assert_normal_sample(W_rec[b, a].ravel(), math.sqrt(2 / 200))
    assert_normal_sample(W_inp[a, u].ravel(), math.sqrt(2 / 70))
    assert_normal_sample(W_inp[b, u].ravel(), math.sqrt(2 / 230))
    assert not W_rec[b, b].any()


@given(network_specs(), seeds, st.booleans(), st.booleans())
def test_initial_weights_stay_in_their_blocks_and_bounds(spec, seed, rec_c, inp_c):
    dynamics = mc.Dynamics(rec_constrained=rec_c, inp_constrained=inp_c)
    params = mc.initial_params(mc.build_connectivity(spec, seed), dynamics, seed=seed)
    H, I = spec.hidden_size, spec.input_size
    assert params["W_rec"].shape == (H, H) and params["W_inp"].shape == (H, I)
    for name, stream, constrained, bound in (
            ("W_rec", "recurrent", rec_c, math.sqrt(1 / (2 * H))),
            ("W_inp", "input", inp_c, math.sqrt(1 / (H + I)))):
        W = params[name]
        assert not outside_declared(W, spec, stream).any()
        if constrained and W.size:
            assert W.min() >= 0.0 and W.max() < bound


def test_same_seed_gives_identical_arrays_and_different_seeds_different_masks():
    spec = big_network()
    dynamics = mc.Dynamics()
    first = mc.Checkpoint.initialise(spec, dynamics, seed=123).params
    again = mc.Checkpoint.initialise(spec, dynamics, seed=123).params
    other = mc.Checkpoint.initialise(spec, dynamics, seed=124).params
    assert set(first) == set(mc.PARAM_NAMES)
    for name in mc.PARAM_NAMES:
        np.testing.assert_array_equal(first[name], again[name])
    # The half-sparse 180 x 20 block makes equal masks impossible in practice.
    assert not np.array_equal(first["W_rec_mask"], other["W_rec_mask"])
    assert not np.array_equal(first["W_rec"], other["W_rec"])


def has_recurrent_loop(mask):
    """True when the unit graph of ``mask`` has a cycle, i.e. its 0/1
    adjacency matrix is not nilpotent (some walk of length H exists)."""
    A = (np.asarray(mask) != 0).astype(np.int64)
    walks = np.eye(A.shape[0], dtype=np.int64)
    for _ in range(A.shape[0]):
        walks = np.minimum(walks @ A, 1)
    return bool(walks.any())


@given(network_specs(), seeds, st.booleans(), st.floats(0.1, 3.0))
def test_spectral_radius_is_hit_or_rejected_without_a_loop(spec, seed, constrained, rho):
    connectivity = mc.build_connectivity(spec, seed)
    dynamics = mc.Dynamics(rec_constrained=constrained, spectral_radius=rho)
    if not has_recurrent_loop(connectivity.W_rec_mask):
        with pytest.raises(mc.MRNNConfigError, match=r"cannot be scaled.*recurrent loop"):
            mc.initial_params(connectivity, dynamics, seed=seed)
        return
    unscaled = mc.initial_params(connectivity, mc.Dynamics(rec_constrained=constrained), seed=seed)
    params = mc.initial_params(connectivity, dynamics, seed=seed)
    M, S, W = params["W_rec_mask"], params["W_rec_sign_matrix"], params["W_rec"]
    W_eff = M * np.abs(W) * S if constrained else W * M
    assert abs(np.max(np.abs(np.linalg.eigvals(W_eff))) - rho) < 1e-6
    # A positive rescaling of the unscaled draw: Dale's signs are unchanged.
    ratio = W[W != 0] / unscaled["W_rec"][W != 0]
    assert (ratio > 0).all() and np.allclose(ratio, ratio[0], rtol=1e-12)


@pytest.mark.parametrize("spec", [
    mc.NetworkSpec().with_recurrent_region("a", 3),
    (mc.NetworkSpec().with_recurrent_region("a", 3).with_recurrent_region("b", 2)
     .with_recurrent_region("c", 4).with_recurrent_connection("a", "b")
     .with_recurrent_connection("b", "c")),
], ids=["no-connections", "feed-forward-chain"])
def test_spectral_radius_without_a_recurrent_loop_is_rejected(spec):
    with pytest.raises(mc.MRNNConfigError,
                       match=r"spectral_radius=0\.9.*no recurrent loop.*spectral_radius=None"):
        mc.Checkpoint.initialise(spec, mc.Dynamics(spectral_radius=0.9), seed=0)

"""The numpy definitions of mrnn_core.losses, checked by independent routes.

Each value is recomputed another way: boolean indexing instead of a weighted
sum, numpy's ``std``/``linalg.norm``, slices from a built Connectivity, or a
whole that must equal the sum of its parts. Exact comparisons use 1e-12
(float64 sums of at most a few hundred terms in a different order).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core import losses as L
from mrnn_core.testing import arrays, network_specs

TOL = dict(rtol=1e-12, atol=1e-12)

SPEC = (mc.NetworkSpec()
        .with_recurrent_region("exc", 3, parent_region="ctx")
        .with_recurrent_region("thal", 2)
        .with_recurrent_region("inh", 2, sign="neg", parent_region="ctx")
        .with_input_region("cue", 2)
        .with_input_region("go", 1))
"""7 units; the parent ``ctx`` is split by ``thal`` (units 0-2 and 5-6)."""

rngs = st.integers(0, 2**32 - 1).map(np.random.default_rng)


# mse -------------------------------------------------------------------------

def test_mse_of_a_small_case_by_hand():
    assert L.mse([[1.0, 2.0]], [[0.0, 0.0]]) == pytest.approx(2.5)
    assert L.mse([[1.0, 2.0]], [[0.0, 0.0]], mask=[[0.0, 1.0]]) == pytest.approx(4.0)


@given(rngs, st.integers(1, 3), st.integers(1, 5), st.integers(1, 3))
def test_mse_with_a_full_01_mask_is_the_mean_over_the_kept_entries(rng, B, T, O):
    y, t = rng.normal(size=(B, T, O)), rng.normal(size=(B, T, O))
    mask = rng.random((B, T, O)) < 0.5
    expected = ((y - t)[mask] ** 2).mean() if mask.any() else 0.0
    np.testing.assert_allclose(L.mse(y, t, mask), expected, **TOL)
    np.testing.assert_allclose(L.mse(y, t, mask.astype(float)), expected, **TOL)


@given(rngs, st.integers(1, 3), st.integers(1, 5), st.integers(1, 3))
def test_a_step_mask_weighs_every_output_of_the_kept_steps(rng, B, T, O):
    y, t = rng.normal(size=(B, T, O)), rng.normal(size=(B, T, O))
    keep = rng.random((B, T)) < 0.6
    expected = ((y - t)[keep] ** 2).mean() if keep.any() else 0.0
    np.testing.assert_allclose(L.mse(y, t, keep), expected, **TOL)
    # time-first layout with a per-step mask [T]: the same steps for every trial
    steps = keep[0]
    expected = ((y - t)[:, steps] ** 2).mean() if steps.any() else 0.0
    np.testing.assert_allclose(L.mse(y.transpose(1, 0, 2), t.transpose(1, 0, 2), steps),
                               expected, **TOL)
    np.testing.assert_allclose(L.mse(y, t, steps[None, :]), expected, **TOL)


@given(rngs)
def test_an_all_ones_mask_of_any_lined_up_shape_is_the_plain_mean(rng):
    y, t = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    plain = L.mse(y, t)
    np.testing.assert_allclose(plain, np.linalg.norm(y - t) ** 2 / y.size, **TOL)
    for shape in [(), (2,), (1, 4), (2, 4), (2, 1, 3), (2, 4, 3)]:
        np.testing.assert_allclose(L.mse(y, t, np.ones(shape)), plain, **TOL)


def test_an_all_zero_mask_gives_zero_and_a_light_mask_is_divided_by_one():
    y, t = np.ones((2, 3, 1)), np.zeros((2, 3, 1))
    assert L.mse(y, t, np.zeros((2, 3))) == 0.0
    light = np.zeros((2, 3))
    light[0, 1] = 0.5
    assert L.mse(y, t, light) == pytest.approx(0.5)


@pytest.mark.parametrize("targets, mask, match", [
    ((2, 4), None, r"targets: expected the shape of outputs \(2, 4, 3\), got \(2, 4\)"),
    ((2, 4, 3), (3,), r"mask: expected a shape matching the leading axes of outputs \(2, 4, 3\).*got \(3,\)"),
    ((2, 4, 3), (4,), r"mask: .*got \(4,\)"),
    ((2, 4, 3), (2, 4, 3, 1), r"mask: .*got \(2, 4, 3, 1\)"),
])
def test_mse_rejects_shapes_that_do_not_line_up(targets, mask, match):
    with pytest.raises(mc.MRNNConfigError, match=match):
        L.mse(np.zeros((2, 4, 3)), np.zeros(targets), None if mask is None else np.ones(mask))


# weight norms ----------------------------------------------------------------

@given(rngs, st.integers(1, 6), st.integers(1, 6))
def test_weight_norms_are_frobenius_squared_and_entrywise_l1(rng, n, m):
    W = rng.normal(size=(n, m))
    np.testing.assert_allclose(L.weight_l2(W), np.linalg.norm(W, "fro") ** 2, **TOL)
    np.testing.assert_allclose(L.weight_l1(W), np.linalg.norm(W.ravel(), 1), **TOL)


@pytest.mark.parametrize("f", [L.weight_l2, L.weight_l1])
@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()])
def test_weight_norms_want_a_matrix(f, shape):
    with pytest.raises(mc.MRNNConfigError, match=rf"W: expected a 2-D weight matrix.*got {len(shape)}-D"):
        f(np.zeros(shape))


# projection penalties --------------------------------------------------------

@given(network_specs(max_units=5), rngs)
def test_the_blocks_of_all_region_pairs_add_up_to_the_whole_matrix(spec, rng):
    H, I = spec.hidden_size, spec.input_size
    W_rec, W_inp = rng.normal(size=(H, H)), rng.normal(size=(H, I))
    for kind, whole in (("l2", L.weight_l2), ("l1", L.weight_l1)):
        parts = sum(L.projection_penalty(W_rec, spec, s, d, kind)
                    for s in spec.recurrent_names for d in spec.recurrent_names)
        np.testing.assert_allclose(parts, whole(W_rec), **TOL)
        if I:
            parts = sum(L.projection_penalty(W_inp, spec, s, d, kind, side="input")
                        for s in spec.input_names for d in spec.recurrent_names)
            np.testing.assert_allclose(parts, whole(W_inp), **TOL)


@given(rngs)
def test_a_projection_is_the_block_the_connectivity_slices_give(rng):
    c = mc.build_connectivity(SPEC, seed=0)
    W, W_inp = rng.normal(size=(7, 7)), rng.normal(size=(7, 3))
    for s in SPEC.recurrent_names:
        for d in SPEC.recurrent_names:
            block = W[c.region_slice(d), c.region_slice(s)]
            np.testing.assert_allclose(L.projection_penalty(W, SPEC, s, d), (block ** 2).sum(), **TOL)
            np.testing.assert_allclose(L.projection_penalty(W, c, s, d, "l1"), np.abs(block).sum(), **TOL)
    block = W_inp[c.region_slice("thal"), c.region_slice("go")]
    np.testing.assert_allclose(L.projection_penalty(W_inp, SPEC, "go", "thal", side="input"),
                               (block ** 2).sum(), **TOL)


@given(rngs, st.sampled_from(["l2", "l1"]))
def test_a_parent_is_the_sum_of_its_children(rng, kind):
    W, W_inp = rng.normal(size=(7, 7)), rng.normal(size=(7, 3))
    p = lambda s, d, **kw: L.projection_penalty(W, SPEC, s, d, kind, **kw)  # noqa: E731
    np.testing.assert_allclose(p("ctx", "thal"), p("exc", "thal") + p("inh", "thal"), **TOL)
    np.testing.assert_allclose(p("thal", "ctx"), p("thal", "exc") + p("thal", "inh"), **TOL)
    np.testing.assert_allclose(
        p("ctx", "ctx"), sum(p(s, d) for s in ("exc", "inh") for d in ("exc", "inh")), **TOL)
    pi = lambda d: L.projection_penalty(W_inp, SPEC, "cue", d, kind, side="input")  # noqa: E731
    np.testing.assert_allclose(pi("ctx"), pi("exc") + pi("inh"), **TOL)


def test_the_layout_lives_in_the_core():
    rows, cols = L.projection_indices(SPEC, "thal", "ctx")
    np.testing.assert_array_equal(rows, [0, 1, 2, 5, 6])
    np.testing.assert_array_equal(cols, [3, 4])
    rows, cols = L.projection_indices(SPEC, "go", "exc", side="input")
    np.testing.assert_array_equal(rows, [0, 1, 2])
    np.testing.assert_array_equal(cols, [2])
    np.testing.assert_array_equal(L.unit_indices(SPEC, ["inh", "ctx"]), [0, 1, 2, 5, 6])


@pytest.mark.parametrize("call, match", [
    (dict(src="ctz", dst="thal"), r"src: unknown region 'ctz'.*did you mean 'ctx'"),
    (dict(src="thal", dst="exx"), r"dst: unknown region 'exx'.*did you mean 'exc'"),
    (dict(src="cue", dst="thal"), r"src: 'cue' is an input region; expected a recurrent region or parent"),
    (dict(src="thal", dst="cue"), r"dst: unknown region 'cue'; 'cue' is an input region"),
    (dict(src="exc", dst="thal", side="input", W=(7, 3)), r"src: expected an input region for side='input', got 'exc'"),
    (dict(src="exc", dst="thal", side="inp"), r"side: expected one of 'recurrent', 'input', got 'inp'"),
    (dict(src="exc", dst="thal", kind="l3"), r"kind: expected one of 'l2', 'l1', got 'l3'"),
    (dict(src="exc", dst="thal", W=(7, 3)), r"W: expected the recurrent matrix \[H, H\] = \(7, 7\), got \(7, 3\)"),
    (dict(src="cue", dst="thal", side="input", W=(7, 7)), r"W: expected the input matrix \[H, I\] = \(7, 3\), got \(7, 7\)"),
    (dict(src="exc", dst="thal", W=(49,)), r"W: expected a 2-D weight matrix.*got 1-D"),
])
def test_projection_penalty_names_the_culprit(call, match):
    call = dict(call)
    W = np.zeros(call.pop("W", (7, 7)))
    with pytest.raises(mc.MRNNConfigError, match=match):
        L.projection_penalty(W, SPEC, **call)


def test_projection_penalty_wants_a_spec():
    with pytest.raises(mc.MRNNConfigError, match=r"spec: expected a mrnn_core.NetworkSpec.*got dict"):
        L.projection_penalty(np.zeros((7, 7)), {}, "exc", "thal")


@given(rngs)
def test_weight_penalty_sums_the_chosen_matrices(rng):
    weights = {"W_rec": rng.normal(size=(4, 4)), "W_inp": rng.normal(size=(4, 2)),
               "readout": rng.normal(size=(1, 3))}
    for kind, f in (("l2", L.weight_l2), ("l1", L.weight_l1)):
        np.testing.assert_allclose(L.weight_penalty(weights, kind),
                                   sum(f(w) for w in weights.values()), **TOL)
        np.testing.assert_allclose(L.weight_penalty(weights, kind, which=("W_rec", "readout")),
                                   f(weights["W_rec"]) + f(weights["readout"]), **TOL)
    with pytest.raises(mc.MRNNConfigError, match=r"which: unknown weight 'W_recc'.*did you mean 'W_rec'"):
        L.weight_penalty(weights, which=["W_recc"])
    with pytest.raises(mc.MRNNConfigError, match=r"weights: expected a mapping.*got tuple"):
        L.weight_penalty((weights["W_rec"],))


# rate penalties --------------------------------------------------------------

@given(rngs, st.integers(1, 3), st.integers(1, 4))
def test_rate_l2_is_the_mean_square_overall_and_per_region(rng, B, T):
    h = rng.normal(size=(B, T, 7))
    np.testing.assert_allclose(L.rate_l2(h), np.linalg.norm(h) ** 2 / h.size, **TOL)
    np.testing.assert_allclose(L.rate_l2(h, SPEC, ["exc", "thal", "inh"]), L.rate_l2(h), **TOL)
    np.testing.assert_allclose(L.rate_l2(h, SPEC, "thal"), (h[..., 3:5] ** 2).mean(), **TOL)
    per = L.rate_l2(h, SPEC, per_region=True)
    assert list(per) == ["exc", "thal", "inh"]
    sizes = {"exc": 3, "thal": 2, "inh": 2}
    np.testing.assert_allclose(sum(per[n] * sizes[n] for n in per) / 7, L.rate_l2(h), **TOL)
    # a parent pools its children's units: the size-weighted mean of theirs
    np.testing.assert_allclose(L.rate_l2(h, SPEC, "ctx"), (3 * per["exc"] + 2 * per["inh"]) / 5, **TOL)
    np.testing.assert_allclose(L.rate_l2(h, SPEC, ["ctx", "thal"], per_region=True)["ctx"],
                               L.rate_l2(h, SPEC, "ctx"), **TOL)


@pytest.mark.parametrize("call, match", [
    (dict(regions="exc"), r"spec: expected a NetworkSpec to find the units of named regions.*got None"),
    (dict(per_region=True), r"spec: expected a NetworkSpec"),
    (dict(spec=SPEC, regions="exx"), r"regions: unknown region 'exx'.*did you mean 'exc'"),
    (dict(spec=SPEC, regions=()), r"regions: expected a region or parent name or a non-empty sequence"),
    (dict(spec=SPEC, shape=(2, 6)), r"hs: expected rates \[..., H\] with H = 7 units in the last axis, got shape \(2, 6\)"),
    (dict(shape=()), r"hs: expected rates \[..., H\] with at least one axis, got a scalar"),
])
def test_rate_l2_names_the_culprit(call, match):
    call = dict(call)
    h = np.zeros(call.pop("shape", (2, 7)))
    with pytest.raises(mc.MRNNConfigError, match=match):
        L.rate_l2(h, **call)


@given(rngs, st.integers(0, 2))
def test_rate_std_and_cv_are_numpys_population_statistics(rng, axis):
    h = rng.uniform(0.1, 2.0, size=(2, 3, 5))
    np.testing.assert_allclose(L.rate_std(h, axis=axis), np.std(h, axis=axis, ddof=0).mean(), **TOL)
    np.testing.assert_allclose(L.rate_std(h), np.std(h, axis=-1).mean(), **TOL)
    cv = np.std(h, axis=axis) / (np.mean(h, axis=axis) + 1e-3)
    np.testing.assert_allclose(L.rate_cv(h, eps=1e-3, axis=axis), cv.mean(), **TOL)
    # the CV ignores the scale of the rates (up to eps)
    np.testing.assert_allclose(L.rate_cv(7.0 * h, eps=0.0), L.rate_cv(h, eps=0.0), **TOL)


def test_rate_spread_of_two_units_by_hand():
    h = np.array([[0.0, 2.0], [1.0, 1.0]])
    assert L.rate_std(h) == pytest.approx(0.5)
    assert L.rate_cv(h, eps=0.0) == pytest.approx(0.5)


@pytest.mark.parametrize("f", [L.rate_std, L.rate_cv])
def test_rate_spread_names_a_bad_axis(f):
    with pytest.raises(mc.MRNNConfigError, match=r"axis: expected an integer in \[-2, 1\].*got 2"):
        f(np.zeros((3, 4)), axis=2)
    with pytest.raises(mc.MRNNConfigError, match=r"hs: expected rates .*got a scalar"):
        f(np.float64(1.0))


def test_a_connectivity_stands_in_for_its_spec():
    h = np.random.default_rng(0).normal(size=(3, 7))
    c = mc.build_connectivity(SPEC, seed=0)
    assert L.rate_l2(h, c, "ctx") == L.rate_l2(h, SPEC, "ctx")

"""The readout's spec, its unit selection, default weights and numpy reference (mrnn_core.readout)."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.readout import (ReadoutSpec, apply_readout, check_readout_params, checkpoint_readout,
                               checkpoint_with_readout, describe_readout, init_readout, readout_units)
from mrnn_core.testing import network_specs


def _spec():
    """ctx (3, exc) | thal (2, inh) | d1 (2, exc, parent str) | d2 (1, inh, parent str); H = 8."""
    return (mc.NetworkSpec()
            .with_recurrent_region("ctx", 3)
            .with_recurrent_region("thal", 2, sign="neg")
            .with_recurrent_region("d1", 2, parent_region="str")
            .with_recurrent_region("d2", 1, sign="inhib", parent_region="str")
            .with_input_region("cue", 2))


# ReadoutSpec ---------------------------------------------------------------------


def test_spec_keeps_names_as_a_tuple_and_accepts_one_name():
    assert ReadoutSpec(["ctx", "str"], 2).regions == ("ctx", "str")
    assert ReadoutSpec("ctx", 2).regions == ("ctx",)


@pytest.mark.parametrize("kwargs, message", [
    (dict(regions=(), out_features=1), r"readout regions: expected at least one region or parent name, got none"),
    (dict(regions=("ctx", ""), out_features=1), r"readout regions: expected non-empty region names, got ''"),
    (dict(regions=("ctx", 3), out_features=1), r"readout regions: expected non-empty region names, got 3"),
    (dict(regions=5, out_features=1), r"readout regions: expected a region name or a sequence of names, got 5"),
    (dict(regions="ctx", out_features=0), r"readout out_features: expected an integer >= 1, got 0"),
    (dict(regions="ctx", out_features=2.0), r"readout out_features: expected an integer >= 1, got 2\.0"),
    (dict(regions="ctx", out_features=True), r"readout out_features: expected an integer >= 1, got True"),
    (dict(regions="ctx", out_features=1, dale="yes"), r"readout dale: expected true or false, got 'yes'"),
    (dict(regions="ctx", out_features=1, bias=1), r"readout bias: expected true or false, got 1"),
])
def test_spec_rejects_bad_fields(kwargs, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        ReadoutSpec(**kwargs)


@given(st.lists(st.sampled_from(["ctx", "str", "d1"]), min_size=1, max_size=3),
       st.integers(1, 9), st.booleans(), st.booleans())
def test_spec_survives_a_json_round_trip(regions, out_features, dale, bias):
    spec = ReadoutSpec(tuple(regions), out_features, dale, bias)
    assert ReadoutSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("d, message", [
    ({"regions": ["ctx"], "out_feature": 2}, r"readout: unknown key 'out_feature'.*did you mean 'out_features'"),
    ({"regions": ["ctx"]}, r"readout: missing required key 'out_features'"),
    ({"out_features": 2}, r"readout: missing required key 'regions'"),
    (["ctx"], r"readout: expected a mapping, got list"),
])
def test_from_dict_names_the_bad_key(d, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        ReadoutSpec.from_dict(d)


# readout_units -------------------------------------------------------------------


@pytest.mark.parametrize("regions, dale, expected", [
    (("ctx",), False, [0, 1, 2]),
    (("str", "ctx"), False, [0, 1, 2, 5, 6, 7]),     # hidden order, not the caller's
    (("d1", "str"), False, [5, 6, 7]),               # a unit named twice is read once
    (("thal", "d2"), False, [3, 4, 7]),
    (("ctx", "thal", "str"), True, [0, 1, 2, 5, 6]),  # Dale: inhibitory regions dropped
])
def test_units_are_the_named_regions_in_hidden_order(regions, dale, expected):
    idx = readout_units(_spec(), ReadoutSpec(regions, 1, dale=dale))
    assert idx.tolist() == expected


def test_dale_readout_of_only_inhibitory_regions_is_an_error():
    with pytest.raises(mc.MRNNConfigError,
                       match=r"readout regions \('thal', 'd2'\): dale=True reads only excitatory "
                             r"\(sign 'pos'\) regions, but none of these is excitatory"):
        readout_units(_spec(), ReadoutSpec(("thal", "d2"), 1, dale=True))


@pytest.mark.parametrize("name, message", [
    ("ctxx", r"readout regions \('ctxx',\): unknown region 'ctxx'; known regions and parents: "
             r"'ctx', 'thal', 'd1', 'd2', 'str' \(did you mean 'ctx'\?\)"),
    ("cue", r"unknown region 'cue'; 'cue' is an input region, expected a recurrent region or parent"),
])
def test_unknown_or_input_region_is_an_error_listing_the_known_ones(name, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        readout_units(_spec(), ReadoutSpec(name, 1))


@st.composite
def _spec_and_readout(draw):
    spec = draw(network_specs())
    names = list(spec.recurrent_names) + list(spec.parents)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    return spec, ReadoutSpec(tuple(chosen), draw(st.integers(1, 4)), dale=draw(st.booleans()))


@given(_spec_and_readout())
def test_units_match_the_regions_layout(case):
    spec, readout = case
    layout = mc.Checkpoint.initialise(spec, seed=0).connectivity
    wanted = {i for name in readout.regions for i in layout.unit_indices(name).tolist()
              if not readout.dale or _sign_of_unit(spec, i) == "pos"}
    if not wanted:
        with pytest.raises(mc.MRNNConfigError, match="none of these is excitatory"):
            readout_units(spec, readout)
        return
    assert readout_units(spec, readout).tolist() == sorted(wanted)


def _sign_of_unit(spec, i):
    for r in spec.recurrent_regions:
        if i < r.num_units:
            return r.sign
        i -= r.num_units


# init_readout ----------------------------------------------------------------------


def test_default_weights_follow_torch_linear_rule():
    spec = mc.NetworkSpec().with_recurrent_region("a", 100)
    p = init_readout(spec, ReadoutSpec("a", 60), np.random.default_rng(0))
    k = 1 / math.sqrt(100)
    assert p["W"].shape == (60, 100) and p["b"].shape == (60,)
    W = p["W"].ravel()
    # U(-k, k): mean 0, variance k^2 / 3; 6000 draws put both well inside these bounds.
    assert np.all(np.abs(W) <= k) and W.min() < -0.95 * k and W.max() > 0.95 * k
    assert abs(W.mean()) < 4 * k / math.sqrt(3 * W.size)
    assert W.var() == pytest.approx(k**2 / 3, rel=0.1)
    assert np.all(np.abs(p["b"]) <= k) and p["b"].min() < 0 < p["b"].max()


def test_dale_default_weights_are_non_negative_and_fill_zero_to_k():
    spec = mc.NetworkSpec().with_recurrent_region("a", 100)
    W = init_readout(spec, ReadoutSpec("a", 60, dale=True), np.random.default_rng(0))["W"]
    k = 1 / math.sqrt(100)
    assert W.min() >= 0 and W.max() <= k and W.max() > 0.95 * k
    assert W.mean() == pytest.approx(k / 2, rel=0.05)


def test_default_weights_are_reproducible_from_a_seed_and_differ_across_seeds():
    spec, readout = _spec(), ReadoutSpec(("ctx", "str"), 3)
    a, b, c = (init_readout(spec, readout, s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a["W"], b["W"])
    np.testing.assert_array_equal(a["b"], b["b"])
    assert not np.array_equal(a["W"], c["W"])


def test_no_bias_means_zero_b():
    p = init_readout(_spec(), ReadoutSpec("ctx", 2, bias=False), 0)
    np.testing.assert_array_equal(p["b"], np.zeros(2))


def test_bad_seed_is_an_error():
    with pytest.raises(mc.MRNNConfigError, match=r"readout seed: expected a non-negative integer.*got -1"):
        init_readout(_spec(), ReadoutSpec("ctx", 2), -1)


# apply_readout -------------------------------------------------------------------------


@pytest.mark.parametrize("dale", [False, True])
@pytest.mark.parametrize("lead", [(), (5,), (2, 4)])
def test_apply_is_a_sum_over_the_read_units(dale, lead):
    spec = _spec()
    readout = ReadoutSpec(("str", "ctx"), 2, dale=dale)
    rng = np.random.default_rng(1)
    idx = [0, 1, 2, 5, 6] if dale else [0, 1, 2, 5, 6, 7]
    W, b = rng.uniform(-1, 1, size=(2, len(idx))), rng.uniform(-1, 1, size=2)
    hs = rng.normal(size=lead + (8,))
    y = apply_readout({"W": W, "b": b}, readout, hs, spec)
    expected = np.zeros(lead + (2,))
    for o in range(2):
        expected[..., o] = b[o]
        for j, unit in enumerate(idx):
            expected[..., o] += (abs(W[o, j]) if dale else W[o, j]) * hs[..., unit]
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)


def test_apply_ignores_the_units_not_read():
    spec, readout = _spec(), ReadoutSpec("str", 1, dale=True)
    p = init_readout(spec, readout, 0)
    hs = np.random.default_rng(0).normal(size=(3, 8))
    changed = hs.copy()
    changed[:, [0, 1, 2, 3, 4, 7]] += 100.0  # everything but d1, the one excitatory child
    np.testing.assert_array_equal(apply_readout(p, readout, hs, spec),
                                  apply_readout(p, readout, changed, spec))


@pytest.mark.parametrize("make, message", [
    (lambda: dict(params={"W": np.zeros((2, 3)), "b": np.zeros(2)}, hs=np.zeros((4, 7))),
     r"readout input hs: expected shape \[\.\.\., 8\] .*got \[4, 7\]"),
    (lambda: dict(params={"W": np.zeros((2, 4)), "b": np.zeros(2)}, hs=np.zeros(8)),
     r"readout W: expected shape \(2, 3\) \(out_features, units read from \('ctx',\)\), got \(2, 4\)"),
    (lambda: dict(params={"W": np.zeros((2, 3)), "b": np.zeros(3)}, hs=np.zeros(8)),
     r"readout b: expected shape \(2,\) \(out_features,\), got \(3,\)"),
])
def test_apply_rejects_wrong_shapes(make, message):
    kwargs = make()
    with pytest.raises(mc.MRNNConfigError, match=message):
        apply_readout(kwargs["params"], ReadoutSpec("ctx", 2), kwargs["hs"], _spec())


def test_a_readout_without_bias_rejects_a_nonzero_b_and_accepts_none():
    readout = ReadoutSpec("ctx", 2, bias=False)
    with pytest.raises(mc.MRNNConfigError, match=r"readout b: the readout has bias=False, so b must be zero"):
        check_readout_params(_spec(), readout, np.zeros((2, 3)), np.ones(2))
    np.testing.assert_array_equal(check_readout_params(_spec(), readout, np.zeros((2, 3)))["b"], [0, 0])


def test_description_shows_non_default_flags_only():
    assert describe_readout(ReadoutSpec("ctx", 2), 3) == "regions=('ctx',), in_units=3, out_features=2"
    assert describe_readout(ReadoutSpec(("a", "b"), 1, dale=True, bias=False), 4) == (
        "regions=('a', 'b'), in_units=4, out_features=1, dale=True, bias=False")


# in a Checkpoint -------------------------------------------------------------------------


def _ckpt_with_readout(readout=ReadoutSpec(("str", "ctx"), 2, dale=True)):
    ckpt = mc.Checkpoint.initialise(_spec(), seed=0)
    p = init_readout(_spec(), readout, 1)
    return checkpoint_with_readout(ckpt, readout, p["W"], p["b"]), p


def test_checkpoint_file_keeps_the_readout_bit_identical(tmp_path):
    ckpt, p = _ckpt_with_readout()
    ckpt.save(tmp_path / "m.npz")
    loaded = mc.Checkpoint.load(tmp_path / "m.npz")
    assert loaded.readout == ckpt.readout
    readout, params = checkpoint_readout(loaded)
    assert readout == ReadoutSpec(("str", "ctx"), 2, dale=True)
    for key in ("W", "b"):
        assert params[key].dtype == np.float64 and params[key].tobytes() == p[key].tobytes()


def test_checkpoint_without_readout_saves_and_loads_none(tmp_path):
    mc.Checkpoint.initialise(_spec(), seed=0).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        assert not any("readout" in k for k in data.files)
    loaded = mc.Checkpoint.load(tmp_path / "m.npz")
    assert loaded.readout is None
    with pytest.raises(mc.MRNNConfigError, match=r"checkpoint: it holds no readout"):
        checkpoint_readout(loaded)


def test_checkpoint_rejects_readout_arrays_that_do_not_fit():
    ckpt, p = _ckpt_with_readout()
    base = mc.Checkpoint.initialise(_spec(), seed=0)
    readout = ckpt.readout
    cases = [
        ({"readout_W": p["W"]}, r"Checkpoint.params: missing 'readout_b', expected shape \(2,\)"),
        ({"readout_W": p["W"][:, :3], "readout_b": p["b"]},
         r"Checkpoint.params\['readout_W'\]: expected shape \(2, 5\) for the readout of "
         r"\('str', 'ctx'\), got \(2, 3\)"),
    ]
    for extra, message in cases:
        with pytest.raises(mc.MRNNConfigError, match=message):
            mc.Checkpoint(base.spec, base.dynamics, {**base.params, **extra}, readout)
    with pytest.raises(mc.MRNNConfigError, match=r"Checkpoint.readout: expected a ReadoutSpec or None, got dict"):
        mc.Checkpoint(base.spec, base.dynamics, ckpt.params, readout.to_dict())
    with pytest.raises(mc.MRNNConfigError, match=r"readout regions \('gpe',\): unknown region 'gpe'"):
        mc.Checkpoint(base.spec, base.dynamics, ckpt.params, ReadoutSpec("gpe", 2))


def test_attaching_a_readout_built_for_another_network_is_an_error():
    readout = ReadoutSpec("d1", 1)
    other = _spec().with_recurrent_region("extra", 1)  # same units for 'd1', another H
    moved = (mc.NetworkSpec().with_recurrent_region("d1", 2, parent_region="str")
             .with_recurrent_region("ctx", 3).with_recurrent_region("thal", 2, sign="neg")
             .with_recurrent_region("d2", 1, sign="neg", parent_region="str"))
    for built_for in (other, moved):
        with pytest.raises(mc.MRNNConfigError,
                           match=r"checkpoint: in its network \(H = 8\) the readout of \('d1',\) reads "
                                 r"units \[5, 6\], expected the units"):
            checkpoint_with_readout(mc.Checkpoint.initialise(_spec(), seed=0), readout,
                                    np.zeros((1, 2)), built_for=built_for)

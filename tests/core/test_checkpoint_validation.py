"""A checkpoint is validated like a JSON config, whatever the route in:
``Checkpoint(...)``, ``Checkpoint.load`` and (through them) both backends'
``from_checkpoint``. A bad array raises MRNNConfigError naming it; the array
route accepts every network the spec can describe and nothing else."""

import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.readout import checkpoint_with_readout
from mrnn_core.testing import corrupted_checkpoints, dynamics_settings, network_specs

SPEC = (mc.NetworkSpec().with_recurrent_region("a", 4).with_recurrent_region("b", 3, sign="neg")
        .with_input_region("u", 2, sign="neg")
        .with_recurrent_connection("a", "b").with_recurrent_connection("b", "a", sparsity=0.5)
        .with_recurrent_connection("a", "a", mask=np.eye(4)).with_recurrent_connection(
            "b", "b", zero_connection=True)
        .with_input_connection("u", "a"))
A, B = slice(0, 4), slice(4, 7)


@pytest.fixture
def base():
    return mc.Checkpoint.initialise(SPEC, mc.Dynamics(), seed=0)


def rebuilt(ckpt, **changes):
    return mc.Checkpoint(ckpt.spec, ckpt.dynamics, {**ckpt.params, **changes}, ckpt.readout)


def changed(ckpt, key, index, value):
    a = np.array(ckpt.params[key])
    a[index] = value
    return rebuilt(ckpt, **{key: a})


@pytest.mark.parametrize("value", [2.0, -1.0, 0.5])
def test_a_mask_entry_that_is_not_0_or_1_is_rejected(base, value):
    with pytest.raises(mc.MRNNConfigError,
                       match=rf"Checkpoint.params\['W_rec_mask'\]\[0, 4\] \(block 'b' -> 'a'\): "
                             rf"expected 0 or 1, got {re.escape(repr(np.float64(value)))}"):
        changed(base, "W_rec_mask", (0, 4), value)


def test_a_nan_mask_is_rejected(base):
    with pytest.raises(mc.MRNNConfigError,
                       match=r"Checkpoint.params\['W_inp_mask'\]: expected finite values, got "
                             r"nan at index \[1, 0\]"):
        changed(base, "W_inp_mask", (1, 0), np.nan)


def test_a_mask_is_zero_where_the_spec_connects_nothing(base):
    # b -> b is a zero connection; 'a' <- 'b' ... and 'u' -> 'b' undeclared
    for key, index, block in (("W_rec_mask", (5, 5), "'b' -> 'b'"),
                              ("W_inp_mask", (6, 1), "'u' -> 'b'")):
        with pytest.raises(mc.MRNNConfigError,
                           match=rf"\['{key}'\]\[{index[0]}, {index[1]}\] \(block {block}\): "
                                 r"expected 0, since the spec does not connect this block"):
            changed(base, key, index, 1.0)


def test_an_explicit_mask_fixes_its_block(base):
    with pytest.raises(mc.MRNNConfigError,
                       match=r"\['W_rec_mask'\]\[0, 1\] \(block 'a' -> 'a'\): expected 0, the "
                             r"value of the connection's explicit mask, got np.float64\(1.0\)"):
        changed(base, "W_rec_mask", (0, 1), 1.0)


def test_a_dense_or_sparse_block_may_be_pruned(base):
    """mRNNTorch files and lesioned networks: any 0/1 pattern inside a declared
    dense or sparse block is a valid network (its sign matrix following)."""
    mask = np.array(base.params["W_rec_mask"])
    sign = np.array(base.params["W_rec_sign_matrix"])
    mask[B, A] = 0.0  # the dense a -> b block, lesioned
    sign[B, A] = 0.0
    ckpt = rebuilt(base, W_rec_mask=mask, W_rec_sign_matrix=sign)
    assert np.all(ckpt.params["W_rec_mask"][B, A] == 0)


@pytest.mark.parametrize("key, index, value, want", [
    ("W_rec_sign_matrix", (4, 0), -1.0, r"\[4, 0\] \(block 'a' -> 'b'\): expected 1 \(mask \* "
                                        r"the sign \+1 of source region 'a'\), got"),
    ("W_rec_sign_matrix", (0, 4), 1.0, r"\[0, 4\] \(block 'b' -> 'a'\): expected (-1|0) \(mask "
                                       r"\* the sign -1 of source region 'b'\), got"),
    ("W_inp_sign_matrix", (0, 0), 1.0, r"\[0, 0\] \(block 'u' -> 'a'\): expected -1 \(mask \* "
                                       r"the sign -1 of source region 'u'\), got np.float64\(1.0\)"),
    ("W_rec_sign_matrix", (5, 5), 1.0, r"\[5, 5\] \(block 'b' -> 'b'\): expected 0 \(mask"),
])
def test_sign_matrices_follow_the_source_region(base, key, index, value, want):
    """Dale's law: an inhibitory region never sends positive weights, whatever the file says."""
    with pytest.raises(mc.MRNNConfigError, match=rf"Checkpoint.params\['{key}'\]" + want):
        changed(base, key, index, value)


@pytest.mark.parametrize("key", ["W_rec", "W_inp", "base_firing", "init", "tau"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_weights_biases_init_and_tau_are_finite(base, key, value):
    with pytest.raises(mc.MRNNConfigError,
                       match=rf"Checkpoint.params\['{key}'\]: expected finite values, got "):
        changed(base, key, (0,) * base.params[key].ndim, value)


@pytest.mark.parametrize("value", [0.0, -20.0])
def test_tau_is_positive(base, value):
    with pytest.raises(mc.MRNNConfigError,
                       match=rf"Checkpoint.params\['tau'\]: expected finite time constants > 0, "
                             rf"got {value!r} for unit 5 \(region 'b'\)"):
        changed(base, "tau", 5, value)


@pytest.mark.parametrize("dtype, shown", [
    ("complex128", "complex dtype complex128"), ("int64", "dtype int64"), ("bool", "dtype bool"),
    ("<U3", "string dtype <U3"), ("object", "object dtype object")])
def test_weights_are_real_floating_point(base, dtype, shown):
    with pytest.raises(mc.MRNNConfigError,
                       match=rf"Checkpoint.params\['W_rec'\]: expected a real floating-point "
                             rf"array \(float16, float32 or float64\), got {shown}"):
        rebuilt(base, W_rec=base.params["W_rec"].astype(dtype))


def test_masks_and_signs_may_be_bool_integer_or_float(base):
    p = base.params
    ckpt = rebuilt(base, W_rec_mask=p["W_rec_mask"].astype(bool),
                   W_rec_sign_matrix=p["W_rec_sign_matrix"].astype(np.int8),
                   W_inp_mask=p["W_inp_mask"].astype(np.float32))
    for key in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask"):
        np.testing.assert_array_equal(ckpt.params[key], p[key])
    assert ckpt.params["W_rec_mask"].dtype == ckpt.params["W_rec_sign_matrix"].dtype == np.float64
    with pytest.raises(mc.MRNNConfigError, match=r"\['W_rec_mask'\]: expected a real array "
                                                 r"\(bool, integer, float16, float32 or float64\), "
                                                 r"got complex dtype complex128"):
        rebuilt(base, W_rec_mask=p["W_rec_mask"].astype(complex))


def test_a_ragged_value_is_rejected_naming_it(base):
    with pytest.raises(mc.MRNNConfigError, match=r"Checkpoint.params\['init'\]: expected a numeric array"):
        rebuilt(base, init=[[1.0], [1.0, 2.0]])


def test_unknown_arrays_are_rejected_naming_them(base):
    with pytest.raises(mc.MRNNConfigError,
                       match=r"Checkpoint.params: unknown array\(s\) 'W_out', 'momentum'; expected "
                             r"only W_rec, W_rec_mask, .*, tau, log_tau"):
        rebuilt(base, W_out=np.zeros(3), momentum=np.zeros(800))
    with pytest.raises(mc.MRNNConfigError,
                       match=r"unknown array\(s\) 'readout_W'.*readout arrays need a "
                             r"Checkpoint.readout: use Readout.add_to_checkpoint"):
        rebuilt(base, readout_W=np.zeros((1, 7)))
    with pytest.raises(mc.MRNNConfigError, match=r"unknown array\(s\) 'W_recc'.*did you mean 'W_rec'"):
        rebuilt(base, W_recc=np.zeros(1))


def test_a_readout_without_bias_holds_a_zero_bias(base):
    readout = mc.ReadoutSpec(("a",), out_features=2, bias=False)
    ckpt = checkpoint_with_readout(base, readout, np.ones((2, 4)))
    with pytest.raises(mc.MRNNConfigError,
                       match=r"\['readout_b'\]: expected zeros, since the readout has bias=False"):
        rebuilt(ckpt, readout_b=np.ones(2))


def test_a_rejected_checkpoint_is_rejected_through_the_file_too(tmp_path, base):
    """The file route applies the same rules and names the file."""
    sign = np.array(base.params["W_rec_sign_matrix"])
    sign[0, 4] = 1.0  # inhibitory b sending a positive weight
    members = {"__format_version__": np.array(mc.FORMAT_VERSION),
               "__spec__": np.array(json.dumps(mc.spec_to_dict(SPEC))),
               "__dynamics__": np.array(json.dumps(base.dynamics.to_dict())),
               **base.params, "W_rec_sign_matrix": sign}
    np.savez(tmp_path / "bad.npz", **members)
    with pytest.raises(mc.MRNNFileError,
                       match=rf"checkpoint file '{re.escape(str(tmp_path / 'bad.npz'))}': "
                             r"Checkpoint.params\['W_rec_sign_matrix'\]\[0, 4\] \(block 'b' -> 'a'\)"):
        mc.Checkpoint.load(tmp_path / "bad.npz")


@given(network_specs(beyond_mrnntorch=True), dynamics_settings(), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1))
def test_every_network_the_spec_can_draw_is_accepted(spec, dynamics, seed, other):
    """The JSON route and the array route accept the same networks: the masks
    and weights any seed draws for a spec form a valid checkpoint of it."""
    ckpt = mc.Checkpoint.initialise(spec, dynamics, seed=seed)
    drawn = mc.build_connectivity(spec, seed=other)
    params = {**ckpt.params, "W_rec_mask": drawn.W_rec_mask, "W_inp_mask": drawn.W_inp_mask,
              "W_rec_sign_matrix": drawn.W_rec_sign_matrix,
              "W_inp_sign_matrix": drawn.W_inp_sign_matrix}
    mc.Checkpoint(spec, dynamics, params)


def _with_maybe_readout(spec, ckpt, data):
    if not data.draw(st.booleans()):
        return ckpt
    bias = data.draw(st.booleans())
    readout = mc.ReadoutSpec(spec.recurrent_names[:1], out_features=2, bias=bias)
    n = spec.recurrent_regions[0].num_units
    return checkpoint_with_readout(ckpt, readout, np.ones((2, n)), np.ones(2) if bias else None)


def _members(ckpt, params):
    meta = {"__format_version__": np.array(mc.FORMAT_VERSION),
            "__spec__": np.array(json.dumps(mc.spec_to_dict(ckpt.spec))),
            "__dynamics__": np.array(json.dumps(ckpt.dynamics.to_dict()))}
    if ckpt.readout is not None:
        meta["__readout__"] = np.array(json.dumps(ckpt.readout.to_dict()))
    return {**meta, **params}


@given(network_specs(beyond_mrnntorch=True), dynamics_settings(), st.integers(0, 2**32 - 1),
       st.data())
def test_a_corrupted_checkpoint_loads_as_the_same_network_or_is_rejected(
        tmp_path_factory, spec, dynamics, seed, data):
    """One array corrupted (value, dtype, shape, extra, missing): both routes in
    give the documented error naming it, or an equivalent network; never a
    different one."""
    ckpt = _with_maybe_readout(spec, mc.Checkpoint.initialise(spec, dynamics, seed=seed), data)
    params, message = data.draw(corrupted_checkpoints(ckpt))
    path = tmp_path_factory.mktemp("corrupt") / "model.npz"
    np.savez(path, **_members(ckpt, params))
    routes = {"memory": lambda: mc.Checkpoint(spec, dynamics, params, ckpt.readout),
              "file": lambda: mc.Checkpoint.load(path)}
    for route, load in routes.items():
        if message is not None:
            error = mc.MRNNFileError if route == "file" else mc.MRNNConfigError
            with pytest.raises(error, match=message):
                load()
            continue
        loaded = load()
        keys = mc.PARAM_NAMES + (("readout_W", "readout_b") if ckpt.readout else ())
        for key in keys:
            np.testing.assert_array_equal(np.asarray(loaded.params[key], dtype=np.float64),
                                          ckpt.params[key], err_msg=f"{route}: {key}")


def test_readout_weights_are_real_and_finite_on_every_route(base):
    """add_to_checkpoint / from_params go through check_readout_params: the same rules."""
    from mrnn_core.readout import check_readout_params

    readout = mc.ReadoutSpec(("a",), out_features=2)
    W = np.ones((2, 4))
    W[1, 2] = np.nan
    with pytest.raises(mc.MRNNConfigError, match=r"readout W: expected finite values, got "
                                                 r"np.float64\(nan\) at index \[1, 2\]"):
        checkpoint_with_readout(base, readout, W, np.zeros(2))
    with pytest.raises(mc.MRNNConfigError, match=r"readout b: expected a real numeric array, "
                                                 r"got dtype complex128"):
        check_readout_params(SPEC, readout, np.ones((2, 4)), np.zeros(2, dtype=complex))
    assert check_readout_params(SPEC, readout, np.ones((2, 4), dtype=int))["W"].dtype == np.float64


def test_big_endian_arrays_load_in_native_byte_order(base):
    """A file written on a big-endian machine: same values, native order (torch needs it)."""
    ckpt = rebuilt(base, W_rec=base.params["W_rec"].astype(">f8"))
    assert ckpt.params["W_rec"].dtype == np.dtype("=f8")
    np.testing.assert_array_equal(ckpt.params["W_rec"], base.params["W_rec"])

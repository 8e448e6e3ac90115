"""The materialised structure (SEMANTICS.md sections 1 and 2) on drawn specs."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.testing import network_specs

seeds = st.integers(0, 2**32 - 1)


def layout(regions):
    """Name -> (start, end), counted here from num_units in insertion order."""
    out, start = {}, 0
    for r in regions:
        out[r.name] = (start, start + r.num_units)
        start += r.num_units
    return out


def check_stream(spec, sources, connections, mask, sign):
    """Every block of one stream (recurrent or input) against SEMANTICS.md section 2."""
    dst, src = layout(spec.recurrent_regions), layout(sources)
    declared = {(c.src_region, c.dst_region): c for c in connections}
    for s in sources:
        s0, s1 = src[s.name]
        for d in spec.recurrent_regions:
            d0, d1 = dst[d.name]
            block = mask[d0:d1, s0:s1]
            c = declared.get((s.name, d.name))
            if c is None or c.zero_connection:
                assert not block.any(), f"{s.name}->{d.name} should be an empty block"
            elif c.sparsity is None:
                assert block.all(), f"{s.name}->{d.name} should be dense"
            else:
                kept = d.num_units - math.ceil(c.sparsity * d.num_units)
                assert (block.sum(axis=0) == kept).all(), (
                    f"{s.name}->{d.name}: sparsity {c.sparsity} on {d.num_units} rows keeps "
                    f"{kept} per column, got {block.sum(axis=0)}")
        sign_of_source = 1.0 if s.sign == "pos" else -1.0
        np.testing.assert_array_equal(sign[:, s0:s1], sign_of_source * mask[:, s0:s1])


@given(network_specs(), seeds)
def test_masks_and_signs_follow_the_declared_connections(spec, seed):
    c = mc.build_connectivity(spec, seed)
    H, I = spec.hidden_size, spec.input_size
    assert c.W_rec_mask.shape == c.W_rec_sign_matrix.shape == (H, H)
    assert c.W_inp_mask.shape == c.W_inp_sign_matrix.shape == (H, I)
    assert np.isin(c.W_rec_mask, (0.0, 1.0)).all()
    assert np.isin(c.W_inp_mask, (0.0, 1.0)).all()
    check_stream(spec, spec.recurrent_regions, spec.recurrent_connections,
                 c.W_rec_mask, c.W_rec_sign_matrix)
    check_stream(spec, spec.input_regions, spec.input_connections,
                 c.W_inp_mask, c.W_inp_sign_matrix)


@given(network_specs(), seeds)
def test_region_slices_tile_the_state_vectors_in_order(spec, seed):
    c = mc.build_connectivity(spec, seed)
    for slices, regions, total in ((c.recurrent_slices, spec.recurrent_regions, spec.hidden_size),
                                   (c.input_slices, spec.input_regions, spec.input_size)):
        assert list(slices) == [r.name for r in regions]
        end = 0
        for r in regions:
            assert slices[r.name] == slice(end, end + r.num_units)
            assert c.region_slice(r.name) == slices[r.name]
            end += r.num_units
        assert end == total


@given(network_specs(), seeds)
def test_baselines_and_initial_states_are_per_unit_concatenations(spec, seed):
    c = mc.build_connectivity(spec, seed)
    for field in ("base_firing", "init"):
        expected = []
        for r in spec.recurrent_regions:
            value = getattr(r, field)
            expected += list(value) if isinstance(value, tuple) else [value] * r.num_units
        np.testing.assert_array_equal(getattr(c, field), expected)
    trainable = [r.learnable_bias for r in spec.recurrent_regions for _ in range(r.num_units)]
    np.testing.assert_array_equal(c.bias_trainable, trainable)


@given(network_specs(), seeds)
def test_parent_lookup_lists_children_in_insertion_order(spec, seed):
    c = mc.build_connectivity(spec, seed)
    for parent in {r.parent_region for r in spec.recurrent_regions} - {None}:
        children = tuple(r.name for r in spec.recurrent_regions if r.parent_region == parent)
        assert c.children(parent) == children
        expected_units = np.concatenate([np.arange(*layout(spec.recurrent_regions)[n])
                                         for n in children])
        np.testing.assert_array_equal(c.unit_indices(parent), expected_units)


def test_sparsity_removes_the_ceiling_of_s_times_n_dst_per_column():
    # 10 destination units: s = 0.25 removes ceil(2.5) = 3, s = 1 removes all.
    spec = (mc.NetworkSpec().with_recurrent_region("a", 6).with_recurrent_region("b", 10)
            .with_recurrent_connection("a", "b", sparsity=0.25)
            .with_recurrent_connection("b", "b", sparsity=1.0)
            .with_recurrent_connection("b", "a", sparsity=0.0))
    c = mc.build_connectivity(spec, seed=5)
    a, b = c.region_slice("a"), c.region_slice("b")
    assert (c.W_rec_mask[b, a].sum(axis=0) == 7).all()
    assert not c.W_rec_mask[b, b].any()
    assert c.W_rec_mask[a, b].all()


def test_the_removed_rows_differ_between_columns():
    # Drawn per column: 40 columns of a half-sparse 20-row block all alike has
    # probability C(20, 10) ** -39, i.e. never.
    spec = (mc.NetworkSpec().with_recurrent_region("a", 40).with_recurrent_region("b", 20)
            .with_recurrent_connection("a", "b", sparsity=0.5))
    c = mc.build_connectivity(spec, seed=0)
    block = c.W_rec_mask[c.region_slice("b"), c.region_slice("a")]
    assert len({tuple(col) for col in block.T}) > 1


def test_connectivity_arrays_are_read_only():
    spec = mc.NetworkSpec().with_recurrent_region("a", 2).with_recurrent_connection("a", "a")
    c = mc.build_connectivity(spec, seed=0)
    for name in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix",
                 "base_firing", "init"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(c, name)[...] = 0.0


def test_build_connectivity_reads_config_paths_and_dicts(tmp_path):
    spec = (mc.NetworkSpec().with_recurrent_region("a", 3)
            .with_recurrent_connection("a", "a", sparsity=0.5))
    spec.save(tmp_path / "net.json")
    from_spec = mc.build_connectivity(spec, seed=11)
    for source in (tmp_path / "net.json", spec.to_dict()):
        other = mc.build_connectivity(source, seed=11)
        assert other.spec == spec
        np.testing.assert_array_equal(other.W_rec_mask, from_spec.W_rec_mask)

"""The block plan both backends run: which blocks of W_rec a step must multiply."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
from mrnn_core import blockplan
from mrnn_core.testing import network_specs


@given(st.integers(1, 40), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_a_plan_covers_every_nonzero_of_its_mask(H, density, seed):
    mask = np.random.default_rng(seed).random((H, H)) < density
    plan = blockplan.plan_from_mask(mask)
    assert plan.covers(mask)
    assert plan.hidden_size == H
    # destination runs tile [0, H) in order
    starts = [d0 for d0, _, _ in plan.groups]
    ends = [d1 for _, d1, _ in plan.groups]
    assert starts[0] == 0 and ends[-1] == H and starts[1:] == ends[:-1]


@given(network_specs(), st.integers(0, 2**32 - 1))
def test_the_spec_plan_covers_every_mask_the_spec_can_draw(spec, seed):
    ckpt = mrnn_core.Checkpoint.initialise(spec, seed=seed)
    mask = ckpt.params["W_rec_mask"]
    assert blockplan.plan_of_spec(spec).covers(mask)
    assert blockplan.plan_from_mask(mask, blockplan.region_bounds(spec)).covers(mask)


def test_a_ring_of_regions_computes_only_its_blocks():
    n, units = 8, 80
    spec = mrnn_core.NetworkSpec()
    for k in range(n):
        spec = spec.with_recurrent_region(f"r{k}", units)
    for k in range(n):
        spec = spec.with_recurrent_connection(f"r{k}", f"r{(k + 1) % n}")
    plan = blockplan.plan_of_spec(spec)
    assert plan.fraction == pytest.approx(1 / n)
    assert blockplan.worth_blocks(plan)  # 640 units, 1/8 of W
    whole = blockplan.plan_from_mask(np.ones((plan.hidden_size,) * 2))
    assert whole.fraction == 1.0 and not blockplan.worth_blocks(whole)


def test_small_networks_never_take_blocks():
    H = blockplan.AUTO_MIN_HIDDEN - 1
    diagonal = blockplan.plan_from_mask(np.eye(H))
    assert diagonal.fraction < blockplan.AUTO_MAX_FRACTION
    assert not blockplan.worth_blocks(diagonal)


def test_rows_without_recurrent_input_form_a_group_without_sources():
    mask = np.zeros((32, 32))
    mask[:16, :16] = 1
    plan = blockplan.plan_from_mask(mask, [0, 16, 32])
    assert plan.groups == ((0, 16, ((0, 16),)), (16, 32, ()))
    assert plan.fraction == 0.25

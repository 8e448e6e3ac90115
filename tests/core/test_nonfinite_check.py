"""mrnn_core.first_nonfinite / check_finite: where states first went inf or NaN.

numpy only (the core never imports a framework); the models' check_finite
option is tested across backends in tests/equivalence/test_check_finite_option.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
from mrnn_core import MRNNConfigError, NonFiniteStateError, check_finite, first_nonfinite

SPEC = mrnn_core.load_config({"recurrent_regions": [{"name": "thal", "num_units": 2},
                                                    {"name": "ctx", "num_units": 3}]})


def test_finite_states_report_nothing():
    states = np.zeros((2, 4, 5))
    assert first_nonfinite(states, SPEC) is None
    check_finite(states, SPEC)  # does not raise


def test_the_earliest_step_wins_then_the_lowest_unit():
    states = np.zeros((3, 6, 5))  # [B, T, H]
    states[0, 4, 0] = np.nan   # later step, lower unit
    states[2, 2, 4] = np.inf   # earliest step
    states[1, 2, 3] = -np.inf  # same step, lower unit: this one
    where = first_nonfinite(states, SPEC)
    assert (where.step, where.unit, where.trial) == (2, 3, 1)
    assert (where.region, where.index_in_region) == ("ctx", 1)
    assert where.value == -np.inf


def test_time_major_and_unbatched_layouts():
    tbh = np.zeros((6, 3, 5))
    tbh[2, 1, 1] = np.nan
    where = first_nonfinite(tbh, SPEC, batch_first=False)
    assert (where.step, where.trial, where.unit, where.region) == (2, 1, 1, "thal")
    th = np.zeros((6, 5))
    th[5, 2] = np.inf
    where = first_nonfinite(th, SPEC)
    assert (where.step, where.trial, where.unit, where.region) == (5, 0, 2, "ctx")


def test_without_a_spec_no_region_is_named():
    states = np.zeros((1, 2, 5))
    states[0, 1, 4] = np.nan
    where = first_nonfinite(states)
    assert where.region is None and where.unit == 4


def test_the_error_names_the_step_unit_region_and_trial():
    states = np.zeros((2, 10, 5))
    states[1, 7:, 2:] = np.nan
    with pytest.raises(NonFiniteStateError,
                       match=r"^hs: the state became non-finite \(nan\) at step 7 of 10 "
                             r"\(the state after update 8\), unit 2 \(region 'ctx', its unit "
                             r"0\), trial 1; expected finite states"):
        check_finite(states, SPEC, name="hs")


def test_the_error_is_a_config_error_and_a_floating_point_error():
    assert issubclass(NonFiniteStateError, MRNNConfigError)
    assert issubclass(NonFiniteStateError, FloatingPointError)


def test_states_of_the_wrong_rank_are_refused():
    with pytest.raises(MRNNConfigError, match=r"^states: expected \[B, T, H\].* got shape \(5,\)"):
        first_nonfinite(np.zeros(5), SPEC)


@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 5), st.data())
def test_it_finds_the_planted_entry_whatever_the_shape(B, T, H, data):
    states = np.zeros((B, T, H))
    b, t, u = (data.draw(st.integers(0, n - 1)) for n in (B, T, H))
    states[b, t, u] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    # entries after it, in time, never change the answer
    if t + 1 < T:
        states[:, t + 1:, :] = np.nan
    where = first_nonfinite(states)
    assert (where.trial, where.step, where.unit) == (b, t, u)

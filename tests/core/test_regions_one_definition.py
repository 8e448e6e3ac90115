"""The region helpers are written once (mrnn_core.regions) for numpy, torch and JAX.

Expected blocks come from the regions' sizes in spec order, not from the
helpers' index arithmetic; each library's array comes back in its library,
with the same numbers, and gradients reach exactly the selected entries.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core as mc
import mrnn_jax
import mrnn_torch
from mrnn_core import regions
from mrnn_core._arrays import library_of

# cortex (parent of exc, inh) sits around thal, so the parent is not contiguous
SPEC = (mc.NetworkSpec()
        .with_recurrent_region("exc", 3, parent_region="cortex")
        .with_recurrent_region("thal", 2)
        .with_recurrent_region("inh", 2, sign="neg", parent_region="cortex")
        .with_input_region("cue", 2))
UNITS = {"exc": [0, 1, 2], "thal": [3, 4], "inh": [5, 6], "cue": [0, 1]}
CORTEX = UNITS["exc"] + UNITS["inh"]
LIBRARIES = {"numpy": np.asarray, "torch": torch.as_tensor, "jax": jnp.asarray}


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_library_gets_the_same_blocks_in_its_own_arrays(library):
    rng = np.random.default_rng(0)
    act, W, W_inp = rng.standard_normal((4, 7)), rng.standard_normal((7, 7)), rng.standard_normal((7, 2))
    wrap = LIBRARIES[library]
    got = {
        "activity, caller's order": regions.region_activity(SPEC, wrap(act), "thal", "cortex"),
        "subset, network order": regions.weight_subset(SPEC, wrap(W), "inh", "exc"),
        "projection from a parent": regions.projection(SPEC, wrap(W), "thal", "cortex"),
        "projection from an input": regions.projection(SPEC, wrap(W_inp), "cortex", "cue"),
    }
    want = {
        "activity, caller's order": act[:, UNITS["thal"] + CORTEX],
        "subset, network order": W[np.ix_(CORTEX, CORTEX)],
        "projection from a parent": W[np.ix_(UNITS["thal"], CORTEX)],
        "projection from an input": W_inp[np.ix_(CORTEX, UNITS["cue"])],
    }
    for what, value in got.items():
        assert library_of(value) == library, what
        np.testing.assert_array_equal(np.asarray(value), want[what], err_msg=what)
    assert regions.region_indices(SPEC, "thal") == (3, 5)


def test_lists_are_taken_as_numpy_arrays():
    got = regions.region_activity(SPEC, [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], "inh", "thal")
    np.testing.assert_array_equal(got, [[5.0, 6.0, 3.0, 4.0]])
    W = np.arange(49.0).reshape(7, 7)
    np.testing.assert_array_equal(regions.weight_subset(SPEC, W.tolist(), "thal"),
                                  W[3:5, 3:5])


def test_a_contiguous_selection_is_a_view_and_gradients_reach_only_its_entries():
    W = torch.zeros(7, 7, dtype=torch.float64, requires_grad=True)
    block = regions.projection(SPEC, W, "thal", "exc")
    assert block._base is W  # a slice, no copy
    regions.weight_subset(SPEC, W, "cortex").sum().backward()
    np.testing.assert_array_equal(W.grad.numpy() != 0,
                                  np.isin(np.arange(7)[:, None], CORTEX)
                                  & np.isin(np.arange(7)[None, :], CORTEX))
    g = jax.grad(lambda a: regions.region_activity(SPEC, a, "cortex").sum())(jnp.zeros((2, 7)))
    np.testing.assert_array_equal(np.asarray(g[0]) != 0, np.isin(np.arange(7), CORTEX))


def test_the_backends_export_the_core_helpers():
    assert mrnn_torch.region_activity is regions.region_activity
    assert mrnn_torch.projection is regions.projection
    out = mrnn_jax.region_activity(SPEC, np.ones((2, 7)), "thal")  # numpy in, JAX out
    assert library_of(out) == "jax" and out.shape == (2, 2)


@pytest.mark.parametrize("call, message", [
    (lambda: regions.region_activity(SPEC, np.zeros((2, 6)), "thal"),
     r"act: expected activity with H = 7 units in the last axis, got shape \(2, 6\)"),
    (lambda: regions.weight_subset(SPEC, np.zeros((7, 6)), "thal"),
     r"W: expected a recurrent matrix \[H, H\] of shape \(7, 7\), got \(7, 6\)"),
    (lambda: regions.projection(SPEC, np.zeros((7, 7)), "thal", "cue"),
     r"W: expected the input matrix \[H, I\] \(from_='cue' is an input region\) of shape "
     r"\(7, 2\), got \(7, 7\)"),
    (lambda: regions.region_indices(SPEC, "cortex"), r"cortex"),
    (lambda: regions.layout("not a spec"),
     r"connectivity: expected a mrnn_core.Connectivity or NetworkSpec, got str"),
])
def test_bad_input_names_the_culprit(call, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        call()

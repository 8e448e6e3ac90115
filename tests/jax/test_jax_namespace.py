"""JAX models keep region, parent and input names in one namespace, and each
name selects its own units (SEMANTICS.md sections 1 and 5)."""

import jax.numpy as jnp
import numpy as np
import pytest

import mrnn_core
import mrnn_jax
from mrnn_core import MRNNConfigError


def test_aliasing_names_are_refused_and_valid_names_select_their_own_units():
    aliased = {"recurrent_regions": [{"name": "a", "num_units": 2, "parent_region": "b"},
                                     {"name": "b", "num_units": 3}]}
    with pytest.raises(MRNNConfigError,
                       match=r"recurrent region 'a': parent_region 'b' is the name of recurrent region 'b'"):
        mrnn_jax.mRNN(aliased, seed=0)
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 2, parent_region="grp")
            .with_recurrent_region("b", 3).with_recurrent_region("c", 1, parent_region="grp")
            .with_recurrent_connection("a", "b").with_recurrent_connection("b", "c"))
    model = mrnn_jax.mRNN(spec, seed=1, rec_constrained=False)
    hs = jnp.broadcast_to(jnp.arange(6.0), (2, 4, 6))
    assert model.get_region_activity(hs, "b")[0, 0].tolist() == [2.0, 3.0, 4.0]
    assert model.get_region_activity(hs, "grp")[0, 0].tolist() == [0.0, 1.0, 5.0]
    W = np.asarray(model.effective_weights()[0])
    assert np.array_equal(model.get_projection("b", "a"), W[2:5, 0:2])
    assert np.array_equal(model.get_projection("grp", "b"), W[[0, 1, 5]][:, 2:5])

"""Every way to get an mrnn_jax model (constructor, checkpoint, freeze) gives the same kind of pytree.

So an optimiser state, a partition or a compiled function made for one model
serves a model loaded or frozen from it.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mrnn_core as mc
import mrnn_jax

SPEC = (mc.NetworkSpec()
        .with_recurrent_region("a", 3)
        .with_recurrent_region("b", 2, sign="neg")
        .with_input_region("u", 2)
        .with_recurrent_connection("a", "b")
        .with_recurrent_connection("b", "a")
        .with_input_connection("u", "a"))


@pytest.mark.parametrize("cls", [mrnn_jax.mRNN, mrnn_jax.ElmanmRNN])
def test_a_loaded_model_is_the_same_pytree_and_reuses_the_compiled_code(cls):
    model = cls(SPEC, seed=4)
    traces = []

    @eqx.filter_jit
    def run(m, u):
        traces.append(1)
        out = m(u, key=jax.random.key(0))
        return out[1] if isinstance(out, tuple) else out

    inp = jnp.ones((2, 3, 2))
    first = run(model, inp)
    for loaded in (cls.from_checkpoint(model.to_checkpoint()),
                   mrnn_jax.mRNNBase.from_checkpoint(model.to_checkpoint())):
        assert type(loaded) is cls
        assert jax.tree.structure(loaded) == jax.tree.structure(model)
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(model)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        assert np.array_equal(run(loaded, inp), first)
    assert len(traces) == 1


def test_freeze_shares_every_array_and_leaves_the_model_as_it_was():
    model = mrnn_jax.mRNN(SPEC, seed=4)
    frozen = model.freeze("a")
    assert type(frozen) is mrnn_jax.mRNN
    assert model.spec == SPEC and frozen.spec == SPEC.with_frozen("a")
    for f in dataclasses.fields(model):
        if f.name != "spec":
            assert getattr(frozen, f.name) is getattr(model, f.name), f.name


def test_the_shared_base_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        mrnn_jax.mRNNBase(SPEC, seed=0)
    assert isinstance(mrnn_jax.ElmanmRNN(SPEC, seed=0), mrnn_jax.mRNNBase)

"""The ensemble step of examples/jax_ensemble.py (mrnn_jax.Ensemble) trains each member exactly
as examples/jax_flipflop.py's step trains that network alone (float64, 1e-10)."""

import functools
import importlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_core
import mrnn_jax
from .examples_helpers import EXAMPLES


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("jax_ensemble"), importlib.import_module("jax_flipflop")


def test_each_member_trains_as_if_alone(examples):
    ensemble_example, single_example = examples
    keys = jax.random.split(jax.random.key(7), 2)
    members = [single_example.FlipFlopNet(k) for k in keys]
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))

    stacked = ensemble_example.stack(members)
    trainable, frozen = eqx.partition(stacked, mrnn_jax.trainable_filter(stacked))
    opt_state = eqx.filter_vmap(optimiser.init)(trainable)
    step = ensemble_example.ensemble_step(optimiser)

    alone = [eqx.partition(m, mrnn_jax.trainable_filter(m)) for m in members]
    alone_states = [optimiser.init(t) for t, _ in alone]
    single_step = eqx.filter_jit(functools.partial(single_example.train_step, optimiser))

    for i in range(2):
        inputs, targets = map(jnp.asarray, mrnn_core.flip_flop(4, 15, p_pulse=0.2, seed=i))
        noise = jax.random.split(jax.random.key(100 + i), len(members))
        trainable, opt_state, losses = step(trainable, frozen, opt_state, inputs, targets, noise)
        for k, ((t, f), state) in enumerate(zip(alone, alone_states)):
            t, state, loss = single_step(t, f, state, inputs, targets, noise[k])
            alone[k], alone_states[k] = (t, f), state
            np.testing.assert_allclose(losses[k], loss, rtol=1e-10, atol=1e-12)

    for k, (t, _) in enumerate(alone):
        member = jax.tree.map(lambda a, k=k: a[k], trainable)
        for got, expected in zip(jax.tree.leaves(member), jax.tree.leaves(t), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # the members started apart and stayed apart: two networks, not one
    assert not np.allclose(trainable.rnn.model.W_rec[0], trainable.rnn.model.W_rec[1])

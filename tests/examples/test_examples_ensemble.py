"""examples/jax_ensemble.py's ensemble (an mrnn_jax.Ensemble trained by mrnn_jax.train.train)
trains each member exactly as examples/jax_flipflop.py's step trains that network alone, on
the same batches and noise keys (float64, rtol 1e-10 / atol 1e-12)."""

import functools
import importlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_jax
from mrnn_core.tasks import make_task
from mrnn_core.training import step_rng
from mrnn_jax.train import train
from .examples_helpers import EXAMPLES


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("jax_ensemble"), importlib.import_module("jax_flipflop")


def test_each_member_trains_as_if_alone(examples):
    ensemble_example, single_example = examples
    keys = jax.random.split(jax.random.key(7), 2)
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))
    task = make_task("flip_flop", steps=15, p_pulse=0.2, dtype="float64")
    seed, steps = 3, 2

    ens, readouts = ensemble_example.build(keys)
    result = train(ens, task, readout=readouts, optimizer=optimiser, steps=steps, batch_size=4,
                   seed=seed, progress=False)

    members = [single_example.FlipFlopNet(k) for k in keys]
    alone = [eqx.partition(m, mrnn_jax.trainable_filter(m)) for m in members]
    alone_states = [optimiser.init(t) for t, _ in alone]
    single_step = eqx.filter_jit(functools.partial(single_example.train_step, optimiser))
    for i in range(steps):
        batch = task.sample(4, step_rng(seed, i))
        inputs, targets = jnp.asarray(batch.inputs), jnp.asarray(batch.targets)
        noise = jax.random.fold_in(jax.random.key(seed), i)  # train's key of step i
        for k, ((t, f), state) in enumerate(zip(alone, alone_states)):
            t, state, loss = single_step(t, f, state, inputs, targets, noise)
            alone[k], alone_states[k] = (t, f), state
            np.testing.assert_allclose(result.member_history[i, k], loss, rtol=1e-10, atol=1e-12)

    for k, (t, f) in enumerate(alone):
        net = eqx.combine(t, f)
        got = (result.model.members()[k], result.readout[k])
        for a, b in zip(jax.tree.leaves(eqx.filter(got, eqx.is_array)),
                        jax.tree.leaves(eqx.filter((net.rnn, net.readout), eqx.is_array)),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the members started apart and stayed apart: two networks, not one
    W_rec = result.model.model.W_rec
    assert not np.allclose(W_rec[0], W_rec[1])

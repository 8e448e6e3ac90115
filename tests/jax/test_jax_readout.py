"""mrnn_jax.readout.Readout: fields, defaults, numbers (vs the numpy reference), transforms, optax.

Float64 comparisons with :func:`mrnn_core.readout.apply_readout` use 1e-12:
one matmul of at most a few dozen terms, so the two differ by rounding only.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_core as mc
import mrnn_jax
from mrnn_core.readout import ReadoutSpec, apply_readout, init_readout
from mrnn_jax.readout import Readout

TOL = dict(rtol=1e-12, atol=1e-12)


def _spec():
    """ctx (3, exc) | thal (2, inh) | d1 (2, exc, parent str) | d2 (1, inh, parent str); H = 8."""
    return (mc.NetworkSpec()
            .with_recurrent_region("ctx", 3)
            .with_recurrent_region("thal", 2, sign="neg")
            .with_recurrent_region("d1", 2, parent_region="str")
            .with_recurrent_region("d2", 1, sign="neg", parent_region="str")
            .with_input_region("cue", 2)
            .with_recurrent_connection("ctx", "thal")
            .with_recurrent_connection("thal", "ctx")
            .with_recurrent_connection("ctx", "d1")
            .with_input_connection("cue", "ctx"))


def _readout(regions=("str", "ctx"), out=2, **kwargs):
    return Readout(_spec(), regions, out, **{"seed": 0, **kwargs})


def _with_weight(r, W):
    return eqx.tree_at(lambda m: m.weight, r, jnp.asarray(W))


def test_only_weight_and_bias_are_array_leaves():
    r = _readout()
    leaves = jax.tree.leaves(r)
    assert [leaf.shape for leaf in leaves] == [(2, 6), (2,)]
    assert r.index == (0, 1, 2, 5, 6, 7)
    assert _readout(bias=False).bias is None and len(jax.tree.leaves(_readout(bias=False))) == 1


def test_default_weights_are_the_cores_for_the_seed():
    r = _readout(seed=11)
    p = init_readout(_spec(), ReadoutSpec(("str", "ctx"), 2), 11)
    np.testing.assert_array_equal(np.asarray(r.weight), p["W"])
    np.testing.assert_array_equal(np.asarray(r.bias), p["b"])


def test_a_key_gives_reproducible_weights_and_different_keys_differ():
    a, b, c = (Readout(_spec(), "ctx", 2, key=jax.random.key(k)) for k in (1, 1, 2))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)


@pytest.mark.parametrize("regions", [("str", "ctx"), ("ctx",), ("thal", "d1")])
@pytest.mark.parametrize("dale", [False, True])
@pytest.mark.parametrize("lead", [(), (7,), (2, 5)])
def test_call_equals_the_reference(regions, dale, lead):
    r = _readout(regions, 3, dale=dale)
    W = np.random.default_rng(1).uniform(-1, 1, size=r.weight.shape)  # both signs: |W| matters
    r = _with_weight(r, W)
    hs = np.random.default_rng(0).normal(size=lead + (8,))
    y = np.asarray(r(jnp.asarray(hs)))
    assert y.shape == lead + (3,)
    np.testing.assert_allclose(y, apply_readout(r.params(), r.readout_spec, hs, _spec()), **TOL)


def test_jit_and_vmap_give_the_same_numbers():
    r = _readout(("ctx", "d1"), 2)
    hs = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 8)))
    expected = r(hs)
    np.testing.assert_allclose(eqx.filter_jit(lambda m, x: m(x))(r, hs), expected, **TOL)
    np.testing.assert_allclose(jax.vmap(r)(hs), expected, **TOL)


def test_optax_step_moves_weight_and_bias_and_dale_weights_stay_non_negative():
    r = _readout(dale=True)
    hs = jnp.asarray(np.random.default_rng(0).uniform(size=(16, 8)))
    optimiser = optax.sgd(5.0)
    params = eqx.filter(r, eqx.is_inexact_array)
    state = optimiser.init(params)
    loss = lambda m: m(hs).sum()  # noqa: E731  pushing outputs down drives weights through zero
    for _ in range(3):
        grads = eqx.filter_grad(loss)(r)
        updates, state = optimiser.update(grads, state, eqx.filter(r, eqx.is_inexact_array))
        new = eqx.apply_updates(r, updates)
        assert not np.array_equal(new.bias, r.bias)
        r = new
    assert (r.weight < 0).any(), "the steps should have made some raw weights negative"
    assert (r.effective_weight >= 0).all()
    assert r.index == (0, 1, 2, 5, 6)


def test_readout_trains_jointly_with_the_network_under_trainable_filter():
    model = mrnn_jax.mRNN(_spec(), seed=0)
    pair = (model, Readout(model, "ctx", 1, seed=0))
    flags = mrnn_jax.trainable_filter(pair)
    assert flags[1].weight is True and flags[1].bias is True

    def loss(trainable, frozen):
        m, r = eqx.combine(trainable, frozen)
        x0, _ = m.batched_initial_condition(2)
        _, hs = m(jnp.ones((2, 4, 2)), x0)
        return jnp.mean(r(hs) ** 2)

    trainable, frozen = eqx.partition(pair, flags)
    g_model, g_readout = jax.grad(loss)(trainable, frozen)
    assert jnp.abs(g_model.W_rec).sum() > 0 and jnp.abs(g_readout.weight).sum() > 0


def test_hs_gradient_reaches_only_the_units_read():
    r = _readout(("str",), 2)
    g = jax.grad(lambda h: r(h).sum())(jnp.ones((3, 8)))
    assert (jnp.abs(g).sum(0) > 0).tolist() == [False] * 5 + [True] * 3


def test_params_round_trip_is_bit_identical():
    r = _readout(dale=True)
    p = r.params()
    again = Readout.from_params(_spec(), r.readout_spec, p["W"], p["b"])
    assert np.asarray(again.weight).tobytes() == np.asarray(r.weight).tobytes()
    assert np.asarray(again.bias).tobytes() == np.asarray(r.bias).tobytes()
    assert again.index == r.index


@pytest.mark.parametrize("call, message", [
    (lambda r: r(jnp.zeros((4, 9))), r"readout input hs: expected shape \[\.\.\., 8\].*got \[4, 9\]"),
    (lambda r: Readout.from_params(_spec(), r.readout_spec, np.zeros((2, 5)), np.zeros(2)),
     r"readout W: expected shape \(2, 6\).*got \(2, 5\)"),
    (lambda r: Readout("ctx", "ctx", 2, seed=0), r"Readout: expected an mrnn_jax model or a mrnn_core.NetworkSpec.*got str"),
    (lambda r: Readout(_spec(), "ctx", 2), r"key: expected a PRNG key"),
    (lambda r: Readout(_spec(), ("thal",), 1, dale=True, seed=0), r"none of these is excitatory"),
    (lambda r: Readout(_spec(), "ctxx", 1, seed=0), r"unknown region 'ctxx'.*did you mean 'ctx'"),
])
def test_bad_input_is_rejected_with_a_named_culprit(call, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        call(_readout())


def test_repr_names_what_it_reads():
    assert repr(_readout(("ctx",), 2, bias=False)) == "Readout(regions=('ctx',), in_units=3, out_features=2, bias=False)"


def test_checkpoint_round_trip_restores_the_readout(tmp_path):
    model = mrnn_jax.mRNN(_spec(), seed=0)
    r = Readout(model, ("str", "ctx"), 2, bias=False, seed=4)
    r.add_to_checkpoint(model.to_checkpoint()).save(tmp_path / "m.npz")
    again = Readout.from_checkpoint(mc.Checkpoint.load(tmp_path / "m.npz"))
    assert again.readout_spec == r.readout_spec and again.bias is None
    assert np.asarray(again.weight).tobytes() == np.asarray(r.weight).tobytes()


def test_checkpoint_of_another_network_is_rejected():
    other = mc.NetworkSpec().with_recurrent_region("ctx", 4)
    with pytest.raises(mc.MRNNConfigError, match=r"checkpoint: in its network \(H = 4\) the readout"):
        _readout(("ctx",), 1).add_to_checkpoint(mc.Checkpoint.initialise(other, seed=0))
    with pytest.raises(mc.MRNNConfigError, match=r"checkpoint: it holds no readout"):
        Readout.from_checkpoint(mc.Checkpoint.initialise(_spec(), seed=0))

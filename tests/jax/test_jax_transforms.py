"""simulate under jit, vmap and grad; compiling once per shape; errors before tracing.

Tolerance ``1e-12`` (float64) where two evaluations of the same arithmetic are
compared (jit vs eager, vmap vs batch): XLA may fuse or reorder the same
operations differently, which changes results by a few ulps at most.
"""


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mrnn_core
import mrnn_jax
from .jax_cases import SMALL_SPEC, assert_close, count_traces

TIGHT = 1e-12
H, I, B, T = 12, 2, 3, 6


def _setup(kind="leaky", batch_first=True, seed=0, **dynamics):
    d = mrnn_core.Dynamics(kind=kind, batch_first=batch_first, activation="tanh", **dynamics)
    ckpt = mrnn_core.Checkpoint.initialise(SMALL_SPEC, d, seed=seed)
    rng = np.random.default_rng(seed)
    seq = (lambda F: (B, T, F)) if batch_first else (lambda F: (T, B, F))
    call = {"inp": rng.uniform(-1, 1, seq(I)), "stim_input": rng.uniform(-0.3, 0.3, seq(H)),
            "eps_x": rng.standard_normal(seq(H)), "eps_u": rng.standard_normal(seq(I)),
            ("x0" if kind == "leaky" else "h0"): rng.uniform(-0.5, 0.5, (B, H))}
    params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    return d, params, {k: jnp.asarray(v) for k, v in call.items()}


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_jit_equals_eager(kind, batch_first):
    d, params, call = _setup(kind, batch_first)
    jitted = jax.jit(mrnn_jax.simulate, static_argnums=1)(params, d, **call)
    with jax.disable_jit():
        eager = mrnn_jax.simulate(params, d, **call)
    assert_close(jitted, eager, TIGHT, TIGHT, "jit vs eager")


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_vmap_over_the_batch_equals_the_batched_call(kind, batch_first):
    d, params, call = _setup(kind, batch_first)
    state = "x0" if kind == "leaky" else "h0"
    axis = 0 if batch_first else 1

    def one_trial(inp, s, stim, eps_x, eps_u):
        return mrnn_jax.simulate(params, d, inp, **{state: s}, stim_input=stim,
                                 eps_x=eps_x, eps_u=eps_u)

    mapped = jax.vmap(one_trial, in_axes=(axis, 0, axis, axis, axis), out_axes=axis)(
        call["inp"], call[state], call["stim_input"], call["eps_x"], call["eps_u"])
    assert_close(mapped, mrnn_jax.simulate(params, d, **call), TIGHT, TIGHT, "vmap over batch")


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_vmap_over_8_stacked_parameter_sets_equals_8_calls(kind):
    """An ensemble (different masks and weights per member) runs as one vmapped call,
    forward and gradient."""
    d, _, call = _setup(kind)
    members = [_setup(kind, seed=s)[1] for s in range(8)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *members)

    def run(params):
        return mrnn_jax.simulate(params, d, **call)

    def loss(params):
        out = run(params)
        return jnp.sum(out[1] ** 2) if kind == "leaky" else jnp.sum(out ** 2)

    together = jax.jit(jax.vmap(run))(stacked)
    grads = jax.jit(jax.vmap(jax.grad(loss)))(stacked)
    grad_one = jax.jit(jax.grad(loss))
    for i, params in enumerate(members):
        assert_close(jax.tree.map(lambda a: a[i], together), run(params), TIGHT, TIGHT,
                     f"member {i}")
        alone = grad_one(params)
        for name in ("W_rec", "W_inp", "base_firing"):
            np.testing.assert_allclose(grads[name][i], alone[name], rtol=1e-10, atol=TIGHT,
                                       err_msg=f"gradient of {name}, member {i}")


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_gradients_through_1000_steps_are_finite(kind):
    d, params, _ = _setup(kind, spectral_radius=0.9)
    inp = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 1000, I)))
    state = jnp.zeros((2, H))

    def loss(params, inp):
        out = mrnn_jax.simulate(params, d, inp, **{"x0" if kind == "leaky" else "h0": state})
        hs = out[1] if kind == "leaky" else out
        return jnp.mean(hs[:, -100:] ** 2)

    grads, grad_inp = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, inp)
    for name in ("W_rec", "W_inp", "base_firing"):
        assert np.all(np.isfinite(grads[name])), name
        assert np.any(grads[name] != 0), name
    assert np.all(np.isfinite(grad_inp))
    assert np.any(grad_inp[:, -1] != 0)


def test_compiles_once_per_shape():
    """Repeated calls with new values but the same shapes trace nothing: not the
    pure function, not the model, not a jitted optax training step."""
    d, params, call = _setup()
    rng = np.random.default_rng(5)
    inputs = [jnp.asarray(rng.uniform(-1, 1, (B, T, I))) for _ in range(4)]
    longer = jnp.asarray(rng.uniform(-1, 1, (B, T + 1, I)))
    x0 = call["x0"]
    model = mrnn_jax.mRNN.from_checkpoint(
        mrnn_core.Checkpoint(SMALL_SPEC, d, {k: np.asarray(v) for k, v in params.items()}))
    optimiser = optax.adam(1e-2)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train_step(model, opt_state, inp):
        grads = eqx.filter_grad(lambda m: jnp.mean(m(inp, x0)[1] ** 2))(model)
        updates, opt_state = optimiser.update(grads, opt_state, model)
        return eqx.apply_updates(model, updates), opt_state

    mrnn_jax.simulate(params, d, inputs[0], x0)
    model(inputs[0], x0)
    model, opt_state = train_step(model, opt_state, inputs[0])
    with count_traces() as traces:
        for inp in inputs[1:]:
            mrnn_jax.simulate(params, d, inp, x0)
            model(inp, x0)
            model, opt_state = train_step(model, opt_state, inp)
    assert traces == []
    with count_traces() as traces:
        mrnn_jax.simulate(params, d, longer, x0)
    assert len(traces) >= 1  # a new number of steps is a new shape


def _bad_calls():
    d, params, call = _setup()
    good = dict(call)
    elman = mrnn_core.Dynamics(kind="elman")
    no_inp = {k: v for k, v in params.items() if k != "W_inp"}
    return [
        ("feature size", (params, d), {**good, "inp": jnp.ones((B, T, 3))},
         r"inp: expected shape \(3, 6, 2\) = \[B, T, I\] with I = 2 \(batch_first=True\), got \(3, 6, 3\)"),
        ("rank", (params, d), {**good, "inp": jnp.ones((1, B, T, I))},
         r"inp: expected a 3-D tensor \[B, T, I\] \(or 2-D \[T, I\] unbatched\), got 4-D"),
        ("state size", (params, d), {**good, "x0": jnp.ones((B, H + 1))},
         r"x0: expected shape \(3, 12\) = \[B, H\] with H = 12, got \(3, 13\)"),
        ("missing state", (params, d), {**good, "x0": None},
         r"x0: the leaky model needs an initial pre-activation \[B, H\], got None"),
        ("missing inp", (params, d), {**good, "inp": None, "stim_input": None, "eps_x": None,
                                      "eps_u": None},
         r"inp: expected an input of feature size I = 2, got None"),
        ("stimulus", (params, d), {**good, "stim_input": jnp.ones((B, T + 1, H))},
         r"stim_input: expected shape \(3, 6, 12\)"),
        ("W_rec", (params, d), {**good, "W_rec": jnp.ones((H, H + 1))},
         r"W_rec: expected shape \(12, 12\) = \[H, H\], got \(12, 13\)"),
        ("eps_u", (params, d), {**good, "eps_u": jnp.ones((B, T, H))},
         r"eps_u: expected shape \(3, 6, 2\)"),
        ("key and eps", (params, d), {**good, "key": jax.random.key(0)},
         r"key: noise is drawn from key or given as eps_x / eps_u, not both"),
        ("elman h0", (params, elman), {**good, "h0": None},
         r"h0: the Elman model needs an initial state \[B, H\], got None"),
        ("params key", (no_inp, d), good, r"params: missing 'W_inp'"),
        ("params shape", ({**params, "base_firing": jnp.ones(H + 1)}, d), good,
         r"params\['base_firing'\]: expected shape \(12,\) .* got \(13,\)"),
        ("dynamics", (params, d.to_dict()), good, r"dynamics: expected a mrnn_core.Dynamics, got dict"),
    ]


@pytest.mark.parametrize("args, kwargs, match", [c[1:] for c in _bad_calls()],
                         ids=[c[0] for c in _bad_calls()])
def test_bad_calls_raise_before_tracing(args, kwargs, match):
    with count_traces() as traces, pytest.raises(mrnn_core.MRNNConfigError, match=match):
        mrnn_jax.simulate(*args, **kwargs)
    assert traces == []


def test_bad_calls_raise_the_same_error_inside_a_users_jit():
    d, params, call = _setup()
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"inp: expected shape \(3, 6, 2\)"):
        jax.jit(mrnn_jax.simulate, static_argnums=1)(params, d, **{**call, "inp": jnp.ones((B, T, 3))})

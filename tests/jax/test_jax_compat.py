"""mrnn_jax._compat: each framework API outside JAX's and equinox's stable surface, at each use.

A JAX or equinox upgrade that moves or changes one of them should fail here
first (see the module's docstring for why each is there).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mrnn_core as mc
import mrnn_jax
from mrnn_jax._blocks import block_plan
from mrnn_jax._compat import is_traced
from mrnn_jax._simulate import _alpha

SPEC = (mc.NetworkSpec()
        .with_recurrent_region("a", 3)
        .with_recurrent_region("b", 2, sign="neg")
        .with_input_region("u", 2)
        .with_recurrent_connection("a", "b")
        .with_recurrent_connection("b", "a")
        .with_input_connection("u", "a"))


def _seen_inside(transform, x):
    """``is_traced`` of the value a function sees under ``transform``."""
    seen = []

    def f(v):
        seen.append(is_traced(v))
        return jnp.sum(v)

    transform(f)(x)
    return seen[0]


def test_is_traced_tells_tracers_from_concrete_values():
    x = jnp.arange(3.0)
    assert not any(is_traced(v) for v in (x, np.arange(3.0), 1.5, None))
    assert _seen_inside(jax.jit, x)
    assert _seen_inside(jax.grad, x)
    assert _seen_inside(jax.vmap, x[:, None])


def test_concrete_equal_time_constants_give_one_static_alpha_and_traced_ones_a_vector():
    dynamics = mc.Dynamics(dt=10, tau=100)
    tau = jnp.full(5, 50.0)
    assert _alpha({"tau": tau}, dynamics) == (0.2, None)
    seen = []
    jax.jit(lambda t: seen.append(_alpha({"tau": t}, dynamics)) or t)(tau)
    assert seen[0][0] is None and is_traced(seen[0][1])


def test_block_plan_reads_a_concrete_mask_and_falls_back_to_the_spec_for_a_traced_one():
    model = mrnn_jax.mRNN(SPEC, seed=0)
    concrete = block_plan(model.W_rec_mask)
    assert concrete is not None
    traced = []
    jax.jit(lambda m: traced.extend([block_plan(m), block_plan(m, SPEC)]) or m)(model.W_rec_mask)
    assert traced[0] is None and traced[1] is not None


def test_check_finite_refuses_traced_states_and_checks_concrete_ones():
    model = mrnn_jax.mRNN(SPEC, seed=0)
    inp = jnp.ones((1, 4, 2))
    xs, _ = model(inp, check_finite=True)
    assert xs.shape == (1, 4, 5)
    with pytest.raises(mc.MRNNConfigError, match="check_finite: expected concrete states"):
        jax.jit(lambda m, u: m(u, check_finite=True))(model, inp)


@pytest.mark.parametrize("cls", [mrnn_jax.mRNN, mrnn_jax.ElmanmRNN])
def test_a_model_inside_a_pytree_prints_its_summary(cls):
    model = cls(SPEC, seed=0)
    lines = mc.describe(model.spec, model.dynamics).split("\n")
    wide = eqx.tree_pformat({"net": model}, width=10_000)
    assert f"{cls.__name__}({'; '.join(lines)})" in wide
    narrow = [line.strip() for line in eqx.tree_pformat({"net": model}, width=20).split("\n")]
    start = narrow.index(f"{cls.__name__}(")
    assert narrow[start:start + len(lines) + 2] == [f"{cls.__name__}(", *lines, ")"]

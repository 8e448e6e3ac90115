"""``check_finite=True`` on a forward call: both backends name the same first
step, unit and region that went non-finite; off by default; under jax.jit the
documented route is mrnn_core.check_finite on the returned arrays."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

import mrnn_core
from .equiv_helpers import JAX_CLASSES, TORCH_CLASSES
from mrnn_core import MRNNConfigError, NonFiniteStateError

SPEC = mrnn_core.load_config({
    "recurrent_regions": [{"name": "thal", "num_units": 2}, {"name": "ctx", "num_units": 3}],
    "recurrent_connections": [{"src_region": "ctx", "dst_region": "ctx"},
                              {"src_region": "thal", "dst_region": "ctx"}],
})


def exploding(kind):
    """Linear units; only unit 3 (ctx's second) excites itself by 1e200, so from
    x0 = 1 its state is about 1e199 after one update and overflows in the second
    (output step 1) in float64, while every other unit stays finite until then."""
    dynamics = mrnn_core.Dynamics(kind=kind, activation="linear", rec_constrained=False)
    params = dict(mrnn_core.Checkpoint.initialise(SPEC, dynamics, seed=0).params)
    params["W_rec"] = np.zeros((5, 5))
    params["W_rec"][3, 3] = 1e200
    return mrnn_core.Checkpoint(SPEC, dynamics, params)


MESSAGE = (r"^{name}: the state became non-finite \(inf\) at step 1 of 4 \(the state after "
           r"update 2\), unit 3 \(region 'ctx', its unit 1\), trial 0")


@pytest.mark.parametrize("kind, name", [("leaky", "xs"), ("elman", "hs")])
def test_both_backends_name_the_first_non_finite_step_and_unit(kind, name):
    ckpt = exploding(kind)
    torch_m = TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    jax_m = JAX_CLASSES[kind].from_checkpoint(ckpt)
    inp, state = np.zeros((2, 4, 0)), np.ones((2, 5))
    for model in (torch_m, jax_m):
        with pytest.raises(NonFiniteStateError, match=MESSAGE.format(name=name)):
            model(inp, state, check_finite=True)
        out = model(inp, state)  # off by default: the states come back as they are
        states = out[0] if kind == "leaky" else out
        # the public helper takes the returned arrays as they are (torch: requires grad)
        with pytest.raises(NonFiniteStateError, match=MESSAGE.format(name=name)):
            mrnn_core.check_finite(states, SPEC, name=name)
        states = states.detach().numpy() if isinstance(states, torch.Tensor) else np.asarray(states)
        assert np.isinf(states[0, 1, 3]) and np.isfinite(states[:, 0]).all()


def test_under_jit_the_check_runs_on_the_returned_arrays():
    ckpt = exploding("leaky")
    model = JAX_CLASSES["leaky"].from_checkpoint(ckpt)
    inp, x0 = np.zeros((2, 4, 0)), np.ones((2, 5))
    with pytest.raises(MRNNConfigError, match=r"^check_finite: expected concrete states, got "
                                              r"traced ones .* mrnn_core\.check_finite"):
        jax.jit(lambda m, u, x: m(u, x, check_finite=True))(model, inp, x0)
    xs, _ = jax.jit(lambda m, u, x: m(u, x))(model, inp, x0)
    with pytest.raises(NonFiniteStateError, match=MESSAGE.format(name="xs")):
        mrnn_core.check_finite(xs, model.spec, name="xs")

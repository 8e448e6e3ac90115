"""Property 1 (and noise given as arrays, property 3a): torch == JAX == reference."""

import numpy as np
from hypothesis import given

from .equiv_helpers import (assert_close, cases, jax_model, reference, run_jax, run_torch,
                           torch_model)


@given(cases())
def test_models_match_reference(case):
    ckpt, call = case
    expected = reference(ckpt, call)
    assert_close(run_torch(torch_model(ckpt), call), expected, what="torch vs reference")
    assert_close(run_jax(jax_model(ckpt), call), expected, what="jax vs reference")


@given(cases())
def test_pure_simulate_matches_reference(case):
    """The documented functional interfaces agree too (params mapping in, states out)."""
    import jax.numpy as jnp
    import torch

    import mrnn_jax
    import mrnn_torch

    ckpt, call = case
    expected = reference(ckpt, call)
    t_params = {k: torch.tensor(np.array(v)) for k, v in ckpt.params.items()}
    t_call = {k: (None if v is None else torch.tensor(v)) for k, v in call.items()}
    assert_close(mrnn_torch.simulate(t_params, ckpt.dynamics, **t_call), expected,
                 what="torch simulate")
    j_params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    j_call = {k: (None if v is None else jnp.asarray(v)) for k, v in call.items()}
    assert_close(mrnn_jax.simulate(j_params, ckpt.dynamics, **j_call), expected,
                 what="jax simulate")

"""Property 6: in float32 the backends still agree, at float32's precision.

float32 has a unit roundoff of 6e-8; over up to a dozen steps with O(1)
states the rounding differences of two summation orders stay within about
1e-5 absolute; we allow rtol = atol = 1e-4.
"""

import jax.numpy as jnp
import torch
from hypothesis import given

from .equiv_helpers import assert_close, cases, jax_model, run_jax, run_torch, torch_model


@given(cases())
def test_float32_backends_agree(case):
    ckpt, call = case
    t = run_torch(torch_model(ckpt, dtype=torch.float32), call)
    j = run_jax(jax_model(ckpt, dtype=jnp.float32), call, dtype=jnp.float32)
    assert (t[0] if isinstance(t, tuple) else t).dtype == torch.float32
    assert (j[0] if isinstance(j, tuple) else j).dtype == jnp.float32
    assert_close(t, j, rtol=1e-4, atol=1e-4, what="float32 torch vs jax")

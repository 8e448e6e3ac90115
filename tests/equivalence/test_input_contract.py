"""Both backends accept and refuse exactly the same forward-call inputs.

The contract (README, "Inputs a forward call accepts"): tensors / JAX arrays,
numpy arrays and nested lists of real floating numbers; a lower precision
than the model's is cast up, a higher one is refused, and so are integers,
booleans, complex numbers, strings, ragged lists and other objects. Every
argument of the forward call follows it, and ``T = 0`` returns empty outputs.

Accepted values are multiples of 1/8, exact in float16, so a cast input
gives bit for bit the output of the same input already in the model's dtype
(within one backend). Across backends: rtol = atol = 1e-10 in float64 (the
tolerance of equiv_helpers), 1e-5 in float32 (a few roundings of 6e-8 over
three steps of a five-unit network).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core
from .equiv_helpers import JAX_CLASSES, TORCH_CLASSES, jax_model
from mrnn_core import MRNNConfigError

SPEC = mrnn_core.load_config({
    "recurrent_regions": [{"name": "a", "num_units": 3}, {"name": "b", "num_units": 2,
                                                          "sign": "neg"}],
    "input_regions": [{"name": "u", "num_units": 2}],
    "recurrent_connections": [{"src_region": "a", "dst_region": "b"},
                              {"src_region": "b", "dst_region": "a"},
                              {"src_region": "a", "dst_region": "a"}],
    "input_connections": [{"src_region": "u", "dst_region": "a"}],
})
B, T, H, I = 2, 3, SPEC.hidden_size, SPEC.input_size
RNG = np.random.default_rng(0)
BASE = {
    "inp": RNG.integers(-4, 5, (B, T, I)) / 8,
    "state": RNG.integers(-4, 5, (B, H)) / 8,
    "h0": RNG.integers(0, 5, (B, H)) / 8,
    "stim_input": RNG.integers(-4, 5, (B, T, H)) / 8,
    "W_rec": RNG.integers(-2, 3, (H, H)) / 8,
    "eps_x": RNG.integers(-8, 9, (B, T, H)) / 8,
    "eps_u": RNG.integers(-8, 9, (B, T, I)) / 8,
}

TORCH_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64,
                "int32": torch.int32, "bool": torch.bool, "complex64": torch.complex64}


def as_torch(a, dtype):
    return torch.tensor(a, dtype=TORCH_DTYPES[dtype])


def as_jax(a, dtype):
    return jnp.asarray(a, dtype=dtype)


# (label, make(base, native) -> value, refusal regex in a float64 model or None,
#  refusal regex in a float32 model or None)
INTS = r"expected real floating-point values \(the model computes in float\d\d\), got integers"
WIDER = (r"expected dtype float32 \(the model's\) or a floating dtype of lower precision, "
         r"got float64")
FORMS = [
    ("numpy float64", lambda a, nat: a, None, WIDER),
    ("numpy float32", lambda a, nat: a.astype(np.float32), None, None),
    ("numpy float16", lambda a, nat: a.astype(np.float16), None, None),
    ("nested list of floats", lambda a, nat: a.tolist(), None, None),
    ("tensor float64", lambda a, nat: nat(a, "float64"), None, WIDER),
    ("tensor float32", lambda a, nat: nat(a, "float32"), None, None),
    ("tensor float16", lambda a, nat: nat(a, "float16"), None, None),
    ("numpy int64", lambda a, nat: a.astype(np.int64), INTS + r" \(dtype int64\)", INTS),
    ("nested list of ints", lambda a, nat: a.astype(int).tolist(), INTS, INTS),
    ("tensor int32", lambda a, nat: nat(a, "int32"), INTS + r" \(dtype int32\)", INTS),
    ("numpy bool", lambda a, nat: a > 0, "got booleans", "got booleans"),
    ("tensor bool", lambda a, nat: nat(a > 0, "bool"), "got booleans", "got booleans"),
    ("numpy complex128", lambda a, nat: a.astype(np.complex128), "got complex numbers",
     "got complex numbers"),
    ("tensor complex64", lambda a, nat: nat(a, "complex64"), "got complex numbers",
     "got complex numbers"),
    ("numpy strings", lambda a, nat: a.astype(str), "got strings", "got strings"),
    ("string", lambda a, nat: "abc", "expected a tensor, an array or a nested list of "
     "numbers, got str", "got str"),
    ("dict", lambda a, nat: {"inp": a}, "got dict", "got dict"),
    ("ragged list", lambda a, nat: [[0.0], [0.0, 1.0]], "rectangular shape, got a ragged",
     "rectangular shape"),
]


def _ckpt(kind):
    return mrnn_core.Checkpoint.initialise(SPEC, mrnn_core.Dynamics(kind=kind), seed=3)


def _models(kind, dtype):
    ckpt = _ckpt(kind)
    torch_m = TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu",
                                                  dtype=TORCH_DTYPES[dtype])
    return torch_m, jax_model(ckpt, dtype=getattr(jnp, dtype))


def _call(model, kind, args):
    """Forward with ``args`` keyed as in BASE (``state`` is x0 or h0)."""
    args = dict(args)
    inp, state = args.pop("inp"), args.pop("state")
    if kind == "elman":
        args.pop("h0", None)
        return model(inp, state, **args)
    return model(inp, state, args.pop("h0", None), **args)


def _numpy(out):
    out = out if isinstance(out, tuple) else (out,)
    return [o.detach().numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in out]


ARGS = [("leaky", name) for name in BASE] + [("elman", "inp"), ("elman", "state")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind, arg", ARGS, ids=[f"{k}-{a}" for k, a in ARGS])
def test_every_argument_is_accepted_or_refused_alike_by_both_backends(kind, arg, dtype):
    torch_m, jax_m = _models(kind, dtype)
    name = {"state": "x0" if kind == "leaky" else "h0"}.get(arg, arg)
    exact = {k: v.astype(dtype) for k, v in BASE.items()}
    baseline = [_numpy(_call(torch_m, kind, {k: torch.from_numpy(v) for k, v in exact.items()})),
                _numpy(_call(jax_m, kind, {k: jnp.asarray(v) for k, v in exact.items()}))]
    tol = 1e-10 if dtype == "float64" else 1e-5
    for t, j in zip(*baseline):
        np.testing.assert_allclose(t, j, rtol=tol, atol=tol, err_msg="torch vs JAX baseline")
    for label, make, refuse64, refuse32 in FORMS:
        refusal = refuse64 if dtype == "float64" else refuse32
        for b, (model, native, base_args) in enumerate((
                (torch_m, as_torch, {k: torch.from_numpy(v) for k, v in exact.items()}),
                (jax_m, as_jax, {k: jnp.asarray(v) for k, v in exact.items()}))):
            backend = ("torch", "JAX")[b]
            args = dict(base_args, **{arg: make(BASE[arg], native)})
            if refusal is None:
                out = _numpy(_call(model, kind, args))
                for got, want in zip(out, baseline[b]):
                    assert got.dtype == want.dtype, (backend, label)
                    assert np.array_equal(got, want), (backend, label)
            else:
                with pytest.raises(MRNNConfigError, match=rf"^{name}: .*{refusal}"):
                    _call(model, kind, args)


LAYOUTS = [(True, (B, 0)), (False, (0, B)), (True, (0,)), (False, (0,))]


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("batch_first, lead", LAYOUTS)
def test_zero_steps_give_empty_outputs_of_the_call_layout_in_both_backends(kind, batch_first,
                                                                          lead):
    import dataclasses

    ckpt = _ckpt(kind)
    ckpt = mrnn_core.Checkpoint(SPEC, dataclasses.replace(ckpt.dynamics, batch_first=batch_first),
                                ckpt.params)
    torch_m = TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    jax_m = JAX_CLASSES[kind].from_checkpoint(ckpt)
    inp = np.zeros(lead + (I,))
    state = np.zeros((B, H) if len(lead) == 2 else (H,))
    for model in (torch_m, jax_m):
        out = _numpy(model(inp, state))
        assert len(out) == (2 if kind == "leaky" else 1)
        for o in out:
            assert o.shape == lead + (H,) and o.dtype == np.float64
        # without an initial state too (the model's initial condition)
        for o in _numpy(model(inp)):
            assert o.shape == lead + (H,)

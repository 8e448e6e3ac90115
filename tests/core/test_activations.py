"""The one activation table (mrnn_core.activations) on numpy, torch and JAX arrays.

Values are checked against the textbook formulas, derivatives against each
framework's own autodiff, and the fused torch backward's in-place kernels
against the core's derivative-from-output.
"""

import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core
import mrnn_jax
import mrnn_torch
from mrnn_core import activations
from mrnn_core._arrays import adapter, library_of, namespace

X = np.concatenate([np.linspace(-30, 30, 601), [-1e-3, 0.0, 1e-3, 19.99, 20.0, 20.01, 35.0]])

FORMULAS = {
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0),
    "linear": lambda x: x,
}


def _arrays(x):
    return {"numpy": x, "torch": torch.tensor(x), "jax": jnp.asarray(x)}


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
def test_each_library_computes_the_formula_in_its_own_arrays(name, library):
    x = _arrays(X)[library]
    y = activations.get_activation(name, library)(x)
    assert library_of(y) == library
    np.testing.assert_allclose(np.asarray(y), FORMULAS[name](X), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
def test_backends_hand_out_the_core_table(name):
    x = X[::7]
    np.testing.assert_array_equal(mrnn_torch.get_activation(name)(torch.tensor(x)).numpy(),
                                  activations.get_activation(name, "torch")(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(np.asarray(mrnn_jax.get_activation(name)(jnp.asarray(x))),
                                  np.asarray(activations.get_activation(name, "jax")(jnp.asarray(x))))


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
def test_derivative_is_the_autodiff_slope_in_every_library(name):
    x = X[np.abs(X) > 1e-2]  # relu has no slope at 0
    t = torch.tensor(x, requires_grad=True)
    mrnn_torch.get_activation(name)(t).sum().backward()
    autodiff = t.grad.numpy()
    for library, a in _arrays(x).items():
        got = activations.derivative(name, a)
        assert library_of(got) == library
        np.testing.assert_allclose(np.asarray(got), autodiff, rtol=1e-12, atol=1e-14)
    jax_slope = jax.vmap(jax.grad(mrnn_jax.get_activation(name)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(jax_slope), autodiff, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
def test_derivative_from_output_equals_the_derivative(name):
    x = X[(np.abs(X) < 15) & (np.abs(X) > 1e-2)]  # where h = f(x) still tells x apart
    for library, a in _arrays(x).items():
        h = activations.get_activation(name, library)(a)
        np.testing.assert_allclose(np.asarray(activations.derivative_from_output(name, h)),
                                   np.asarray(activations.derivative(name, a)),
                                   rtol=1e-9, atol=1e-14)


def test_relu_slope_is_zero_at_zero_everywhere():
    for a in _arrays(np.zeros(3)).values():
        assert np.all(np.asarray(activations.derivative("relu", a)) == 0)
        assert np.all(np.asarray(activations.derivative_from_output("relu", a)) == 0)


@pytest.mark.parametrize("name", mrnn_core.ACTIVATIONS)
def test_fused_torch_backward_kernel_matches_the_core_derivative(name):
    from mrnn_torch._fused import _times_derivative

    x = torch.tensor(X[np.abs(X) < 15])
    h = activations.get_activation(name, "torch")(x)
    gh = torch.linspace(-2, 3, len(x), dtype=torch.float64)
    out = torch.empty_like(gh)
    _times_derivative(name, gh, h, out)
    np.testing.assert_allclose(out.numpy(), (gh * activations.derivative_from_output(name, h)).numpy(),
                               rtol=1e-13, atol=1e-15)


def test_unknown_activation_is_refused_listing_the_names():
    for call in (lambda: activations.get_activation("elu", "torch"),
                 lambda: activations.derivative("elu", np.ones(2)),
                 lambda: activations.derivative_from_output("elu", np.ones(2))):
        with pytest.raises(mrnn_core.MRNNConfigError, match=r"unknown activation 'elu'.*'relu'"):
            call()


def test_namespace_follows_the_callers_arrays():
    assert namespace(1.0, [1, 2], np.ones(2)).name == "numpy"
    assert namespace(np.ones(2), torch.ones(2)).name == "torch"
    assert namespace(torch.nn.Parameter(torch.ones(2))).name == "torch"
    assert namespace(jnp.ones(2)).name == "jax"
    seen = []
    jax.jit(lambda a: seen.append(namespace(a).name) or a)(jnp.ones(2))  # a tracer
    assert seen == ["jax"]


def test_adapters_pickle_as_the_same_object():
    for name in ("numpy", "torch", "jax"):
        assert pickle.loads(pickle.dumps(adapter(name))) is adapter(name)


def test_numpy_arrays_never_import_a_framework():
    script = ("import sys, numpy as np\n"
              "from mrnn_core import activations\n"
              "for n in ('relu', 'tanh', 'sigmoid', 'softplus', 'linear'):\n"
              "    activations.derivative(n, activations.get_activation(n)(np.ones(3)))\n"
              "    activations.derivative_from_output(n, np.ones(3))\n"
              "print(sorted({'torch', 'jax'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_array_adapters_never_import_a_framework():
    # In a fresh interpreter with neither torch nor JAX imported, asking the
    # core for their adapters is refused by name instead of importing them.
    import subprocess
    import sys

    code = ("import sys, mrnn_core\n"
            "from mrnn_core import _arrays\n"
            "for name in ('torch', 'jax'):\n"
            "    try:\n"
            "        _arrays.adapter(name)\n"
            "    except mrnn_core.MRNNConfigError as err:\n"
            "        assert f\"array library '{name}': expected it to be imported already\" in str(err)\n"
            "    else:\n"
            "        raise AssertionError(name)\n"
            "assert 'torch' not in sys.modules and 'jax' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

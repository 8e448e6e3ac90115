"""The losses are written once (mrnn_core.losses.Losses) and bound per library.

Each module hands back its own library's arrays, even for plain lists, the
bound functions pickle (Ray Tune ships them to workers), and NaN rates give
a NaN loss in every backend instead of a silent 0.
"""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import mrnn_core.losses as C
import mrnn_jax.losses as J
import mrnn_torch.losses as T
from mrnn_core._arrays import library_of

MODULES = {"numpy": C, "torch": T, "jax": J}


@pytest.mark.parametrize("library", MODULES)
def test_each_module_answers_in_its_own_library_even_for_lists(library):
    m = MODULES[library]
    rates = [[0.0, 1.0, 2.0], [1.0, 1.0, 4.0]]
    results = [m.weight_l1(rates), m.rate_cv(rates)]
    if library != "numpy":
        assert all(library_of(r) == library for r in results)
    np.testing.assert_allclose([float(r) for r in results],
                               [9.0, C.rate_cv(np.asarray(rates))], rtol=1e-6)  # torch: float32


@pytest.mark.parametrize("library", MODULES)
def test_nan_rates_give_a_nan_spread_not_zero(library):
    m = MODULES[library]
    h = np.array([[0.5, np.nan, 1.0], [0.25, 0.25, 0.25]])
    arg = {"numpy": h, "torch": torch.tensor(h), "jax": jnp.asarray(h)}[library]
    assert np.isnan(float(m.rate_std(arg)))
    assert float(m.rate_std(arg[1:])) == 0.0


def test_a_silent_population_has_zero_spread_gradient():
    h = torch.full((2, 3), 0.25, dtype=torch.float64, requires_grad=True)
    T.rate_std(h).backward()
    assert torch.all(h.grad == 0)
    assert np.all(np.asarray(jax.jit(jax.grad(J.rate_cv))(jnp.full((2, 3), 0.25))) == 0)


@pytest.mark.parametrize("library", MODULES)
def test_bound_losses_pickle_and_still_compute(library):
    f = pickle.loads(pickle.dumps(MODULES[library].weight_l2))
    assert float(f(np.eye(3))) == 3.0

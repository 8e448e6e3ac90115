"""Property: for drawn specs, dynamics, seeds and per-member time constants, every member
of an Ensemble equals the same network run alone (float64, forward and gradients, 1e-12
absolute plus 1e-12 relative for the rare large relu or linear state)."""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from mrnn_core.testing import dynamics_settings, network_specs
from mrnn_torch import Ensemble


@st.composite
def ensembles(draw):
    spec = draw(network_specs(max_units=5, beyond_mrnntorch=True))
    dynamics = draw(dynamics_settings(balance_ei=True))
    E = draw(st.integers(1, 3))
    seeds = draw(st.lists(st.integers(0, 2**31 - 1), min_size=E, max_size=E))
    taus = draw(st.one_of(st.none(), st.lists(st.sampled_from([20.0, 50.0, 100.0]),
                                              min_size=E, max_size=E)))
    ens = Ensemble.from_seeds(spec, seeds, dynamics=dynamics, device="cpu", dtype=torch.float64,
                              member_values=None if taus is None else {"tau": taus})
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lead = (B, T) if dynamics.batch_first else (T, B)
    shared = draw(st.booleans())
    inp = rng.standard_normal(((() if shared else (E,)) + lead + (spec.input_size,)))
    eps = {"eps_x": rng.standard_normal((E, *lead, spec.hidden_size)),
           "eps_u": rng.standard_normal((E, *lead, spec.input_size))}
    return ens, torch.tensor(inp), {k: torch.tensor(v) for k, v in eps.items()}, shared


@given(ensembles())
def test_each_member_equals_itself_alone(case):
    ens, inp, eps, shared = case
    leaky = ens.kind == "leaky"
    out = ens(inp, **eps)
    hs = out[1] if leaky else out
    params = list(ens.parameters())
    loss = hs.tanh().sum() + (out[0].sin().sum() if leaky else 0)
    grads = dict(zip(map(id, params), torch.autograd.grad(loss, params, allow_unused=True)))
    for e, m in enumerate(ens.members()):
        alone = m(inp if shared else inp[e], eps_x=eps["eps_x"][e], eps_u=eps["eps_u"][e])
        a_hs = alone[1] if leaky else alone
        torch.testing.assert_close(hs[e], a_hs, rtol=1e-12, atol=1e-12)
        if leaky:
            torch.testing.assert_close(out[0][e], alone[0], rtol=1e-12, atol=1e-12)
        mine = list(m.parameters())
        a_loss = a_hs.tanh().sum() + (alone[0].sin().sum() if leaky else 0)
        for p, g in zip(mine, torch.autograd.grad(a_loss, mine, allow_unused=True)):
            got = grads[id(p)]
            if g is None or got is None:
                assert g is None and got is None
                continue
            torch.testing.assert_close(got, g, rtol=1e-12, atol=1e-12)

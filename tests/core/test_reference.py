"""The numpy reference simulator against hand-computed steps (SEMANTICS.md section 4).

The network is two hidden units (unit 0 excitatory, unit 1 inhibitory) and
one excitatory input channel. Raw parameters:

    W_rec = [[0.5, -0.25], [-0.5, 0.75]]    W_rec_mask = [[1, 0], [1, 1]]
    W_inp = [[1.0], [-0.5]]                 W_inp_mask = [[1], [1]]
    b     = [0.1, -0.2]

Effective weights, worked out by hand:

- Dale's law (``M * |W| * S``, sign of the source column):
  ``W_rec_eff = [[0.5, 0], [0.5, -0.75]]``, ``W_inp_eff = [1.0, 0.5]``.
- unconstrained (``W * M``):
  ``W_rec_eff = [[0.5, 0], [-0.5, 0.75]]``, ``W_inp_eff = [1.0, -0.5]``.

``by_hand`` below writes the update equations out unit by unit with Python
floats and ``math``; it never calls mrnn_core. Two literal cases pin it to
pencil-and-paper arithmetic first.
"""

import math

import numpy as np
import pytest

import mrnn_core as mc
from mrnn_core import reference

ACTIVATIONS = {
    "relu": lambda x: max(x, 0.0),
    "tanh": math.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "softplus": lambda x: math.log(1.0 + math.exp(x)),
    "linear": lambda x: x,
}
W_REC_EFF = {True: ((0.5, 0.0), (0.5, -0.75)), False: ((0.5, 0.0), (-0.5, 0.75))}
W_INP_EFF = {True: (1.0, 0.5), False: (1.0, -0.5)}
BIAS = (0.1, -0.2)
DT, TAU = 5.0, 10.0  # alpha = 0.5
TOL = dict(rtol=1e-12, atol=1e-14)


def params():
    S_rec = np.array([[1.0, -1.0], [1.0, -1.0]])
    M_rec = np.array([[1.0, 0.0], [1.0, 1.0]])
    return {
        "W_rec": np.array([[0.5, -0.25], [-0.5, 0.75]]),
        "W_rec_mask": M_rec, "W_rec_sign_matrix": M_rec * S_rec,
        "W_inp": np.array([[1.0], [-0.5]]),
        "W_inp_mask": np.ones((2, 1)), "W_inp_sign_matrix": np.ones((2, 1)),
        "base_firing": np.array(BIAS), "init": np.zeros(2),
    }


def dynamics(kind, activation="relu", constrained=True, batch_first=True,
             sigma_x=0.0, sigma_u=0.0):
    return mc.Dynamics(kind=kind, activation=activation, dt=DT, tau=TAU,
                       noise_level_act=sigma_x, noise_level_inp=sigma_u,
                       rec_constrained=constrained, inp_constrained=constrained,
                       batch_first=batch_first)


def by_hand(kind, activation, constrained, state, inputs, h0=None, stims=None,
            eps_x=None, eps_u=None, sigma_x=0.0, sigma_u=0.0, W_rec=None):
    """One sequence (no batch): ``state`` is x0 (leaky) or h0 (Elman); ``inputs``
    the scalar u_t per step. Returns the lists of x_t and h_t for t = 1..T."""
    f = ACTIVATIONS[activation]
    W = W_rec if W_rec is not None else W_REC_EFF[constrained]
    w_in = W_INP_EFF[constrained]
    T = len(inputs)
    stims = stims or [(0.0, 0.0)] * T
    eps_x = eps_x or [(0.0, 0.0)] * T
    eps_u = eps_u or [0.0] * T
    alpha = DT / TAU
    if kind == "leaky":
        c_x = math.sqrt(2 * alpha * sigma_x**2) / alpha
        c_u = math.sqrt(2 * alpha * sigma_u**2) / alpha
        x = list(state)
        h = list(h0) if h0 is not None else [f(v) for v in x]
    else:
        c_x, c_u = sigma_x, sigma_u
        h = list(state)
    xs, hs = [], []
    for t in range(T):
        u = inputs[t] + c_u * eps_u[t]
        drive = [W[i][0] * h[0] + W[i][1] * h[1] + w_in[i] * u + BIAS[i] + c_x * eps_x[t][i]
                 for i in range(2)]
        if kind == "leaky":
            x = [x[i] + alpha * (-x[i] + drive[i]) + alpha * stims[t][i] for i in range(2)]
        else:
            x = [drive[i] + stims[t][i] for i in range(2)]
        h = [f(v) for v in x]
        xs.append(x)
        hs.append(h)
    return xs, hs


# -- two literal cases, by pencil and paper ------------------------------------


def test_leaky_relu_two_steps_by_pencil_and_paper():
    # x0 = [0.2, -0.4], h0 = relu(x0) = [0.2, 0], alpha = 0.5, u = [1, 0].
    # step 1: drive = [0.5*0.2 + 1*1 + 0.1, 0.5*0.2 + 0.5*1 - 0.2] = [1.2, 0.4]
    #         x1 = [0.2 + 0.5*(-0.2 + 1.2), -0.4 + 0.5*(0.4 + 0.4)] = [0.7, 0.0]
    # step 2: drive = [0.5*0.7 + 0.1, 0.5*0.7 - 0.2] = [0.45, 0.15]
    #         x2 = [0.7 + 0.5*(-0.7 + 0.45), 0 + 0.5*0.15] = [0.575, 0.075]
    xs, hs = reference.simulate(params(), dynamics("leaky"), np.array([[[1.0], [0.0]]]),
                                np.array([[0.2, -0.4]]))
    np.testing.assert_allclose(xs, [[[0.7, 0.0], [0.575, 0.075]]], **TOL)
    np.testing.assert_allclose(hs, [[[0.7, 0.0], [0.575, 0.075]]], **TOL)
    np.testing.assert_allclose(by_hand("leaky", "relu", True, [0.2, -0.4], [1.0, 0.0])[0],
                               [[0.7, 0.0], [0.575, 0.075]], **TOL)


def test_elman_relu_two_steps_by_pencil_and_paper():
    # h0 = [0.2, 0], u = [1, 0].
    # step 1: x1 = [0.5*0.2 + 1*1 + 0.1, 0.5*0.2 + 0.5*1 - 0.2] = [1.2, 0.4]
    # step 2: x2 = [0.5*1.2 + 0.1, 0.5*1.2 - 0.75*0.4 - 0.2] = [0.7, 0.1]
    hs = reference.simulate(params(), dynamics("elman"), np.array([[[1.0], [0.0]]]),
                            h0=np.array([[0.2, 0.0]]))
    np.testing.assert_allclose(hs, [[[1.2, 0.4], [0.7, 0.1]]], **TOL)
    np.testing.assert_allclose(by_hand("elman", "relu", True, [0.2, 0.0], [1.0, 0.0])[1],
                               [[1.2, 0.4], [0.7, 0.1]], **TOL)


# -- every dynamics x activation, one and two steps ----------------------------

KINDS = ("leaky", "elman")
X0 = ([0.2, -0.4], [-0.3, 0.6])     # one row per batch element
INPUTS = ([1.0, -0.5], [0.25, 2.0])  # u_1, u_2 per batch element


def run(kind, dyn, inp, state, **kwargs):
    """``reference.simulate`` with the state passed where each kind expects it;
    always returns ``(xs, hs)`` (``xs`` is None for Elman)."""
    if kind == "leaky":
        return reference.simulate(params(), dyn, inp, state, **kwargs)
    return None, reference.simulate(params(), dyn, inp, h0=state, **kwargs)


def check(kind, got, want):
    """``got`` = (xs, hs) in [B, T, H]; ``want`` = one ``by_hand`` result per batch row."""
    xs, hs = got
    np.testing.assert_allclose(hs, [w[1] for w in want], **TOL)
    if kind == "leaky":
        np.testing.assert_allclose(xs, [w[0] for w in want], **TOL)


@pytest.mark.parametrize("constrained", [True, False], ids=["dale", "free"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [1, 2])
def test_noiseless_steps_match_the_hand_computation(kind, activation, constrained, steps):
    inp = np.array(INPUTS)[:, :steps, None]
    got = run(kind, dynamics(kind, activation, constrained), inp, np.array(X0))
    want = [by_hand(kind, activation, constrained, X0[b], INPUTS[b][:steps]) for b in range(2)]
    check(kind, got, want)
    assert got[1].shape == (2, steps, 2)


EPS_X = ([[0.3, -1.2], [2.0, 0.5]], [[-0.7, 0.1], [1.1, -1.5]])  # [B, T, H]
EPS_U = ([[0.8], [-1.3]], [[0.4], [1.9]])                        # [B, T, I]


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", KINDS)
def test_noise_arrays_are_scaled_as_documented(kind, activation):
    sigma_x, sigma_u = 0.1, 0.2
    dyn = dynamics(kind, activation, sigma_x=sigma_x, sigma_u=sigma_u)
    got = run(kind, dyn, np.array(INPUTS)[:, :, None], np.array(X0),
              eps_x=np.array(EPS_X), eps_u=np.array(EPS_U))
    want = [by_hand(kind, activation, True, X0[b], INPUTS[b],
                    eps_x=EPS_X[b], eps_u=[e[0] for e in EPS_U[b]],
                    sigma_x=sigma_x, sigma_u=sigma_u) for b in range(2)]
    check(kind, got, want)
    noiseless = run(kind, dyn, np.array(INPUTS)[:, :, None], np.array(X0))
    assert not np.allclose(got[1], noiseless[1])


def test_leaky_noise_constants_follow_alpha():
    # c = sqrt(2 alpha sigma^2) / alpha; alpha = 0.5 -> c = 2 sigma.
    d = dynamics("leaky", sigma_x=0.1, sigma_u=0.3)
    assert d.alpha == 0.5
    assert d.hid_noise_const == pytest.approx(0.2, rel=1e-15)
    assert d.inp_noise_const == pytest.approx(0.6, rel=1e-15)
    e = dynamics("elman", sigma_x=0.1, sigma_u=0.3)
    assert (e.hid_noise_const, e.inp_noise_const) == (0.1, 0.3)


STIM = ([[0.5, -1.0], [0.0, 2.0]], [[1.5, 0.25], [-0.5, 0.0]])  # [B, T, H]


@pytest.mark.parametrize("kind", KINDS)
def test_stimulus_input_is_added_as_documented(kind):
    got = run(kind, dynamics(kind, "tanh"), np.array(INPUTS)[:, :, None], np.array(X0),
              stim_input=np.array(STIM))
    want = [by_hand(kind, "tanh", True, X0[b], INPUTS[b], stims=STIM[b]) for b in range(2)]
    check(kind, got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_a_given_W_rec_is_used_as_the_effective_matrix(kind):
    # Negative entries in the excitatory column and a masked-out entry: used as is.
    override = [[-1.0, 0.5], [0.25, 0.0]]
    got = run(kind, dynamics(kind, "linear"), np.array(INPUTS)[:, :, None], np.array(X0),
              W_rec=np.array(override))
    want = [by_hand(kind, "linear", True, X0[b], INPUTS[b], W_rec=override) for b in range(2)]
    check(kind, got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_time_major_layout_gives_the_same_numbers_transposed(kind):
    inp = np.array(INPUTS)[:, :, None].transpose(1, 0, 2)              # [T, B, I]
    stim = np.array(STIM).transpose(1, 0, 2)                           # [T, B, H]
    eps_x = np.array(EPS_X).transpose(1, 0, 2)
    eps_u = np.array(EPS_U).transpose(1, 0, 2)
    dyn = dynamics(kind, "sigmoid", batch_first=False, sigma_x=0.1, sigma_u=0.2)
    xs, hs = run(kind, dyn, inp, np.array(X0), stim_input=stim, eps_x=eps_x, eps_u=eps_u)
    assert hs.shape == (2, 2, 2)
    want = [by_hand(kind, "sigmoid", True, X0[b], INPUTS[b], stims=STIM[b], eps_x=EPS_X[b],
                    eps_u=[e[0] for e in EPS_U[b]], sigma_x=0.1, sigma_u=0.2)
            for b in range(2)]
    check(kind, (None if xs is None else xs.transpose(1, 0, 2), hs.transpose(1, 0, 2)), want)


def test_leaky_uses_a_given_h0_instead_of_f_of_x0():
    h0 = [[0.9, 0.3], [0.0, 1.0]]
    got = reference.simulate(params(), dynamics("leaky", "softplus"),
                             np.array(INPUTS)[:, :, None], np.array(X0), np.array(h0))
    want = [by_hand("leaky", "softplus", True, X0[b], INPUTS[b], h0=h0[b]) for b in range(2)]
    check("leaky", got, want)
    without = reference.simulate(params(), dynamics("leaky", "softplus"),
                                 np.array(INPUTS)[:, :, None], np.array(X0))
    assert not np.allclose(got[0], without[0])


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_inputs_give_unbatched_outputs(kind):
    inp = np.array(INPUTS[1])[:, None]  # [T, I]
    xs, hs = run(kind, dynamics(kind, "tanh"), inp, np.array(X0[1]),
                 stim_input=np.array(STIM[1]))
    assert hs.shape == (2, 2)
    check(kind, (None if xs is None else xs[None], hs[None]),
          [by_hand(kind, "tanh", True, X0[1], INPUTS[1], stims=STIM[1])])

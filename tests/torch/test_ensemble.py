"""mrnn_torch.Ensemble: every member equals the same network run alone (float64, 1e-12,
forward and gradients), it builds from seeds, models and checkpoints and splits back
bit-identically, trains with a torch optimiser as its members would alone, and rejects
members that cannot run together.

Tolerance 1e-12: the batched matmuls of the ensemble sum in the same order as a single
network's but may round a scaled product differently (``alpha * (W h)`` against
``(alpha W) h`` for per-member time constants), a few 1e-16 per step on states and
weights of order 1.
"""

import copy

import numpy as np
import pytest
import torch

import mrnn_core
from mrnn_core import MRNNConfigError
from mrnn_torch import ElmanmRNN, Ensemble, mRNN
from .torch_helpers import DEVICES

TOL = dict(rtol=0, atol=1e-12)
E, B, T = 3, 4, 7


def _spec(learned=False, frozen=False, n_inputs=2):
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("exc", 6, sign="pos", learnable_bias=learned,
                                   learnable_init=learned, init=0.2)
            .with_recurrent_region("inh", 3, sign="neg", learnable_tau=learned,
                                   tau=60.0 if learned else None)
            .with_input_region("u", n_inputs))
    for src in ("exc", "inh"):
        for dst in ("exc", "inh"):
            spec = spec.with_recurrent_connection(
                src, dst, sparsity=0.4, trainable=not (frozen and (src, dst) == ("exc", "inh")))
    return spec.with_input_connection("u", "exc").with_input_connection("u", "inh")


def _ensemble(kind="leaky", activation="tanh", batch_first=True, learned=False, frozen=False,
              member_values=None, seeds=(1, 2, 3), device="cpu"):
    dyn = mrnn_core.Dynamics(kind=kind, activation=activation, batch_first=batch_first,
                             noise_level_act=0.05, noise_level_inp=0.03)
    return Ensemble.from_seeds(_spec(learned, frozen), list(seeds), dynamics=dyn, device=device,
                               dtype=torch.float64, member_values=member_values)


def _arrays(batch_first=True, per_member=False, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    lead = (B, T) if batch_first else (T, B)
    rand = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).to(device)  # noqa: E731
    return {"inp": rand(*((E,) if per_member else ()), *lead, 2),
            "eps_x": rand(E, *lead, 9), "eps_u": rand(E, *lead, 2),
            "stim": rand(E, *lead, 9) * 0.1, "state": rand(E, B, 9) * 0.5}


def _loss(out, leaky):
    """A loss touching xs and hs, different per member and step."""
    hs = out[1] if leaky else out
    weights = torch.linspace(0.5, 1.5, hs.shape[-1], dtype=hs.dtype, device=hs.device)
    loss = (hs.square() * weights).sum()
    return loss + out[0].sin().sum() if leaky else loss


def _check_members_alone(ens, a, *, state=True, noise=True, stim=False, per_member=False):
    leaky = ens.kind == "leaky"
    kw = {}
    if noise:
        kw.update(eps_x=a["eps_x"], eps_u=a["eps_u"])
    if stim:
        kw["stim_input"] = a["stim"]
    if state:
        kw["x0" if leaky else "h0"] = a["state"]
    out = ens(a["inp"], **kw)
    params = list(ens.parameters())
    grads = torch.autograd.grad(_loss(out, leaky), params)
    by_param = dict(zip(map(id, params), grads))
    for e, m in enumerate(ens.members()):
        one = {k: v[e] for k, v in kw.items()}
        alone = m(a["inp"][e] if per_member else a["inp"], **one)
        got = (out[0][e], out[1][e]) if leaky else (out[e],)
        for g, w in zip(got, alone if leaky else (alone,)):
            torch.testing.assert_close(g, w, **TOL)
        mine = list(m.parameters())
        for p, w in zip(mine, torch.autograd.grad(_loss(alone, leaky), mine)):
            torch.testing.assert_close(by_param[id(p)], w, **TOL)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softplus", "linear"])
def test_every_member_equals_itself_alone(kind, activation):
    _check_members_alone(_ensemble(kind, activation), _arrays())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_every_member_equals_itself_alone_on_each_device(device, kind):
    """Both buffer layouts (time-major for small networks, member-major for larger ones)."""
    from mrnn_torch import ensemble

    values = {"tau": [50.0, 100.0, 200.0]} if kind == "leaky" else None
    for macs in (ensemble.MEMBER_MAJOR_MACS, 0):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ensemble, "MEMBER_MAJOR_MACS", macs)
            ens = _ensemble(kind, learned=True, member_values=values, device=device)
            _check_members_alone(ens, _arrays(device=device), state=False, stim=True)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("per_member", [False, True])
def test_layouts_and_per_member_inputs(kind, batch_first, per_member):
    ens = _ensemble(kind, batch_first=batch_first)
    _check_members_alone(ens, _arrays(batch_first, per_member), per_member=per_member, stim=True)


def test_per_member_dynamics_learned_tau_init_bias_and_frozen_blocks():
    values = {"tau": [50.0, 100.0, 200.0], "noise_level_act": [0.0, 0.02, 0.1],
              "noise_level_inp": [0.01, 0.0, 0.05], "spectral_radius": [0.5, 0.9, 1.2]}
    ens = _ensemble(learned=True, frozen=True, member_values=values)
    for e, m in enumerate(ens.members()):
        for key, v in values.items():
            assert getattr(m.dynamics, key) == v[e]
    # no state: each member starts from its own (learned) initial condition
    _check_members_alone(ens, _arrays(), state=False, stim=True)


@pytest.mark.parametrize("elements", [50, 250])
def test_chunked_drive_and_weight_gradients(monkeypatch, elements):
    """Long calls form the drive and the weight gradients a few steps at a time: chunks of
    1 step, and of 2 steps with a shorter last one, give what a single network gives."""
    from mrnn_torch import _ensemble_fused

    monkeypatch.setattr(_ensemble_fused, "_CHUNK_ELEMENTS", elements)
    values = {"tau": [50.0, 100.0, 200.0]}
    _check_members_alone(_ensemble(learned=True, member_values=values), _arrays(), state=False,
                         stim=True)
    _check_members_alone(_ensemble("elman", batch_first=False), _arrays(False, per_member=True),
                         per_member=True)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_member_major_buffers_of_larger_networks(monkeypatch, kind, batch_first):
    """Larger networks run with member-major buffers [E, T, B, H] (forced here for small
    ones): the same numbers, learned time constants, stimulus and per-member inputs included."""
    from mrnn_torch import ensemble

    monkeypatch.setattr(ensemble, "MEMBER_MAJOR_MACS", 0)
    values = {"tau": [50.0, 100.0, 200.0]} if kind == "leaky" else None
    ens = _ensemble(kind, batch_first=batch_first, learned=True, member_values=values)
    _check_members_alone(ens, _arrays(batch_first), state=False, stim=True)
    _check_members_alone(_ensemble(kind, batch_first=batch_first),
                         _arrays(batch_first, per_member=True), per_member=True)


def test_members_with_one_shared_alpha_of_another_value_and_no_noise():
    ens = _ensemble(member_values={"tau": [80.0, 80.0, 80.0]})
    _check_members_alone(ens, _arrays(), noise=False)


def test_from_seeds_draws_what_checkpoint_initialise_draws():
    dyn = mrnn_core.Dynamics(activation="tanh", spectral_radius=0.8)
    ens = Ensemble.from_seeds(_spec(), [5, 9], dynamics=dyn, dtype=torch.float64, device="cpu")
    assert len(ens) == 2
    for seed, ckpt in zip([5, 9], ens.to_checkpoints()):
        want = mrnn_core.Checkpoint.initialise(_spec(), dyn, seed)
        for k in ("W_rec", "W_rec_mask", "W_rec_sign_matrix", "W_inp", "W_inp_mask"):
            np.testing.assert_array_equal(ckpt.params[k], want.params[k])
    masks = [m.W_rec_mask for m in ens.members()]
    assert not torch.equal(masks[0], masks[1])  # seeds draw different sparse masks


def test_default_dynamics_from_model_and_activation():
    ens = Ensemble.from_seeds(_spec(), [1, 2], model="elman", activation="sigmoid",
                              dtype=torch.float64, device="cpu")
    assert all(type(m) is ElmanmRNN and m.dynamics.activation == "sigmoid" for m in ens.members())


def test_split_back_bit_identically(tmp_path):
    ens = _ensemble(learned=True)
    with torch.no_grad():
        for m in ens.members():
            m.W_rec.mul_(1.1)
            m.log_tau_inh.add_(0.3)  # a learned time constant away from its start
    ckpts = ens.to_checkpoints()
    for m, c in zip(ens.members(), ckpts):
        own = m.to_checkpoint()
        assert own.params.keys() == c.params.keys()
        assert all(np.array_equal(own.params[k], c.params[k]) for k in own.params)
    paths = []
    for e, c in enumerate(ckpts):
        paths.append(tmp_path / f"m{e}.npz")
        c.save(paths[e])
    for again in (Ensemble.from_checkpoints(ckpts, device="cpu", dtype=torch.float64),
                  Ensemble.from_checkpoints(paths, device="cpu", dtype=torch.float64)):
        for m, c in zip(again.members(), ckpts):
            back = m.to_checkpoint()
            assert all(np.array_equal(back.params[k], c.params[k]) for k in c.params)
    copies = [copy.deepcopy(m) for m in ens.members()]
    rebuilt = Ensemble.from_models(copies)
    assert rebuilt.members() == copies  # the models themselves, not copies
    a = _arrays()
    torch.testing.assert_close(rebuilt(a["inp"], a["state"])[1], ens(a["inp"], a["state"])[1],
                               rtol=0, atol=0)


def test_state_dict_holds_each_members_keys_and_loads_strictly():
    ens = _ensemble(learned=True)
    member_keys = set(ens.members()[0].state_dict())
    assert set(ens.state_dict()) == {f"networks.{e}.{k}" for e in range(E) for k in member_keys}
    other = _ensemble(learned=True, seeds=(7, 8, 9))
    other.load_state_dict(ens.state_dict(), strict=True)
    a = _arrays()
    torch.testing.assert_close(other(a["inp"], a["state"])[1], ens(a["inp"], a["state"])[1],
                               rtol=0, atol=0)


def test_training_steps_equal_each_member_trained_alone():
    ens = _ensemble(learned=True, frozen=True)
    alone = [copy.deepcopy(m) for m in ens.members()]
    structure = {k: [getattr(m, k).clone() for m in alone]
                 for k in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")}
    opt = torch.optim.Adam(ens.parameters(), lr=0.05)
    opts = [torch.optim.Adam(m.parameters(), lr=0.05) for m in alone]
    for step in range(3):
        a = _arrays(seed=step)
        opt.zero_grad()
        _loss(ens(a["inp"], a["state"], eps_x=a["eps_x"], eps_u=a["eps_u"]), True).backward()
        opt.step()
        for e, (m, o) in enumerate(zip(alone, opts)):
            o.zero_grad()
            _loss(m(a["inp"], a["state"][e], eps_x=a["eps_x"][e], eps_u=a["eps_u"][e]),
                  True).backward()
            o.step()
    for e, (m, want) in enumerate(zip(ens.members(), alone)):
        for (name, p), w in zip(m.named_parameters(), want.parameters()):
            torch.testing.assert_close(p, w, rtol=0, atol=1e-10, msg=name)
        for k, v in structure.items():
            assert torch.equal(getattr(m, k), v[e]), k  # masks and signs never move
            assert getattr(m, k).requires_grad is False
    start = _ensemble(learned=True, frozen=True)
    for m, m0 in zip(ens.members(), start.members()):
        # exc -> inh is frozen: rows inh (6:9), columns exc (0:6)
        assert torch.equal(m.W_rec[6:9, 0:6], m0.W_rec[6:9, 0:6])
        assert not torch.equal(m.W_rec, m0.W_rec)


def test_noise_draws_differ_per_member_and_follow_torchs_rng():
    ens = _ensemble()
    a = _arrays()
    torch.manual_seed(4)
    first = ens(a["inp"], a["state"], noise=True)[1]
    torch.manual_seed(4)
    again = ens(a["inp"], a["state"], noise=True)[1]
    quiet = ens(a["inp"], a["state"])[1]
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, quiet)


def test_zero_steps_give_empty_outputs_like_a_single_network():
    ens = _ensemble()
    inp = torch.zeros(B, 0, 2, dtype=torch.float64)
    xs, hs = ens(inp)
    alone = ens.members()[0](inp)
    assert xs.shape == hs.shape == (E, B, 0, 9) and alone[1].shape == (B, 0, 9)


def test_batched_initial_condition():
    x0, h0 = _ensemble(learned=True).batched_initial_condition(5)
    assert x0.shape == h0.shape == (E, 5, 9)
    torch.testing.assert_close(x0[:, :, :6], torch.full((E, 5, 6), 0.2, dtype=torch.float64))
    assert _ensemble("elman").batched_initial_condition(2).shape == (E, 2, 9)


# bad input -------------------------------------------------------------------


def _model(spec=None, kind="leaky", seed=0, **dyn):
    ckpt = mrnn_core.Checkpoint.initialise(spec or _spec(), mrnn_core.Dynamics(kind=kind, **dyn),
                                           seed)
    cls = mRNN if kind == "leaky" else ElmanmRNN
    return cls.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)


@pytest.mark.parametrize("other, match", [
    (lambda: _model(_spec(n_inputs=3)), r"models\[1\] has a different network spec.*I = 2.*got H = 9, I = 3"),
    (lambda: _model(_spec(learned=True)), r"models\[1\] has a different network spec.*other regions"),
    (lambda: _model(kind="elman"), r"models\[1\] has kind='elman', expected 'leaky'"),
    (lambda: _model(activation="tanh"), r"models\[1\] has activation='tanh', expected 'relu'"),
    (lambda: _model(batch_first=False), r"models\[1\] has batch_first=False"),
    (lambda: _model().to(torch.float32), r"models\[1\].W_rec: expected shape \(9, 9\), torch.float64"),
    (lambda: "a model", r"models\[1\]: expected an mRNN or ElmanmRNN, got str"),
    (lambda: mRNN(None, device="cpu"), r"models\[1\] is not finalised"),
])
def test_members_that_cannot_run_together_are_refused(other, match):
    first = _model()
    before = copy.deepcopy(first.state_dict())
    with pytest.raises(MRNNConfigError, match=match):
        Ensemble.from_models([first, other()])
    assert all(torch.equal(v, before[k]) for k, v in first.state_dict().items())


def test_members_of_other_dt_and_balance_from_models():
    models = [_model(seed=1, dt=5.0), _model(seed=2, dt=10.0, balance_ei=True),
              _model(seed=3, dt=20.0, tau=50.0)]
    _check_members_alone(Ensemble.from_models(models), _arrays())


def test_other_bad_ensembles():
    m = _model()
    with pytest.raises(MRNNConfigError, match=r"models\[1\] is the same object as models\[0\]"):
        Ensemble.from_models([m, m])
    with pytest.raises(MRNNConfigError, match="expected at least one model, got an empty list"):
        Ensemble.from_models([])
    with pytest.raises(MRNNConfigError, match="seeds: expected a non-empty sequence"):
        Ensemble.from_seeds(_spec(), [])
    with pytest.raises(MRNNConfigError, match=r"seeds\[1\]: expected a non-negative integer, got -1"):
        Ensemble.from_seeds(_spec(), [1, -1])
    with pytest.raises(MRNNConfigError, match=r"member_values\['tau'\]: expected 2 values, one per seed, got length 3"):
        Ensemble.from_seeds(_spec(), [1, 2], member_values={"tau": [1.0, 2.0, 3.0]})
    with pytest.raises(MRNNConfigError, match=r"unknown key 'dt'; expected some of tau"):
        Ensemble.from_seeds(_spec(), [1, 2], member_values={"dt": [1.0, 2.0]})
    with pytest.raises(MRNNConfigError, match="tau"):
        Ensemble.from_seeds(_spec(), [1, 2], member_values={"tau": [1.0, -2.0]})
    ckpts = [_model().to_checkpoint(), _model(_spec(n_inputs=3)).to_checkpoint()]
    with pytest.raises(MRNNConfigError, match=r"checkpoints\[1\] has a different network spec"):
        Ensemble.from_checkpoints(ckpts)


def test_bad_calls_name_the_argument_and_its_member_axis():
    ens = _ensemble()
    a = _arrays()
    with pytest.raises(MRNNConfigError, match=r"inp: a leading member axis must have E = 3 entries, got shape \(2, 4, 7, 2\)"):
        ens(a["inp"].expand(2, B, T, 2))
    with pytest.raises(MRNNConfigError, match=r"eps_x: expected \[E, B, T, H\], got 3-D"):
        ens(a["inp"], eps_x=a["eps_x"][0], eps_u=a["eps_u"])
    with pytest.raises(MRNNConfigError, match=r"inp.*feature size|expected.*I = 2"):
        ens(a["inp"][..., :1])
    with pytest.raises(MRNNConfigError, match=r"x0: a leading member axis must have E = 3"):
        ens(a["inp"], a["state"][:2])
    with pytest.raises(MRNNConfigError, match=r"inp: expected \[E, B, T, I\] \(or the same without E, shared by every member\), got 2-D shape \(7, 2\)"):
        ens(a["inp"][0])
    with pytest.raises(MRNNConfigError, match="the initial state is h0"):
        _ensemble("elman")(a["inp"], x0=a["state"])

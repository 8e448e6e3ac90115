"""mrnn_torch.readout.Readout: parameters, defaults, numbers (vs the numpy reference), training, devices.

Float64 comparisons with :func:`mrnn_core.readout.apply_readout` use 1e-12:
one matmul of at most a few dozen terms, so the two differ by rounding only.
"""

import numpy as np
import pytest
import torch
from torch import nn

import mrnn_core as mc
import mrnn_torch
from mrnn_core.readout import ReadoutSpec, apply_readout, init_readout
from mrnn_torch.readout import Readout
from .torch_helpers import DEVICES

TOL = dict(rtol=1e-12, atol=1e-12)


def _spec():
    """ctx (3, exc) | thal (2, inh) | d1 (2, exc, parent str) | d2 (1, inh, parent str); H = 8."""
    return (mc.NetworkSpec()
            .with_recurrent_region("ctx", 3)
            .with_recurrent_region("thal", 2, sign="neg")
            .with_recurrent_region("d1", 2, parent_region="str")
            .with_recurrent_region("d2", 1, sign="neg", parent_region="str")
            .with_input_region("cue", 2)
            .with_recurrent_connection("ctx", "thal")
            .with_recurrent_connection("thal", "ctx")
            .with_recurrent_connection("ctx", "d1")
            .with_input_connection("cue", "ctx"))


def _readout(regions=("str", "ctx"), out=2, **kwargs):
    kwargs = {"seed": 0, "device": "cpu", "dtype": torch.float64, **kwargs}
    return Readout(_spec(), regions, out, **kwargs)


def test_parameters_are_weight_and_bias_like_nn_linear():
    r = _readout()
    assert dict((k, tuple(v.shape)) for k, v in r.named_parameters()) == {"weight": (2, 6), "bias": (2,)}
    assert set(r.state_dict()) == {"weight", "bias"}
    assert r.readout_index.tolist() == [0, 1, 2, 5, 6, 7]
    linear = nn.Linear(6, 2, dtype=torch.float64)
    r.load_state_dict(linear.state_dict())
    hs = torch.randn(4, 8, dtype=torch.float64)
    torch.testing.assert_close(r(hs), linear(hs[:, [0, 1, 2, 5, 6, 7]]), **TOL)


def test_without_bias_the_bias_is_none_and_not_a_parameter():
    r = _readout(bias=False)
    assert r.bias is None and set(r.state_dict()) == {"weight"}
    hs = torch.randn(3, 8, dtype=torch.float64)
    torch.testing.assert_close(r(hs), hs[:, [0, 1, 2, 5, 6, 7]] @ r.weight.T, **TOL)
    np.testing.assert_array_equal(r.params()["b"], np.zeros(2))


def test_default_weights_are_the_cores_for_the_seed():
    r = _readout(seed=11)
    p = init_readout(_spec(), ReadoutSpec(("str", "ctx"), 2), 11)
    np.testing.assert_array_equal(r.weight.detach().numpy(), p["W"])
    np.testing.assert_array_equal(r.bias.detach().numpy(), p["b"])


def test_without_a_seed_torch_manual_seed_makes_it_reproducible():
    torch.manual_seed(3)
    a = Readout(_spec(), "ctx", 2, device="cpu")
    torch.manual_seed(3)
    b = Readout(_spec(), "ctx", 2, device="cpu")
    c = Readout(_spec(), "ctx", 2, device="cpu")
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)
    assert not torch.equal(a.weight, c.weight)


@pytest.mark.parametrize("regions", [("str", "ctx"), ("ctx",), ("thal", "d1")])
@pytest.mark.parametrize("dale", [False, True])
@pytest.mark.parametrize("lead", [(), (7,), (2, 5)])
def test_forward_equals_the_reference(regions, dale, lead):
    r = _readout(regions, 3, dale=dale)
    with torch.no_grad():  # raw weights of both signs, so |W| matters under Dale
        r.weight.uniform_(-1, 1)
    hs = np.random.default_rng(0).normal(size=lead + (8,))
    y = r(torch.tensor(hs)).detach().numpy()
    assert y.shape == lead + (3,)
    np.testing.assert_allclose(y, apply_readout(r.params(), r.readout_spec, hs, _spec()), **TOL)


def test_dale_readout_of_an_inhibitory_region_reads_only_the_excitatory_rest():
    r = _readout(("thal", "d1"), 1, dale=True)
    assert r.readout_index.tolist() == [5, 6]
    with pytest.raises(mc.MRNNConfigError, match=r"none of these is excitatory"):
        _readout(("thal",), 1, dale=True)


def test_dale_effective_weight_stays_non_negative_while_training():
    r = _readout(("str", "ctx"), 2, dale=True)
    opt = torch.optim.SGD(r.parameters(), lr=5.0)
    hs = torch.rand(16, 8, dtype=torch.float64)
    for _ in range(3):  # pushing every output down drives the raw weights through zero
        opt.zero_grad()
        r(hs).sum().backward()
        opt.step()
    assert (r.weight < 0).any(), "the step should have made some raw weights negative"
    assert (r.effective_weight >= 0).all()
    torch.testing.assert_close(r.effective_weight, r.weight.abs(), rtol=0, atol=0)


def test_readout_trains_jointly_with_the_network():
    model = mrnn_torch.mRNN(_spec(), seed=0, device="cpu", dtype=torch.float64)
    r = Readout(model, "ctx", 1, seed=0)
    assert r.weight.dtype == torch.float64 and r.weight.device == model.device
    x0, _ = model.batched_initial_condition(2)
    _, hs = model(torch.ones(2, 4, 2, dtype=torch.float64), x0)
    r(hs).pow(2).mean().backward()
    assert model.W_rec.grad is not None and model.W_rec.grad.abs().sum() > 0
    assert r.weight.grad.abs().sum() > 0


def test_hs_gradient_reaches_only_the_units_read():
    r = _readout(("str",), 2)
    hs = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    r(hs).sum().backward()
    read = hs.grad.abs().sum(0) > 0
    assert read.tolist() == [False] * 5 + [True] * 3


def test_params_round_trip_is_bit_identical():
    r = _readout(dale=True)
    p = r.params()
    again = Readout.from_params(_spec(), r.readout_spec, p["W"], p["b"], device="cpu", dtype=torch.float64)
    assert torch.equal(again.weight, r.weight) and torch.equal(again.bias, r.bias)
    assert again.readout_index.tolist() == r.readout_index.tolist()


def test_params_are_copies_that_training_leaves_alone():
    r = _readout()
    p = r.params()
    before = p["W"].copy()
    with torch.no_grad():
        r.weight.add_(1.0)
    np.testing.assert_array_equal(p["W"], before)


@pytest.mark.parametrize("call, message", [
    (lambda r: r(torch.zeros(4, 9, dtype=torch.float64)), r"readout input hs: expected shape \[\.\.\., 8\].*got \[4, 9\]"),
    (lambda r: Readout.from_params(_spec(), r.readout_spec, np.zeros((2, 5)), np.zeros(2)),
     r"readout W: expected shape \(2, 6\).*got \(2, 5\)"),
    (lambda r: Readout.from_params({}, r.readout_spec, np.zeros((2, 6))),
     r"Readout.from_params: expected a mrnn_core.NetworkSpec, got dict"),
    (lambda r: Readout("ctx", "ctx", 2), r"Readout: expected an mrnn_torch model or a mrnn_core.NetworkSpec.*got str"),
    (lambda r: Readout(_spec(), "ctx", 0), r"readout out_features: expected an integer >= 1, got 0"),
    (lambda r: Readout(_spec(), "ctx", 1, seed="x"), r"readout seed: expected a non-negative integer"),
])
def test_bad_input_is_rejected_with_a_named_culprit(call, message):
    with pytest.raises(mc.MRNNConfigError, match=message):
        call(_readout())


def test_repr_names_what_it_reads():
    assert repr(_readout(("ctx",), 2, dale=True)) == "Readout(regions=('ctx',), in_units=3, out_features=2, dale=True)"


@pytest.mark.parametrize("device", DEVICES)
def test_readout_follows_the_models_device(device):
    model = mrnn_torch.mRNN(_spec(), seed=0, device=device, dtype=torch.float64)
    r = Readout(model, ("ctx", "d1"), 2, seed=0)  # a non-contiguous selection: an index gather
    assert r.weight.device.type == device and r.readout_index.device.type == device
    hs = np.random.default_rng(0).normal(size=(2, 3, 8))
    y = r(torch.tensor(hs, device=device)).detach().cpu().numpy()
    np.testing.assert_allclose(y, apply_readout(r.params(), r.readout_spec, hs, _spec()), **TOL)
    moved = r.to("cpu")
    assert moved.readout_index.device.type == "cpu" and moved.readout_index.dtype == torch.int64


def test_checkpoint_round_trip_restores_the_readout(tmp_path):
    model = mrnn_torch.mRNN(_spec(), seed=0, device="cpu", dtype=torch.float64)
    r = Readout(model, ("str", "ctx"), 2, dale=True, seed=4)
    r.add_to_checkpoint(model.to_checkpoint()).save(tmp_path / "m.npz")
    loaded = mc.Checkpoint.load(tmp_path / "m.npz")
    again = Readout.from_checkpoint(loaded, device="cpu", dtype=torch.float64)
    assert again.readout_spec == r.readout_spec
    assert torch.equal(again.weight, r.weight) and torch.equal(again.bias, r.bias)


def test_checkpoint_of_another_network_is_rejected():
    other = mc.NetworkSpec().with_recurrent_region("ctx", 4)
    r = _readout(("ctx",), 1)
    with pytest.raises(mc.MRNNConfigError, match=r"checkpoint: in its network \(H = 4\) the readout of \('ctx',\) "
                                                 r"reads units \[0, 1, 2, 3\], expected the units \[0, 1, 2\]"):
        r.add_to_checkpoint(mc.Checkpoint.initialise(other, seed=0))
    with pytest.raises(mc.MRNNConfigError, match=r"checkpoint: it holds no readout"):
        Readout.from_checkpoint(mc.Checkpoint.initialise(_spec(), seed=0))

"""Saved state: mRNNTorch state_dicts load unchanged, checkpoints round-trip
bit-identically, and every tensor follows the model's device and dtype."""

import numpy as np
import pytest
import torch
from torch import nn

import mrnn_core
from mrnn_torch import ElmanmRNN, MRNNConfigError, mRNN
from .torch_helpers import DEVICES, assert_close, two_region_spec


class Wrapped(nn.Module):
    """The shape of an mRNNTorch user's model: an mRNN plus a linear readout."""

    def __init__(self):
        super().__init__()
        self.mrnn = mRNN(activation="tanh", rec_constrained=True, inp_constrained=False,
                         device="cpu", dtype=torch.float64)
        self.mrnn.add_recurrent_region("exc", 4, "pos", base_firing=0.2, learnable_bias=True)
        self.mrnn.add_recurrent_region("inh", 2, "neg")
        self.mrnn.add_input_region("inp", 3)
        for src in ("exc", "inh"):
            for dst in ("exc", "inh"):
                self.mrnn.add_recurrent_connection(src, dst, sparsity=0.5 if src == dst else None)
        self.mrnn.add_input_connection("inp", "exc")
        self.mrnn.finalize_connectivity()
        self.out = nn.Linear(6, 2, dtype=torch.float64)

    def forward(self, inp, x0):
        _, hs = self.mrnn(inp, x0)
        return self.out(hs)


def _mrnntorch_state_dict():
    """A state_dict in mRNNTorch's layout, built by hand: six ``mrnn.*`` entries
    (masks and signs were requires_grad=False Parameters there) and the readout;
    no bias key, since mRNNTorch never registered learnable biases."""
    rng = np.random.default_rng(0)
    mask = (rng.random((6, 6)) < 0.6).astype(float)
    sign = mask * np.array([1, 1, 1, 1, -1, -1])
    inp_mask = np.zeros((6, 3))
    inp_mask[:4] = 1.0
    arrays = {"mrnn.W_rec": np.abs(rng.normal(size=(6, 6))), "mrnn.W_rec_mask": mask,
              "mrnn.W_rec_sign_matrix": sign, "mrnn.W_inp": rng.normal(size=(6, 3)),
              "mrnn.W_inp_mask": inp_mask, "mrnn.W_inp_sign_matrix": inp_mask,
              "out.weight": rng.normal(size=(2, 6)), "out.bias": rng.normal(size=2)}
    return {k: torch.tensor(v) for k, v in arrays.items()}


def test_mrnntorch_state_dict_loads_strictly_and_gives_the_same_outputs():
    saved = _mrnntorch_state_dict()
    model = Wrapped()
    model.load_state_dict(saved)  # strict: the missing bias keeps its value
    for key, value in saved.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert model.mrnn.tonic_inp.tolist() == pytest.approx([0.2] * 4 + [0.0] * 2)

    params = {k.removeprefix("mrnn."): v.numpy() for k, v in saved.items() if k.startswith("mrnn.")}
    params["base_firing"] = np.array([0.2] * 4 + [0.0] * 2)
    dynamics = mrnn_core.Dynamics(activation="tanh", inp_constrained=False)
    inp = np.random.default_rng(1).normal(size=(2, 5, 3))
    x0 = np.full((2, 6), 0.1)
    _, hs = mrnn_core.reference.simulate(params, dynamics, inp, x0)
    expected = hs @ saved["out.weight"].numpy().T + saved["out.bias"].numpy()
    assert_close(model(torch.tensor(inp), torch.tensor(x0)), expected)
    assert torch.equal(model.mrnn["exc"]["inh"].weight_mask, saved["mrnn.W_rec_mask"][4:6, 0:4])


def test_own_state_dict_round_trips_with_the_bias():
    trained = Wrapped()
    with torch.no_grad():
        trained.mrnn.base_firing_exc.add_(1.0)
    fresh = Wrapped()
    fresh.load_state_dict(trained.state_dict())
    assert torch.equal(fresh.mrnn.tonic_inp, trained.mrnn.tonic_inp)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        fresh.load_state_dict({**trained.state_dict(), "mrnn.W_bogus": torch.zeros(1)})


@pytest.mark.parametrize("cls", [mRNN, ElmanmRNN])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_checkpoint_round_trip_is_bit_identical(cls, dtype, tmp_path):
    model = cls(two_region_spec(learnable_bias=True), activation="softplus",
                spectral_radius=0.8, batch_first=False, device="cpu", seed=4, dtype=dtype)
    with torch.no_grad():
        model.base_firing_e.add_(0.25)  # a "learned" bias must travel too
        model.region_dict["thal"].init.fill_(-0.3)
    ckpt = model.to_checkpoint()
    assert ckpt.params["base_firing"][:3].tolist() == pytest.approx([0.35] * 3)
    ckpt.save(tmp_path / "m.npz")
    back = cls.from_checkpoint(mrnn_core.Checkpoint.load(tmp_path / "m.npz"), device="cpu",
                               dtype=dtype)
    assert back.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert torch.equal(back.initial_condition, model.initial_condition)
    assert back.dynamics == model.dynamics and back.to_checkpoint().spec == model.to_checkpoint().spec
    inp = torch.ones(3, 2, 2, dtype=dtype)
    state = torch.full((2, 7), 0.1, dtype=dtype)
    outputs = lambda m: m(inp, state) if cls is mRNN else (m(inp, state),)  # noqa: E731
    for a, b in zip(outputs(back), outputs(model)):
        assert torch.equal(a, b)
    for key, value in back.to_checkpoint().params.items():
        np.testing.assert_array_equal(value, ckpt.params[key])


def test_from_checkpoint_rejects_the_other_kind_and_non_checkpoints():
    ckpt = mRNN(two_region_spec(), device="cpu", seed=0).to_checkpoint()
    with pytest.raises(MRNNConfigError, match=r"ElmanmRNN.from_checkpoint: the checkpoint holds "
                                              r"a 'leaky' network.*load it with mRNN"):
        ElmanmRNN.from_checkpoint(ckpt)
    with pytest.raises(MRNNConfigError, match=r"expected a mrnn_core.Checkpoint, got dict"):
        mRNN.from_checkpoint(dict(ckpt.params))


def _every_tensor(model):
    """Every tensor mRNNTorch users reach, the way its device test lists them."""
    out = dict(model.named_parameters())
    for key in ("W_rec", "W_rec_mask", "W_rec_sign_matrix", "W_inp", "W_inp_mask",
                "W_inp_sign_matrix", "initial_condition", "tonic_inp"):
        out[key] = getattr(model, key)
    out.update({f"region_mask_dict.{k}": v for k, v in model.region_mask_dict.items()})
    for name, region in [*model.named_rec_regions(), *model.named_inp_regions()]:
        if hasattr(region, "init"):
            out[f"{name}.init"], out[f"{name}.base_firing"] = region.init, region.base_firing
        out.update({f"{name}.masks.{k}": v for k, v in region.masks.items()})
        for dst, c in region.connections.items():
            for field in ("parameter", "weight_mask", "sign_matrix"):
                out[f"{name}->{dst}.{field}"] = getattr(c, field)
    x0, h0 = model.batched_initial_condition(3)
    out.update({"x0": x0, "h0": h0, "hid_noise": model._hid_noise(3),
                "inp_noise": model._inp_noise(3)})
    B, T, H = 3, 4, model.total_num_units
    xs, hs = model(torch.zeros(B, T, 2, device=model.device, dtype=x0.dtype), x0,
                   stim_input=torch.ones(B, T, H, device=model.device, dtype=x0.dtype), noise=True)
    out.update({"xs": xs, "hs": hs})
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_every_tensor_lives_on_the_models_device(device):
    model = mRNN(two_region_spec(learnable_bias=True), device=device, seed=0)
    for name, t in _every_tensor(model).items():
        assert t.device.type == device, name


@pytest.mark.parametrize("device", DEVICES)
def test_to_moves_every_tensor_regions_included(device):
    model = mRNN(two_region_spec(learnable_bias=True), device="cpu", seed=0)
    model.to(device).double()
    assert model.device.type == device
    for name, t in _every_tensor(model).items():
        assert t.device.type == device and t.dtype == torch.float64, name
    assert model.region_dict["e"].base_firing is model.base_firing_e
    assert torch.equal(model["e"]["i"].parameter, model.W_rec[5:7, 0:3].detach())


def test_copies_keep_regions_tied_to_the_copys_tensors():
    """deepcopy, whole-module torch.save/load and load_state_dict(assign=True)
    all leave each region viewing its own model's weights."""
    import copy
    import io

    model = mRNN(two_region_spec(learnable_bias=True), device="cpu", seed=0)
    original = model.W_rec.detach().clone()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    assigned = mRNN(two_region_spec(learnable_bias=True), device="cpu", seed=1)
    assigned.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign=True)
    for other in (copy.deepcopy(model), torch.load(buffer, weights_only=False), assigned):
        assert other["e"].base_firing is other.base_firing_e
        with torch.no_grad():
            other.W_rec.add_(1.0)
            other.W_inp.add_(1.0)
        assert torch.equal(other["e"]["i"].parameter, other.W_rec[5:7, 0:3].detach())
        assert torch.equal(other["cue"]["thal"].parameter, other.W_inp[3:5].detach())
    assert torch.equal(model.W_rec.detach(), original)  # the copies share nothing with it

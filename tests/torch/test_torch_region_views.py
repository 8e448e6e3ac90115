"""Region objects of a model read the model's current tensors, whatever replaced them.

A finalised side's region connections are views of their block of ``W_rec`` /
``W_inp`` and the masks and sign matrices, and a learned ``base_firing`` /
``init`` is the model's parameter: after ``.double()``, ``load_state_dict(...,
assign=True)``, a replaced ``.data``, an optimiser step, ``model[name] = region``,
copies and pickles, they still agree with the model (and share its memory), and
a connection held from before sees the change.
"""

import copy
import gc
import io
import pickle
import weakref

import pytest
import torch

import mrnn_core
from mrnn_torch import Connection, InputRegion, RecurrentRegion, mRNN
from .torch_helpers import DEVICES

FIELDS = (("parameter", ""), ("weight_mask", "_mask"), ("sign_matrix", "_sign_matrix"))


def _spec():
    """``e`` (3 units, learned bias), ``thal`` (2, learned init), ``i`` (2, inhibitory),
    input ``cue`` (2); some blocks undeclared."""
    return (mrnn_core.NetworkSpec()
            .with_recurrent_region("e", 3, base_firing=0.1, learnable_bias=True)
            .with_recurrent_region("thal", 2, init=0.2, learnable_init=True)
            .with_recurrent_region("i", 2, sign="neg")
            .with_recurrent_connection("e", "i").with_recurrent_connection("i", "e")
            .with_recurrent_connection("thal", "e", sparsity=0.5)
            .with_input_region("cue", 2).with_input_connection("cue", "thal"))


def _model(seed=0, **kwargs):
    return mRNN(_spec(), device="cpu", seed=seed, **kwargs)


def _shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def assert_regions_follow(model):
    """Every region connection is its block of the model's current tensors
    (same dtype and device, sharing memory); learned vectors are the model's."""
    for regions, matrix in ((model.region_dict, "W_rec"), (model.inp_dict, "W_inp")):
        for src, region in regions.items():
            cols = slice(*model.get_region_indices(src))
            assert set(region.connections) == set(model.region_dict), src
            for dst in model.region_dict:
                rows = slice(*model.get_region_indices(dst))
                connection = region.connections[dst]
                for field, suffix in FIELDS:
                    whole = getattr(model, matrix + suffix)
                    got = getattr(connection, field)
                    assert torch.equal(got, whole.detach()[rows, cols]), (src, dst, field)
                    assert got.dtype == whole.dtype and got.device == whole.device
                    assert _shares_memory(got, whole), (src, dst, field)
                    assert not got.requires_grad
    assert model["e"].base_firing is model.base_firing_e
    assert model["thal"].init is model.init_thal


def test_connections_view_the_blocks_and_writes_reach_the_model():
    model = _model()
    assert_regions_follow(model)
    assert model["e"]["i"] is model.region_dict["e"].connections["i"]
    assert model["thal"]["i"].zero_connection and not model["thal"]["e"].zero_connection
    assert torch.all(model["thal"]["i"].weight_mask == 0)
    with torch.no_grad():
        model["e"]["i"].parameter.fill_(7.0)
    assert torch.all(model.W_rec[5:7, 0:3] == 7.0)
    held = model["e"]["i"]
    assert held == held and held != model["e"]["e"]  # identity, never an ambiguous tensor


@pytest.mark.parametrize("device", DEVICES)
def test_connections_and_learned_vectors_follow_dtype_and_device_moves(device):
    model = _model()
    held, region = model["e"]["i"], model["e"]
    model.to(device).double()
    assert_regions_follow(model)
    assert held.parameter.dtype == torch.float64 and region.base_firing.dtype == torch.float64
    assert held.parameter.device.type == device and region.init.device.type == device
    assert torch.equal(held.parameter, model.W_rec[5:7, 0:3].detach())
    model.to(torch.float32)
    assert_regions_follow(model)
    assert held.weight_mask.dtype == torch.float32


@pytest.mark.parametrize("assign", [True, False])
def test_connections_and_learned_vectors_follow_load_state_dict(assign):
    source = _model(seed=1)
    with torch.no_grad():
        source.base_firing_e.add_(0.5)
        source.init_thal.sub_(0.5)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    assert set(state) == {"W_rec", "W_inp", "W_rec_mask", "W_rec_sign_matrix", "W_inp_mask",
                          "W_inp_sign_matrix", "base_firing_e", "init_thal"}
    model = _model(seed=0)
    held = model["e"]["i"]
    model.load_state_dict(state, assign=assign)
    assert_regions_follow(model)
    assert torch.equal(held.parameter, state["W_rec"][5:7, 0:3])
    assert torch.equal(model["e"].base_firing.detach(), state["base_firing_e"])
    assert torch.equal(model["thal"].init.detach(), state["init_thal"])
    if assign:
        assert _shares_memory(held.parameter, state["W_rec"])


def test_connections_follow_replaced_data_and_optimiser_steps():
    model = _model()
    held = model["e"]["i"]
    model.W_rec.data = torch.randn(7, 7)
    assert_regions_follow(model)
    model.W_inp = torch.nn.Parameter(torch.randn(7, 2))
    assert_regions_follow(model)
    before = held.parameter.clone()
    bias_before = model["e"].base_firing.detach().clone()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    xs, _ = model(torch.ones(2, 4, 2), torch.full((2, 7), 0.3))
    xs.square().sum().backward()
    optimiser.step()
    assert_regions_follow(model)
    assert not torch.equal(held.parameter, before)
    assert not torch.equal(model["e"].base_firing.detach(), bias_before)


def test_replaced_regions_read_the_models_tensors():
    model = _model()
    model["thal"] = RecurrentRegion(2, base_firing=0.3, init=-0.1, learnable_bias=True,
                                    device="cpu")
    assert_regions_follow(model)
    assert model["thal"].base_firing is model.base_firing_thal
    assert model["thal"].init.tolist() == pytest.approx([-0.1, -0.1])
    model["cue"] = InputRegion(2, device="cpu")
    model.double()
    assert_regions_follow(model)
    with torch.no_grad():
        model.base_firing_e.fill_(0.25)
    model["e"] = model["e"]  # the same object again keeps what it learned
    assert_regions_follow(model)
    assert model.tonic_inp[:3].tolist() == [0.25] * 3


def test_copies_and_pickles_read_their_own_tensors():
    model = _model()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    copies = [copy.deepcopy(model), pickle.loads(pickle.dumps(model)),
              torch.load(buffer, weights_only=False)]
    original = model.W_rec.detach().clone()
    for other in copies:
        assert_regions_follow(other)
        with torch.no_grad():
            other["e"]["i"].parameter.add_(1.0)
            other.base_firing_e.add_(1.0)
        assert_regions_follow(other)
    assert torch.equal(model.W_rec.detach(), original)
    assert model.base_firing_e.tolist() == pytest.approx([0.1] * 3)


def test_open_sides_hold_placeholders_until_finalised():
    model = mRNN(_spec(), device="cpu", seed=0, config_finalize=False)
    placeholder = model["e"]["i"]
    assert torch.equal(placeholder.parameter, torch.zeros(2, 3))
    assert placeholder.parameter is model["e"]["i"].parameter  # owned, not read from the model
    assert "thal" not in model["e"].connections  # undeclared: none until finalised
    model.double()
    assert placeholder.weight_mask.dtype == torch.float64
    model.finalize_rec_connectivity()
    assert model["cue"]["thal"].parameter.dtype == torch.float64  # the input side is still open
    assert "e" not in model["cue"].connections
    model.finalize_inp_connectivity()
    assert_regions_follow(model)


def test_a_standalone_region_owns_its_tensors():
    region = RecurrentRegion(3, base_firing=0.2, learnable_bias=True, device="cpu")
    region.add_connection("x", 2, zero_connection=True)
    connection = region["x"]
    assert isinstance(connection, Connection) and connection.parameter is region["x"].parameter
    assert any(p is region.base_firing for p in region.parameters())
    region.to(torch.float64)
    assert connection.parameter.dtype == torch.float64
    assert region.base_firing.dtype == torch.float64 and region.init.dtype == torch.float64
    assert torch.all(connection.sign_matrix == 0)


def test_regions_hold_no_reference_to_their_model():
    """No reference cycle: a model is freed as soon as it is dropped (GPU memory
    included), and a region kept from it still reads the weights it had."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        model = _model()
        region, expected = model["e"], model.W_rec[5:7, 0:3].detach().clone()
        ref = weakref.ref(model)
        del model
        assert ref() is None
        assert torch.equal(region["i"].parameter, expected)
        assert region.base_firing.tolist() == pytest.approx([0.1] * 3)
    finally:
        if enabled:
            gc.enable()


def test_assigning_a_finalised_connection_says_how_to_change_the_weights():
    model = _model()
    connection = model.region_dict["e"].connections["i"]
    before = model.W_rec.detach().clone()
    with pytest.raises(AttributeError, match=r"connection.parameter: on a finalised model it is "
                       r"a view of model.W_rec; write into it in place .* got an assignment "
                       r"of Tensor"):
        connection.parameter = torch.zeros(2, 3)
    with pytest.raises(AttributeError, match=r"connection.weight_mask: .* model.W_rec_mask"):
        connection.weight_mask = None
    assert torch.equal(model.W_rec, before)
    with torch.no_grad():
        connection.parameter.copy_(torch.full((2, 3), 0.5))  # the documented way
    rows, cols = slice(*model.get_region_indices("i")), slice(*model.get_region_indices("e"))
    assert torch.all(model.W_rec[rows, cols] == 0.5)

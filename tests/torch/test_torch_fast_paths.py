"""The fast paths of mrnn_torch.simulate: fused recurrence, block-sparse steps, fallbacks.

Every ``recurrence`` mode must give the reference's numbers (1e-10, as the
rest of the suite), and the hand-written backward of the fused modes must
give autograd's gradients of the plain loop (float64, 1e-12: both are exact
up to rounding in a different summation order). Block-sparse drawn cases
use 2 x 2 tiles so that the tiny drawn regions really split into blocks.
"""

from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_torch
from mrnn_core import blockplan, reference
from mrnn_torch import _blocks, _fused
from .torch_helpers import assert_close, cases, tensors, torch_params

GRAD_TOL = 1e-12
FUSED = ("dense", "blocks")


@contextmanager
def small_tiles(tiles=10**6):
    """Cut bare masks into many tiles (default: one per unit), so that the small
    drawn networks exercise the block-sparse path with many blocks."""
    with mock.patch.object(blockplan, "TILES", tiles):
        yield


def _simulate(params, dynamics, call, mode):
    c = dict(call)
    inp = c.pop("inp")
    x0 = c.pop("x0", None)
    h0 = c.pop("h0", None)
    with small_tiles():
        return mrnn_torch.simulate(params, dynamics, inp, x0, h0, recurrence=mode, **c)


@given(cases(), st.sampled_from(FUSED + ("autograd",)))
def test_every_mode_matches_the_reference(case, mode):
    ckpt, call = case
    if mode == "blocks" and call["W_rec"] is not None:
        with pytest.raises(mrnn_core.MRNNConfigError, match="recurrence: 'blocks'"):
            _simulate(torch_params(ckpt), ckpt.dynamics, tensors(call), mode)
        return
    expected = reference.simulate(ckpt.params, ckpt.dynamics, **call)
    actual = _simulate(torch_params(ckpt), ckpt.dynamics, tensors(call), mode)
    assert_close(actual, expected)


def _gradients(ckpt, call, mode, seed=0):
    """Gradients of a random linear functional of every output wrt every input tensor."""
    params = {k: v.requires_grad_(k in ("W_rec", "W_inp", "base_firing"))
              for k, v in torch_params(ckpt).items()}
    c = {k: None if v is None else v.requires_grad_() for k, v in tensors(call).items()}
    out = _simulate(params, ckpt.dynamics, c, mode)
    outs = out if isinstance(out, tuple) else (out,)
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    leaves = {**{k: params[k] for k in ("W_rec", "W_inp", "base_firing")},
              **{k: v for k, v in c.items() if v is not None}}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {k: None if v is None else v.numpy() for k, v in zip(leaves, grads)}


@given(cases(), st.sampled_from(FUSED))
def test_fused_backward_matches_autograd_through_the_loop(case, mode):
    ckpt, call = case
    if mode == "blocks":
        call = {**call, "W_rec": None}
    expected = _gradients(ckpt, call, "autograd")
    actual = _gradients(ckpt, call, mode)
    assert expected.keys() == actual.keys()
    for name, e in expected.items():
        if e is None:
            assert actual[name] is None or not np.any(actual[name]), name
        else:
            np.testing.assert_allclose(actual[name], e, rtol=GRAD_TOL, atol=GRAD_TOL,
                                       err_msg=name)


@pytest.mark.parametrize("kind, activation, batch_first", [
    ("leaky", "tanh", True), ("leaky", "softplus", False), ("elman", "sigmoid", True),
    ("elman", "linear", False)])
def test_gradcheck_of_the_fused_recurrence(kind, activation, batch_first):
    spec = _ring_spec(4, 3)
    dynamics = mrnn_core.Dynamics(kind=kind, activation=activation, dt=10, tau=40,
                                  batch_first=batch_first)
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=1)
    p = torch_params(ckpt)
    g = torch.Generator().manual_seed(2)
    B, T, H, I = 2, 4, spec.hidden_size, spec.input_size
    lay = (lambda F: (B, T, F)) if batch_first else (lambda F: (T, B, F))
    inp = torch.randn(lay(I), generator=g, dtype=torch.float64)
    stim = 0.2 * torch.randn(lay(H), generator=g, dtype=torch.float64)
    state = 0.3 * torch.randn(B, H, generator=g, dtype=torch.float64)
    h0 = 0.3 * torch.rand(B, H, generator=g, dtype=torch.float64)

    def forward(W_rec, W_inp, bias, state, h0, inp, stim):
        params = {**p, "W_rec": W_rec, "W_inp": W_inp, "base_firing": bias}
        with small_tiles():
            if kind == "leaky":
                return torch.cat(mrnn_torch.simulate(params, dynamics, inp, state, h0,
                                                     stim_input=stim, recurrence="blocks"), -1)
            return mrnn_torch.simulate(params, dynamics, inp, None, state, stim_input=stim,
                                       recurrence="blocks")

    W_rec = p["W_rec"] + 0.05  # away from |W|'s kink at 0
    args = tuple(t.clone().requires_grad_() for t in
                 (W_rec, p["W_inp"] + 0.05, p["base_firing"], state, h0, inp, stim))
    assert torch.autograd.gradcheck(forward, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def _ring_spec(n_regions, units, isolated=None):
    """Regions each projecting to itself and the next (a ring), one input region.
    ``isolated`` (a region index) receives no recurrent connection at all."""
    names = [f"r{k}" for k in range(n_regions)]
    spec = mrnn_core.NetworkSpec()
    for k, name in enumerate(names):
        spec = spec.with_recurrent_region(name, units, sign="neg" if k % 4 == 3 else "pos")
    spec = spec.with_input_region("inp", 3)
    for k, name in enumerate(names):
        nxt = names[(k + 1) % n_regions]
        if k != isolated:
            spec = spec.with_recurrent_connection(name, name)
        if (k + 1) % n_regions != isolated:
            spec = spec.with_recurrent_connection(name, nxt, sparsity=0.3)
        spec = spec.with_input_connection("inp", name)
    return spec


@pytest.mark.parametrize("isolated", [None, 2])
@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_block_sparse_path_skips_absent_blocks_and_equals_dense(kind, isolated):
    spec = _ring_spec(6, 32 if isolated else 40, isolated)  # 6 tiles of 32: region-aligned,
    # so the isolated region fills whole row tiles and must show up as uncovered rows
    dynamics = mrnn_core.Dynamics(kind=kind, activation="tanh")
    ckpt = mrnn_core.Checkpoint.initialise(spec, dynamics, seed=4)
    with small_tiles(6):
        plan = _blocks.choose_plan("blocks", torch.as_tensor(np.array(ckpt.params["W_rec_mask"])),
                                   spec.hidden_size, override=False)
    assert not plan.dense and plan.fraction < 0.5
    assert bool(plan.uncovered_rows) == (isolated is not None)

    rng = np.random.default_rng(5)
    call = {"inp": rng.standard_normal((3, 7, 3)), "W_rec": None, "stim_input": None,
            "eps_x": None, "eps_u": None}
    call["x0" if kind == "leaky" else "h0"] = rng.uniform(-0.5, 0.5, (3, spec.hidden_size))
    if kind == "leaky":
        call["h0"] = None
    with small_tiles(6):
        dense = mrnn_torch.simulate(torch_params(ckpt), dynamics, **tensors(call),
                                    recurrence="dense")
        blocks = mrnn_torch.simulate(torch_params(ckpt), dynamics, **tensors(call),
                                     recurrence="blocks")
    assert_close(blocks, tuple(o.numpy() for o in dense) if kind == "leaky" else dense.numpy(),
                 rtol=1e-12, atol=1e-12)
    expected = _gradients(ckpt, call, "dense")
    actual = _gradients(ckpt, call, "blocks")
    for name, e in expected.items():
        np.testing.assert_allclose(actual[name], e, rtol=GRAD_TOL, atol=GRAD_TOL, err_msg=name)


def test_auto_picks_blocks_only_for_large_sparse_masks():
    ring = torch.as_tensor(np.array(mrnn_core.Checkpoint.initialise(
        _ring_spec(8, 80), mrnn_core.Dynamics(), seed=0).params["W_rec_mask"]))
    H = ring.shape[0]
    assert H >= blockplan.AUTO_MIN_HIDDEN
    assert not _blocks.choose_plan("auto", ring, H, override=False).dense
    assert _blocks.choose_plan("dense", ring, H, override=False).dense
    assert _blocks.choose_plan("auto", ring, H, override=True).dense
    full = torch.ones(H, H)
    assert _blocks.choose_plan("auto", full, H, override=False).dense
    small = ring[:80, :80]
    assert _blocks.choose_plan("auto", small, 80, override=False).dense


def test_unknown_recurrence_is_rejected():
    ckpt = mrnn_core.Checkpoint.initialise(_ring_spec(2, 3), mrnn_core.Dynamics(), seed=0)
    with pytest.raises(mrnn_core.MRNNConfigError, match="recurrence: expected one of .*got 'fast'"):
        mrnn_torch.simulate(torch_params(ckpt), ckpt.dynamics, torch.zeros(1, 2, 3),
                            torch.zeros(1, 6), recurrence="fast")


def _model(kind="leaky"):
    ckpt = mrnn_core.Checkpoint.initialise(_ring_spec(3, 4), mrnn_core.Dynamics(kind=kind,
                                           activation="tanh"), seed=6)
    cls = mrnn_torch.mRNN if kind == "leaky" else mrnn_torch.ElmanmRNN
    return cls.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)


def test_model_recurrence_attribute_selects_the_path_with_equal_results():
    model = _model()
    inp = torch.randn(2, 5, 3, dtype=torch.float64)
    x0, _ = model.batched_initial_condition(2)
    outs = {}
    for mode in ("auto", "dense", "blocks", "autograd"):
        model.recurrence = mode
        outs[mode] = model(inp, x0)
    for mode, (xs, hs) in outs.items():
        torch.testing.assert_close(hs, outs["autograd"][1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(xs, outs["autograd"][0], rtol=1e-12, atol=1e-12)
    model.recurrence = "sparse"
    with pytest.raises(mrnn_core.MRNNConfigError, match="got 'sparse'"):
        model(inp, x0)


@pytest.mark.parametrize("batch_first", [True, False])
def test_outputs_are_contiguous_in_the_documented_layout(batch_first):
    model = _model()
    model.batch_first = batch_first
    inp = torch.randn((2, 5, 3) if batch_first else (5, 2, 3), dtype=torch.float64)
    xs, hs = model(inp, model.batched_initial_condition(2)[0])
    assert xs.is_contiguous() and hs.is_contiguous()
    assert hs.shape == ((2, 5, 12) if batch_first else (5, 2, 12))


def test_torch_func_grad_falls_back_and_agrees_with_the_fused_backward():
    model = _model("elman")
    p = model._params()
    inp = torch.randn(2, 5, 3, dtype=torch.float64)
    h0 = model.batched_initial_condition(2)

    def loss(W_rec):
        return mrnn_torch.simulate({**p, "W_rec": W_rec}, model.dynamics, inp, None, h0).sum()

    W = p["W_rec"].detach().clone()
    via_func = torch.func.grad(loss)(W)
    W.requires_grad_()
    fused, = torch.autograd.grad(loss(W), [W])
    torch.testing.assert_close(via_func, fused, rtol=1e-12, atol=1e-12)


def test_double_backward_through_the_autograd_mode():
    model = _model()
    model.recurrence = "autograd"
    inp = torch.randn(2, 5, 3, dtype=torch.float64)
    x0, _ = model.batched_initial_condition(2)
    _, hs = model(inp, x0)
    g, = torch.autograd.grad(hs.square().sum(), [model.W_rec], create_graph=True)
    hvp, = torch.autograd.grad(g.square().sum(), [model.W_rec])
    assert torch.isfinite(hvp).all() and hvp.abs().sum() > 0


@given(cases())
def test_python_fallback_of_the_dense_loop_gives_the_scripted_numbers(case):
    """Without TorchScript (``_compile`` falls back) the dense steps run as the
    plain Python function: the same kernels in the same order, so the same bits."""
    ckpt, call = case
    scripted = _simulate(torch_params(ckpt), ckpt.dynamics, tensors(call), "dense")
    assert isinstance(_fused._dense_forward, torch.jit.ScriptFunction)
    with mock.patch.object(_fused, "_dense_forward", _fused._dense_forward_loop):
        plain = _simulate(torch_params(ckpt), ckpt.dynamics, tensors(call), "dense")
    for a, b in zip(scripted if isinstance(scripted, tuple) else (scripted,),
                    plain if isinstance(plain, tuple) else (plain,)):
        assert torch.equal(a, b)


def test_compile_falls_back_to_the_python_function_when_scripting_fails():
    def failing_script(fn):
        raise RuntimeError("TorchScript is not available in this build")

    with mock.patch.object(torch.jit, "script", failing_script):
        assert _fused._compile(_fused._dense_forward_loop) is _fused._dense_forward_loop

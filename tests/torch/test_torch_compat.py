"""The private and deprecated torch APIs that mrnn_torch._compat wraps still behave as relied on.

One test per use: when a torch upgrade removes or changes one, the failure
is here, and its message says what changed and where the backend uses it.
"""

import copy
import pickle
import warnings

import pytest
import torch

from mrnn_torch import _compat, mRNN


def test_unsafe_view_is_present_and_not_a_view_for_autograd():
    assert _compat._unsafe_view is not None, (
        "torch.ops.aten._unsafe_view.default is gone: mrnn_torch._compat.unsafe_view now "
        "copies the drive of every forward call (see _functional._drive)")
    a = torch.arange(6.0, dtype=torch.float64)
    b = _compat.unsafe_view(a, (2, 3))
    assert b.shape == (2, 3) and b.data_ptr() == a.data_ptr(), (
        "torch.ops.aten._unsafe_view no longer shares memory with its input")
    assert not b._is_view(), "torch.ops.aten._unsafe_view now returns an autograd view"


def test_unsafe_view_result_takes_in_place_writes_under_autograd():
    # The drive is formed by addmm, viewed to [T, B, H], then written in place.
    W = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    u = torch.randn(4, 2, dtype=torch.float64)
    noise = torch.randn(2, 2, 3, dtype=torch.float64)
    d = _compat.unsafe_view(torch.addmm(torch.zeros(3, dtype=torch.float64), u, W.T), (2, 2, 3))
    d.add_(noise)
    (d ** 2).sum().backward()
    expected = 2 * ((u @ W.T).reshape(2, 2, 3) + noise).reshape(4, 3).T @ u
    torch.testing.assert_close(W.grad, expected, rtol=1e-12, atol=1e-12)


def test_is_functorch_wrapped_tells_transformed_tensors_apart():
    assert _compat._is_wrapped is not None, (
        "torch._C._functorch.is_functorch_wrapped_tensor is gone: mrnn_torch can no longer "
        "route torch.func calls (grad, vmap) around the fused recurrence")
    x = torch.randn(3, dtype=torch.float64)
    assert not _compat.is_functorch_wrapped(x)
    seen = []
    torch.func.vmap(lambda r: seen.append(_compat.is_functorch_wrapped(r)) or r)(x[None])
    torch.func.grad(lambda r: seen.append(_compat.is_functorch_wrapped(r)) or r.sum())(x)
    assert seen == [True, True], (
        f"is_functorch_wrapped_tensor no longer recognises vmap/grad tensors: got {seen}")


def test_version_stamp_grows_on_in_place_writes():
    t = torch.zeros(3)
    v0 = _compat.version_stamp(t)
    assert isinstance(v0, int), f"Tensor._version is no longer an int: got {v0!r}"
    t.add_(1.0)
    assert _compat.version_stamp(t) > v0, (
        "Tensor._version no longer grows on in-place writes: the cached block plan and "
        "alpha of mrnn_torch would go stale")
    t.detach().mul_(2.0)  # a write through a detached alias counts too
    assert _compat.version_stamp(t) > v0 + 1


def test_version_stamp_of_an_inference_tensor_is_none():
    with torch.inference_mode():
        t = torch.zeros(3)
    assert _compat.version_stamp(t) is None


def test_script_compiles_and_keeps_results_without_warnings():
    def loop(x: torch.Tensor, n: int) -> torch.Tensor:
        for _ in range(n):
            x = x * 2.0
        return x

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = _compat.script(loop)
    assert isinstance(compiled, torch.jit.ScriptFunction), (
        "torch.jit.script no longer compiles the fused recurrence's step loop: it now runs "
        "as plain Python (same results, slower)")
    x = torch.randn(4, dtype=torch.float64)
    assert torch.equal(compiled(x, 3), loop(x, 3))
    # (the fallback without TorchScript: test_torch_fast_paths.py)


def test_own_state_keys_lists_own_persistent_tensors_in_order():
    m = torch.nn.Module()
    m.register_parameter("a", torch.nn.Parameter(torch.zeros(1)))
    m.register_parameter("none", None)
    m.register_buffer("b", torch.zeros(1))
    m.register_buffer("hidden", torch.zeros(1), persistent=False)
    m.child = torch.nn.Linear(1, 1)
    assert _compat.own_state_keys(m) == ["a", "b"], (
        "Module._non_persistent_buffers_set or named_parameters/named_buffers(recurse=False) "
        "changed: mrnn_torch's load_state_dict key checks depend on them")


def test_module_apply_override_sees_to_calls():
    # mRNNBase and Region override the private nn.Module._apply(fn, recurse) so that
    # region tensors follow .to(); a torch that stops routing .to() through it breaks that.
    model = mRNN(None, dtype=torch.float32, device="cpu", seed=0)
    model.add_recurrent_region("A", 3)
    model.add_recurrent_connection("A", "A")
    model.finalize_connectivity()
    model.to(torch.float64)
    conn = model["A"].connections["A"]
    assert model["A"].init.dtype == torch.float64 and conn.parameter.dtype == torch.float64, (
        "nn.Module.to no longer goes through _apply(fn, recurse): mRNN regions keep old dtypes")
    assert conn.parameter.data_ptr() == model.W_rec.data_ptr()


def test_tensors_of_reads_the_dicts_torch_updates_in_place():
    # Region views (mrnn_torch.region) read a model's tensors through tensors_of, i.e.
    # Module._parameters / _buffers: torch must keep updating those dicts in place, and
    # copies and pickles must carry them along with whatever holds the view.
    m = torch.nn.Linear(2, 3)
    m.register_buffer("mask", torch.ones(3, 2))
    view = _compat.tensors_of(m)
    changes = [lambda: m.double(),
               lambda: m.load_state_dict({k: v.clone() for k, v in m.state_dict().items()},
                                         assign=True),
               lambda: setattr(m, "weight", torch.nn.Parameter(torch.zeros(3, 2)))]
    for change in changes:
        change()
        assert view["weight"] is m.weight and view["mask"] is m.mask, (
            "nn.Module no longer keeps parameters/buffers in _parameters/_buffers updated in "
            "place: mRNN region connections would read stale weights")
    for m2, view2 in (copy.deepcopy((m, view)), pickle.loads(pickle.dumps((m, view)))):
        assert view2["weight"] is m2.weight and view2["mask"] is m2.mask, (
            "copies of a module no longer carry its _parameters/_buffers dicts: copied "
            "mRNN models' regions would read the original's weights")

"""Property 4: models travel torch -> checkpoint -> JAX -> checkpoint -> torch unchanged."""

import numpy as np
import torch
from hypothesis import given

import mrnn_core
from .equiv_helpers import JAX_CLASSES, TORCH_CLASSES, assert_close, cases, run_jax, run_torch


def _assert_identical(a: mrnn_core.Checkpoint, b: mrnn_core.Checkpoint):
    assert a.spec == b.spec
    assert a.dynamics == b.dynamics
    assert set(a.params) >= set(mrnn_core.PARAM_NAMES)
    for name in mrnn_core.PARAM_NAMES:
        assert a.params[name].dtype == b.params[name].dtype, name
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
        assert a.params[name].tobytes() == b.params[name].tobytes(), name


@given(cases())
def test_round_trip_is_bit_identical_and_gives_equal_outputs(case):
    ckpt, call = case
    kind = ckpt.dynamics.kind
    t1 = TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64)
    c1 = t1.to_checkpoint()
    j = JAX_CLASSES[kind].from_checkpoint(c1)
    c2 = j.to_checkpoint()
    t2 = TORCH_CLASSES[kind].from_checkpoint(c2, device="cpu", dtype=torch.float64)
    c3 = t2.to_checkpoint()
    for c in (c1, c2, c3):
        _assert_identical(ckpt, c)
    expected = run_torch(t1, call)
    assert_close(run_jax(j, call), expected, what="jax after transfer")
    assert_close(run_torch(t2, call), expected, rtol=0, atol=0, what="torch after round trip")


@given(case=cases(spectral_radius=False, max_steps=3))
def test_files_written_by_one_backend_load_in_the_other(case, tmp_path_factory):
    ckpt, call = case
    kind = ckpt.dynamics.kind
    path = tmp_path_factory.mktemp("ckpt") / "model.npz"
    TORCH_CLASSES[kind].from_checkpoint(ckpt, device="cpu", dtype=torch.float64).to_checkpoint().save(path)
    j = JAX_CLASSES[kind].from_checkpoint(mrnn_core.Checkpoint.load(path))
    _assert_identical(ckpt, j.to_checkpoint())
    j.to_checkpoint().save(path)
    t = TORCH_CLASSES[kind].from_checkpoint(mrnn_core.Checkpoint.load(path), device="cpu",
                                            dtype=torch.float64)
    _assert_identical(ckpt, t.to_checkpoint())
    assert_close(run_torch(t, call), run_jax(j, call), what="after file transfer")

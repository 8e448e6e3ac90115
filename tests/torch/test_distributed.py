"""Training over processes with torch.distributed: DDP on one network (gradients equal
single-process training on the concatenated batch, float64, 1e-10), ensemble members
spread over ranks, and clear errors without a process group.

Two CPU processes (gloo) are started with ``torch.multiprocessing`` on 127.0.0.1 and a
free port; each writes what it computed to a file that the test compares.
"""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mrnn_core
from mrnn_core import MRNNConfigError
from mrnn_torch import Ensemble, mRNN
from mrnn_torch.distributed import (
    check_same_structure,
    data_parallel,
    local_ensemble,
    member_indices,
    require_process_group,
)

WORLD = 2
BATCH, STEPS = 6, 9
SEEDS = [10, 11, 12]
TAUS = [50.0, 100.0, 150.0]


def _spec():
    """E/I regions (the inhibitory one with a learned tau), one frozen connection."""
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("exc", 5, sign="pos", learnable_bias=True)
            .with_recurrent_region("inh", 3, sign="neg", learnable_tau=True, tau=40.0)
            .with_input_region("u", 2))
    for src in ("exc", "inh"):
        for dst in ("exc", "inh"):
            spec = spec.with_recurrent_connection(src, dst, sparsity=0.3,
                                                  trainable=(src, dst) != ("inh", "exc"))
    return spec.with_input_connection("u", "exc").with_input_connection("u", "inh")


DYNAMICS = mrnn_core.Dynamics(activation="tanh")


def _model(seed=3):
    ckpt = mrnn_core.Checkpoint.initialise(_spec(), DYNAMICS, seed=seed)
    return mRNN.from_checkpoint(ckpt, device="cpu", dtype=torch.float64)


def _batch():
    rng = np.random.default_rng(0)
    inp = torch.tensor(rng.standard_normal((BATCH, STEPS, 2)))
    x0 = torch.tensor(rng.uniform(-0.5, 0.5, (BATCH, 8)))
    return inp, x0


def _loss(hs):
    return hs.square().mean()


def _one_step(module, inp, x0):
    """Forward, backward, one SGD step: ``(loss, grads, params after)`` by name."""
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)
    loss = _loss(module(inp, x0)[1])
    loss.backward()
    grads = {k: p.grad.clone() for k, p in module.named_parameters()}
    optimiser.step()
    return loss.detach(), grads, {k: p.detach().clone() for k, p in module.named_parameters()}


def _worker(rank, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)
    try:
        result = {}
        inp, x0 = _batch()
        share = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        model = _model()
        ddp = data_parallel(model)
        _, grads, params = _one_step(ddp, inp[share], x0[share])
        result["grads"] = {k.removeprefix("module."): v for k, v in grads.items()}
        result["params"] = {k.removeprefix("module."): v for k, v in params.items()}
        result["structure"] = {k: getattr(model, k).clone() for k in
                               ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask",
                                "W_inp_sign_matrix")}

        try:  # rank 1 builds its network from another seed
            check_same_structure(_model(seed=3 if rank == 0 else 4))
            result["mismatch"] = None
        except MRNNConfigError as err:
            result["mismatch"] = str(err)

        indices, ens = local_ensemble(_spec(), SEEDS, dynamics=DYNAMICS, dtype=torch.float64,
                                      device="cpu", member_values={"tau": TAUS})
        xs, hs = ens(inp, x0)
        hs.square().mean(dim=(1, 2, 3)).sum().backward()
        result["indices"] = indices
        result["ensemble_hs"] = hs.detach()
        result["ensemble_grads"] = [{k: p.grad.clone() for k, p in m.named_parameters()}
                                    for m in ens.members()]
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def test_ddp_step_equals_one_process_on_the_concatenated_batch(ranks):
    inp, x0 = _batch()
    _, grads, params = _one_step(_model(), inp, x0)
    assert set(grads) >= {"W_rec", "W_inp", "log_tau_inh", "base_firing_exc"}
    for r in ranks:
        assert r["grads"].keys() == grads.keys()
        for k in grads:
            torch.testing.assert_close(r["grads"][k], grads[k], rtol=0, atol=1e-10, msg=k)
            torch.testing.assert_close(r["params"][k], params[k], rtol=0, atol=1e-10, msg=k)


def test_ddp_keeps_frozen_blocks_masks_and_signs(ranks):
    model = _model()
    exc, inh = slice(0, 5), slice(5, 8)
    for r in ranks:
        assert torch.all(r["grads"]["W_rec"][exc, inh] == 0)  # inh -> exc is frozen
        assert torch.any(r["grads"]["W_rec"][inh, exc] != 0)
        assert torch.equal(r["params"]["W_rec"][exc, inh], model.W_rec.detach()[exc, inh])
        for k, v in r["structure"].items():
            assert torch.equal(v, getattr(model, k)), k


def test_a_rank_with_other_masks_is_named_on_every_rank(ranks):
    for r in ranks:
        assert r["mismatch"] is not None
        assert "W_rec_mask differs between rank" in r["mismatch"]


def test_ensemble_members_spread_over_ranks_train_as_the_whole_ensemble(ranks):
    assert [r["indices"] for r in ranks] == [[0, 1], [2]]
    whole = Ensemble.from_seeds(_spec(), SEEDS, dynamics=DYNAMICS, dtype=torch.float64,
                                device="cpu", member_values={"tau": TAUS})
    inp, x0 = _batch()
    _, hs = whole(inp, x0)
    hs.square().mean(dim=(1, 2, 3)).sum().backward()
    for r in ranks:
        for k, e in enumerate(r["indices"]):
            torch.testing.assert_close(r["ensemble_hs"][k], hs[e].detach(), rtol=0, atol=1e-12)
            member = whole.members()[e]
            for name, p in member.named_parameters():
                torch.testing.assert_close(r["ensemble_grads"][k][name], p.grad, rtol=0,
                                           atol=1e-12, msg=name)


def test_without_a_process_group_every_helper_refuses_before_any_work():
    assert not dist.is_initialized()
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(MRNNConfigError, match="data_parallel: expected an initialised process group"):
        data_parallel(model)
    with pytest.raises(MRNNConfigError, match="expected an initialised process group.*torchrun"):
        require_process_group()
    with pytest.raises(MRNNConfigError, match="check_same_structure: expected an initialised"):
        check_same_structure(model)
    with pytest.raises(MRNNConfigError, match="local_ensemble: expected an initialised"):
        local_ensemble(_spec(), SEEDS)
    with pytest.raises(MRNNConfigError, match="member_indices: expected an initialised"):
        member_indices(4)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("members, world, expected", [
    (5, 2, [[0, 1, 2], [3, 4]]), (4, 4, [[0], [1], [2], [3]]), (7, 3, [[0, 1, 2], [3, 4], [5, 6]]),
])
def test_member_indices_split_every_member_once(members, world, expected):
    assert [member_indices(members, r, world) for r in range(world)] == expected


def test_member_indices_rejects_more_ranks_than_members():
    with pytest.raises(MRNNConfigError, match="at least one member per rank, got 2 members for 3"):
        member_indices(2, 0, 3)
    with pytest.raises(MRNNConfigError, match="rank: expected 0 <= rank < world_size = 2, got 2"):
        member_indices(4, 2, 2)

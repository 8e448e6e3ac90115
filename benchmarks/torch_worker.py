"""Torch worker: ours (``mrnn_torch``) against the floor, the mRNNTorch-style loop and ``nn.RNN``.

Run by ``run.py``; by hand: ``python benchmarks/torch_worker.py --case W3:leaky:1000
--impls ours,floor --out /tmp/w3.json``. float32 throughout. Forward alone
runs under ``torch.no_grad()``; forward + backward takes ``loss = hs.mean()``
and ``torch.autograd.grad`` of it with respect to the trainable parameters.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from worker import Impl, Skip, build_each, run_worker
from workloads import Case

DTYPE = torch.float32
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


# The floor: T back-to-back matmuls plus the activation, in TorchScript so the
# Python interpreter's per-step cost is not part of it. One function per
# activation and layout keeps every step free of branches.

def _floor_bh_tanh(h: torch.Tensor, M: torch.Tensor, steps: int) -> torch.Tensor:
    hs = []
    for _ in range(steps):
        h = torch.tanh(torch.mm(h, M))
        hs.append(h)
    return torch.stack(hs)


def _floor_bh_relu(h: torch.Tensor, M: torch.Tensor, steps: int) -> torch.Tensor:
    hs = []
    for _ in range(steps):
        h = torch.relu(torch.mm(h, M))
        hs.append(h)
    return torch.stack(hs)


def _floor_hb_tanh(h: torch.Tensor, M: torch.Tensor, steps: int) -> torch.Tensor:
    hs = []
    for _ in range(steps):
        h = torch.tanh(torch.mm(M, h))
        hs.append(h)
    return torch.stack(hs)


def _floor_hb_relu(h: torch.Tensor, M: torch.Tensor, steps: int) -> torch.Tensor:
    hs = []
    for _ in range(steps):
        h = torch.relu(torch.mm(M, h))
        hs.append(h)
    return torch.stack(hs)


_FLOORS = {("bh", "tanh"): _floor_bh_tanh, ("bh", "relu"): _floor_bh_relu,
           ("hb", "tanh"): _floor_hb_tanh, ("hb", "relu"): _floor_hb_relu}


def _script(fn):
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.compile, but it is still
        # the compiled loop issue 6 names for the floor, and it needs no compiler.
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(fn)


def _tensor(a, device) -> torch.Tensor:
    # A copy: checkpoint arrays are read-only and torch warns about sharing them.
    return torch.tensor(np.array(a, dtype=np.float32), dtype=DTYPE, device=device)


def effective(W, mask, sign, constrained: bool):
    """Dale's law as mRNNTorch applies it: ``mask * |W| * sign``, else ``W * mask``."""
    return mask * torch.abs(W) * sign if constrained else W * mask


class MRNNTorchStyle(torch.nn.Module):
    """The forward loop written the way mRNNTorch writes it (its behaviour, our code).

    Per call: Dale's law on ``W_rec`` and ``W_inp`` once; then a Python loop
    over ``t`` with transposed matmuls ``(W @ h.T).T`` and each step's state
    slice-assigned into preallocated ``[B, T, H]`` outputs. Those in-place
    writes make autograd copy the whole output gradient once per step, so its
    backward grows with ``T^2``.
    """

    def __init__(self, ckpt, device):
        super().__init__()
        p, d = ckpt.params, ckpt.dynamics
        as_t = lambda a: _tensor(a, device)  # noqa: E731
        self.W_rec = torch.nn.Parameter(as_t(p["W_rec"]))
        self.W_inp = torch.nn.Parameter(as_t(p["W_inp"]))
        for key in ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix",
                    "base_firing"):
            self.register_buffer(key, as_t(p[key]))
        self.dynamics = d
        self.activation = ACTIVATIONS[d.activation]

    def forward(self, inp, state):
        """``inp [B, T, I]``, ``state`` = ``x0`` or ``h0`` ``[B, H]``; returns ``(xs, hs)`` or ``hs``."""
        d = self.dynamics
        W_rec = effective(self.W_rec, self.W_rec_mask, self.W_rec_sign_matrix, d.rec_constrained)
        W_inp = effective(self.W_inp, self.W_inp_mask, self.W_inp_sign_matrix, d.inp_constrained)
        leaky = d.kind == "leaky"
        B, T, H = inp.shape[0], inp.shape[1], W_rec.shape[0]
        new_hs = torch.empty((B, T, H), dtype=inp.dtype, device=inp.device)
        new_xs = torch.empty((B, T, H), dtype=inp.dtype, device=inp.device) if leaky else None
        x = state
        h = self.activation(state) if leaky else state
        for t in range(T):
            drive = (W_rec @ h.T).T + (W_inp @ inp[:, t, :].T).T + self.base_firing
            x = x + d.alpha * (-x + drive) if leaky else drive
            h = self.activation(x)
            if leaky:
                new_xs[:, t, :] = x
            new_hs[:, t, :] = h
        return (new_xs, new_hs) if leaky else new_hs


def _sync(device: str):
    if device.startswith("cuda"):
        return lambda out: (torch.cuda.synchronize(), out)[1]
    return lambda out: out


def _rates(out, leaky: bool):
    return out[1] if leaky and isinstance(out, tuple) else out


def _module_impl(label, module, inp, state, leaky, finish) -> Impl:
    params = [p for p in module.parameters() if p.requires_grad]

    def fwd():
        with torch.no_grad():
            return finish(module(inp, state))

    def fwdbwd():
        hs = _rates(module(inp, state), leaky)
        return finish(torch.autograd.grad(hs.mean(), params))

    def hs():
        return _rates(fwd(), leaky).detach().cpu().numpy()

    return Impl(label, fwd, fwdbwd, hs)


def _floor_impl(label, layout, activation, W_eff, state, steps, finish) -> Impl:
    loop = _script(_FLOORS[layout, activation])
    # [B, H] layout multiplies h @ W^T; [H, B] keeps the state transposed and
    # multiplies W @ h (issue 6's hint: faster for large H).
    M = (W_eff.T if layout == "bh" else W_eff).contiguous().requires_grad_(True)
    h0 = (state if layout == "bh" else state.T).contiguous()

    def fwd():
        with torch.no_grad():
            return finish(loop(h0, M, steps))

    def fwdbwd():
        return finish(torch.autograd.grad(loop(h0, M, steps).mean(), [M]))

    return Impl(label, fwd, fwdbwd)


class _ElmanAsNNRNN(torch.nn.Module):
    """``torch.nn.RNN`` (tanh) loaded with the same effective weights and bias as ours."""

    def __init__(self, ckpt, device):
        super().__init__()
        p, d = ckpt.params, ckpt.dynamics
        H, I = np.shape(p["W_inp"])
        self.rnn = torch.nn.RNN(I, H, nonlinearity="tanh", batch_first=True,
                                device=device, dtype=DTYPE)
        as_t = lambda a: _tensor(a, device)  # noqa: E731
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(effective(as_t(p["W_rec"]), as_t(p["W_rec_mask"]),
                                                  as_t(p["W_rec_sign_matrix"]), d.rec_constrained))
            self.rnn.weight_ih_l0.copy_(effective(as_t(p["W_inp"]), as_t(p["W_inp_mask"]),
                                                  as_t(p["W_inp_sign_matrix"]), d.inp_constrained))
            self.rnn.bias_ih_l0.copy_(as_t(p["base_firing"]))
            self.rnn.bias_hh_l0.zero_()

    def forward(self, inp, h0):
        return self.rnn(inp, h0.unsqueeze(0))[0]


def _ours(ckpt, inp, state, leaky, finish, device, recurrence=None) -> Impl:
    """The model as a user calls it; ``recurrence`` forces one of its paths (``"dense"``)."""
    import mrnn_torch

    cls = mrnn_torch.mRNN if leaky else mrnn_torch.ElmanmRNN
    model = cls.from_checkpoint(ckpt, device=device, dtype=DTYPE)
    label = f"ours ({cls.__name__})"
    if recurrence is not None:
        if not hasattr(model, "recurrence"):
            raise Skip(f"{cls.__name__} has no recurrence override")
        model.recurrence = recurrence
        label += f" {recurrence} path"
    return _module_impl(label, model, inp, state, leaky, finish)


def build(case: Case, names: list[str], device: str):
    """The torch contenders for one case (see :func:`worker.run_worker`)."""
    torch.manual_seed(0)
    ckpt = case.checkpoint()
    leaky = case.kind == "leaky"
    inp_np, state_np = case.arrays()
    inp = torch.as_tensor(inp_np, device=device)
    state = torch.as_tensor(state_np, device=device)
    finish = _sync(device)
    act = case.workload.activation

    def make(name: str) -> Impl:
        if name == "ours":
            return _ours(ckpt, inp, state, leaky, finish, device)
        if name == "ours_dense":
            return _ours(ckpt, inp, state, leaky, finish, device, recurrence="dense")
        if name in ("floor", "floor_hb"):
            baseline = MRNNTorchStyle(ckpt, device)
            with torch.no_grad():
                W_eff = effective(baseline.W_rec, baseline.W_rec_mask,
                                  baseline.W_rec_sign_matrix, ckpt.dynamics.rec_constrained)
            layout = "bh" if name == "floor" else "hb"
            label = "floor (TorchScript)" if layout == "bh" else "floor [H,B] (info)"
            return _floor_impl(label, layout, act, W_eff, state, case.steps, finish)
        if name == "mrnntorch":
            return _module_impl("mRNNTorch-style loop", MRNNTorchStyle(ckpt, device),
                                inp, state, leaky, finish)
        if name == "nn_rnn":
            if leaky or act != "tanh":
                raise ValueError("torch.nn.RNN baseline: only for Elman tanh workloads")
            return _module_impl("torch.nn.RNN (tanh)", _ElmanAsNNRNN(ckpt, device),
                                inp, state, False, finish)
        raise ValueError(f"unknown torch implementation {name!r}")

    impls, errors, skipped = build_each(names, make)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device}
    return impls, errors, skipped, info


if __name__ == "__main__":
    run_worker("torch", build)

"""What the analysis needs from torch (:class:`mrnn_core.analysis_driver.Backend`):
float64 tensors on the model's device, ``torch.func`` Jacobians, and an
eager Levenberg-Marquardt iteration over the searches still running."""

from __future__ import annotations

import torch
from torch.func import jacrev, vmap

from mrnn_core import analysis as core
from mrnn_core.analysis_driver import Backend, lm_iteration, step_map


class TorchBackend(Backend):
    library = "torch"

    def device(self, model):
        """The device of a torch model's parameters or buffers; CPU for anything else."""
        if isinstance(model, torch.nn.Module):
            for t in (*model.parameters(), *model.buffers()):
                return t.device
        return torch.device("cpu")

    def as_array(self, a, device):
        return torch.tensor(a, dtype=torch.float64, device=device)

    def jacobian(self, step, space, W, d, y):
        return vmap(jacrev(lambda s: step_map(step, space, W, d, s)))(y)

    def input_jacobian(self, net, state):
        return jacrev(lambda u: step_map(net.step, net.space, net.W, net.drive(u), state))(net.u)

    def iteration(self, step, space, tol, W, d):
        chunk = core.chunk_size(W.shape[0])

        def iterate(y, q, mu, done):
            # Only the searches still running, in chunks that bound memory.
            for idx in torch.nonzero(~done).flatten().split(chunk):
                y[idx], q[idx], mu[idx], done[idx] = lm_iteration(
                    step, space, tol, W, d, y[idx], q[idx], mu[idx], done[idx])
            return y, q, mu, done

        return iterate

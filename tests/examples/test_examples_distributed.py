"""examples/torch_distributed.py runs as a user launches it: plain python (one process,
one network, data parallel) and torchrun with two CPU processes (an ensemble spread over
them), with small sizes."""

import re
import socket
import subprocess
import sys

from .examples_helpers import EXAMPLES

SCRIPT = str(EXAMPLES / "torch_distributed.py")


def _run(cwd, command):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_plain_python_trains_one_network_in_one_process(tmp_path):
    out = _run(tmp_path, [sys.executable, SCRIPT, "--steps", "3", "--batch", "4",
                          "--length", "20"])
    assert "1 process(es), gloo on cpu: one network, data parallel" in out
    assert re.search(r"trained 3 steps in [0-9.]+ s \([0-9.]+ s a step\): loss [0-9.]+ "
                     r"\(rank 0, first step\) -> [0-9.]+", out), out


def test_torchrun_spreads_an_ensemble_over_two_processes(tmp_path):
    out = _run(tmp_path, [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
                          SCRIPT, "--steps", "2", "--batch", "4", "--length", "20",
                          "--members", "3"])
    assert "2 process(es), gloo on cpu: an ensemble of 3" in out
    # every member reported once, gathered from both processes
    assert re.search(r"last-step loss per member 0: [0-9.]+, 1: [0-9.]+, 2: [0-9.]+$", out,
                     re.MULTILINE), out

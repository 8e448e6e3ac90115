"""A save never destroys the last good file: killed, out of space or racing
another save, the path always holds one complete checkpoint that loads.

These tests run real processes: a save killed with SIGKILL at random moments,
a save under a file-size limit, and two processes saving to one path while
this one reads it.
"""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import mrnn_core as mc

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses fork, SIGKILL and setrlimit")

ROOT = Path(mc.__file__).resolve().parents[1]

# Builds checkpoint A (marker 1) or B (marker 2) of H units: W_rec, its mask and
# its sign matrix are [H, H] float64, so H = 1450 gives a ~50 MB file.
BUILD = textwrap.dedent("""
    import numpy as np
    import mrnn_core as mc

    def build(H, marker):
        spec = (mc.NetworkSpec().with_recurrent_region("a", H).with_input_region("u", 1)
                .with_recurrent_connection("a", "a").with_input_connection("u", "a"))
        ones = np.ones((H, H))
        params = {"W_rec": np.full((H, H), 0.5 / marker), "W_rec_mask": ones,
                  "W_rec_sign_matrix": ones, "W_inp": np.full((H, 1), float(marker)),
                  "W_inp_mask": np.ones((H, 1)), "W_inp_sign_matrix": np.ones((H, 1)),
                  "base_firing": np.zeros(H), "init": np.full(H, float(marker))}
        return mc.Checkpoint(spec, mc.Dynamics(), params)
""")


def python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", BUILD + textwrap.dedent(code)], env=env,
                            text=True, **kwargs)


def assert_complete(path: Path, H: int) -> int:
    """``path`` loads, and is all of A or all of B (never a mix): returns the marker."""
    ckpt = mc.Checkpoint.load(path)
    marker = float(ckpt.params["init"][0])
    assert marker in (1.0, 2.0)
    assert ckpt.spec.hidden_size == H
    assert np.all(ckpt.params["init"] == marker)
    assert np.all(ckpt.params["W_inp"] == marker)
    assert np.all(ckpt.params["W_rec"] == 0.5 / marker)
    return int(marker)


def strays(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.iterdir() if p.name != name]


def test_a_save_killed_at_random_moments_never_leaves_a_broken_file(tmp_path):
    H, kills = 1450, 8
    path = tmp_path / "model.npz"
    # A server builds both checkpoints once, writes A, then forks one saver per
    # request; each saver saves B then A then B... until it is killed.
    server = python(f"""
        import os, sys, time
        A, B = build({H}, 1), build({H}, 2)
        start = time.perf_counter()
        A.save({str(path)!r})
        print(time.perf_counter() - start, flush=True)
        for line in sys.stdin:
            pid = os.fork()
            if pid == 0:
                while True:
                    B.save({str(path)!r})
                    A.save({str(path)!r})
            print(pid, flush=True)
            os.waitpid(pid, 0)
    """, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with server:
        save_time = float(server.stdout.readline())
        assert path.stat().st_size > 50e6
        rng = random.Random(14)
        seen = set()
        for _ in range(kills):
            server.stdin.write("go\n")
            server.stdin.flush()
            saver = int(server.stdout.readline())
            time.sleep(rng.uniform(0.0, 1.5 * save_time))
            os.kill(saver, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{saver}").exists() and time.monotonic() < deadline:
                time.sleep(0.005)  # the server reaps it
            seen.add(assert_complete(path, H))
        server.kill()
    # A killed save leaves at most its temporary file, named after the target;
    # there are some, so kills did land in the middle of saves.
    left = strays(tmp_path, "model.npz")
    assert left and all(p.name.startswith(".model.npz.tmp-") for p in left)
    assert seen <= {1, 2}


@pytest.mark.parametrize("ignore_signal", [True, False], ids=["EFBIG", "SIGXFSZ"])
def test_a_save_over_the_file_size_limit_keeps_the_old_file(tmp_path, ignore_signal):
    path = tmp_path / "model.npz"
    child = python(f"""
        import resource, signal
        build(50, 1).save({str(path)!r})
        print("saved", flush=True)
        # Python ignores SIGXFSZ (the write then fails with EFBIG); a process
        # that does not is killed by it.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN if {ignore_signal} else signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            build(400, 2).save({str(path)!r})  # ~3.8 MB: over the limit
        except OSError as err:
            print(type(err).__name__, err.errno, flush=True)
    """, stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    assert out.startswith("saved")
    if ignore_signal:
        import errno

        assert child.returncode == 0 and f" {errno.EFBIG}" in out
        assert strays(tmp_path, "model.npz") == []  # the failed save cleaned up
    else:
        assert child.returncode == -signal.SIGXFSZ
    assert assert_complete(path, 50) == 1


def test_two_processes_saving_to_one_path_leave_one_complete_file(tmp_path):
    H, saves = 400, 12
    path = tmp_path / "model.npz"
    savers = [python(f"""
        ckpt = build({H}, {marker})
        for _ in range({saves}):
            ckpt.save({str(path)!r})
    """) for marker in (1, 2)]
    reads, seen = 0, set()
    try:
        while any(s.poll() is None for s in savers) or reads == 0:
            if path.exists():
                seen.add(assert_complete(path, H))
                reads += 1
            else:
                time.sleep(0.001)
    finally:
        for s in savers:
            s.wait(timeout=60)
    assert [s.returncode for s in savers] == [0, 0]
    assert reads > 0
    assert_complete(path, H)
    assert strays(tmp_path, "model.npz") == []


def test_every_writer_replaces_the_file_atomically(tmp_path, monkeypatch):
    """Checkpoint.save, NetworkSpec.save and save_config all go through atomic_write:
    a save that fails half-way leaves the old file byte for byte."""
    spec = mc.NetworkSpec().with_recurrent_region("a", 3).with_recurrent_connection("a", "a")
    ckpt = mc.Checkpoint.initialise(spec, seed=0)
    writers = {"model.npz": ckpt.save, "spec.json": spec.save,
               "config.json": lambda p: mc.save_config(spec, p)}
    for name, write in writers.items():
        write(tmp_path / name)
    before = {name: (tmp_path / name).read_bytes() for name in writers}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    for name, write in writers.items():
        with pytest.raises(OSError, match="No space left"):
            write(tmp_path / name)
        assert (tmp_path / name).read_bytes() == before[name], name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(writers)

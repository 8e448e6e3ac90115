"""The backend-neutral half of training runs (mrnn_core.training): run folder, checkpoints, fallback."""

import io
import json
import os

import numpy as np
import pytest

import mrnn_core
from mrnn_core import training
from mrnn_core.training import CheckpointFallbackWarning


def write(run_dir, step, payload=b"weights", keep=3):
    def writer(path):
        with open(path, "wb") as f:
            f.write(payload)

    return training.write_checkpoint(run_dir, step, {"arrays.bin": writer},
                                     {"step": step, "seed": 0, "history": [0.5] * step}, keep)


def read_payload(folder, state):
    with open(os.path.join(folder, "arrays.bin"), "rb") as f:
        return f.read()


def test_checkpoints_are_complete_folders_listed_newest_first_and_pruned(tmp_path):
    for step in (2, 4, 6, 8):
        folder = write(tmp_path, step, payload=f"at {step}".encode())
    assert folder == str(tmp_path / "checkpoints" / "step-000000008")
    assert [s for s, _ in training.list_checkpoints(tmp_path)] == [8, 6, 4]  # keep=3
    state = training.read_state(folder)
    assert state["step"] == 8 and set(state["files"]) == {"arrays.bin"}
    loaded, state, used = training.load_latest(tmp_path, read_payload)
    assert (loaded, state["step"], used) == (b"at 8", 8, folder)


def test_partial_and_corrupt_checkpoints_are_skipped_with_a_warning(tmp_path):
    for step in (1, 2, 3):
        write(tmp_path, step, payload=f"at {step}".encode())
    folders = dict(training.list_checkpoints(tmp_path))
    with open(os.path.join(folders[3], "arrays.bin"), "r+b") as f:
        f.write(b"xx")
    os.unlink(os.path.join(folders[2], "state.json"))
    with pytest.warns(CheckpointFallbackWarning) as caught:
        loaded, state, _ = training.load_latest(tmp_path, read_payload)
    assert loaded == b"at 1" and state["step"] == 1
    messages = [str(w.message) for w in caught]
    assert "step-000000003 cannot be used" in messages[0] and "arrays.bin is corrupt" in messages[0]
    assert "step-000000002 cannot be used" in messages[1] and "a partial checkpoint" in messages[1]
    # Writing that step again replaces the damaged folder.
    write(tmp_path, 3, payload=b"again")
    assert training.load_latest(tmp_path, read_payload)[0] == b"again"


def test_a_run_without_checkpoints_and_one_with_only_broken_ones(tmp_path):
    assert training.load_latest(tmp_path, read_payload) is None
    write(tmp_path, 1)
    os.unlink(tmp_path / "checkpoints" / "step-000000001" / "arrays.bin")
    with pytest.warns(CheckpointFallbackWarning, match=r"arrays\.bin is missing"):
        with pytest.raises(mrnn_core.MRNNConfigError, match=r"resume: no usable checkpoint in"):
            training.load_latest(tmp_path, read_payload)


def test_a_mismatch_is_an_error_not_a_fallback(tmp_path):
    write(tmp_path, 1)
    write(tmp_path, 2)

    def other_seed(state, folder):
        training.check_resumed_state(state, seed=9, steps=10, folder=folder)

    with pytest.raises(training.RunMismatchError, match=r"started with seed=0; resuming with seed=9"):
        training.load_latest(tmp_path, read_payload, other_seed)


def test_a_failed_write_leaves_the_previous_checkpoints_and_no_folder(tmp_path):
    write(tmp_path, 1)

    def failing(path):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        training.write_checkpoint(tmp_path, 2, {"arrays.bin": failing}, {"step": 2}, keep=3)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step-000000001"]


def test_history_file_and_per_step_randomness(tmp_path):
    training.write_history(tmp_path, [0.25, 0.125], 2)
    assert training.read_history(tmp_path) == [0.25, 0.125]
    assert json.loads((tmp_path / "history.json").read_text())["step"] == 2
    a, b = training.step_rng(3, 7).random(4), training.step_rng(3, 7).random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, training.step_rng(3, 8).random(4))
    assert training.step_seed(3, 7) == training.step_seed(3, 7) != training.step_seed(4, 7)
    assert 0 <= training.step_seed(3, 7) < 2**63


def test_progress_in_a_log_file_is_one_line_per_redraw():
    stream = io.StringIO()
    lines = training._LogLines(stream)
    lines.write("\rtraining:  50%|#####     | 1/2")
    lines.write("\rtraining: 100%|##########| 2/2")
    lines.write("\n")
    assert stream.getvalue().splitlines() == ["training:  50%|#####     | 1/2",
                                              "training: 100%|##########| 2/2"]

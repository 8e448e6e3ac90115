"""Corrupt, truncated, foreign or hostile files: Checkpoint.load raises the
documented MRNNFileError naming the file and what is wrong, never a bare
BadZipFile / EOFError / JSONDecodeError / zlib.error, never hangs on a FIFO,
never reads /dev/zero, never unpickles and never suggests allow_pickle."""

import importlib
import json
import os
import random
import re
import threading
import zipfile

import numpy as np
import pytest

import mrnn_core as mc

SPEC = (mc.NetworkSpec().with_recurrent_region("a", 4).with_recurrent_region("b", 3, sign="neg")
        .with_input_region("u", 2)
        .with_recurrent_connection("a", "b").with_recurrent_connection("b", "a", sparsity=0.5)
        .with_input_connection("u", "a"))


@pytest.fixture
def saved(tmp_path):
    """``(path, checkpoint, {member: array})`` of a valid file."""
    ckpt = mc.Checkpoint.initialise(SPEC, mc.Dynamics(tau=50.0), seed=3)
    path = tmp_path / "model.npz"
    ckpt.save(path)
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    return path, ckpt, members


def refused(path, message: str = ""):
    """Load ``path``, expecting MRNNFileError whose message names it (and matches ``message``)."""
    with pytest.raises(mc.MRNNFileError, match=re.escape(repr(str(path))) + ".*" + message) as info:
        mc.Checkpoint.load(path)
    assert "allow_pickle" not in str(info.value)
    return str(info.value)


def same(a: mc.Checkpoint, b: mc.Checkpoint) -> bool:
    return (a.spec == b.spec and a.dynamics == b.dynamics and set(a.params) == set(b.params)
            and all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params))


def write(path, members):
    np.savez(path, **members)
    return path


def test_the_error_type_is_a_config_error_and_exported():
    assert issubclass(mc.MRNNFileError, mc.MRNNConfigError)
    assert issubclass(mc.MRNNFileError, ValueError)


def test_truncated_files_are_refused_at_every_length(saved):
    path, _, _ = saved
    data = path.read_bytes()
    cuts = sorted(set(random.Random(0).sample(range(1, len(data)), 40)) | {1, 2, 4, 22, len(data) - 1})
    for cut in cuts:
        path.write_bytes(data[:cut])
        refused(path)


def test_a_flipped_bit_is_refused_or_changes_nothing(saved):
    """Every array member is CRC-checked, so a flip in data or headers is
    caught; a flip in a field nothing reads (a timestamp) loads the same model."""
    path, ckpt, _ = saved
    data = bytearray(path.read_bytes())
    rng = random.Random(1)
    outcomes = {"refused": 0, "same": 0}
    for _ in range(120):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        try:
            loaded = mc.Checkpoint.load(path)
        except mc.MRNNFileError as err:
            assert repr(str(path)) in str(err) and "allow_pickle" not in str(err)
            outcomes["refused"] += 1
        else:
            assert same(loaded, ckpt), "a flipped bit loaded a different network"
            outcomes["same"] += 1
    assert outcomes["refused"] > 100


def test_files_of_another_kind_are_refused_naming_it(tmp_path, saved):
    _, ckpt, _ = saved
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    refused(empty, "is empty")
    text = tmp_path / "text.npz"
    text.write_text("W_rec = 1\n")
    refused(text, r"is not an mrnn checkpoint \(an \.npz zip archive\)")
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, ckpt.params["W_rec"])
    refused(npy, r"is a single \.npy array, expected an \.npz archive")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    refused(other, r"member 'readme.txt' is not an array \(\.npy\)")


@pytest.mark.parametrize("version, message", [
    (np.array("abc"), r"format version 'abc' \(dtype <U3\): expected an integer from 1 to 2"),
    (np.array(-5), r"format version -5: expected an integer from 1 to 2"),
    (np.array(0), r"format version 0: expected an integer from 1 to 2"),
    (np.array(2.0), r"format version 2.0 \(dtype float64\): expected an integer"),
    (np.array([1, 2]), r"format version \[1, 2\] .*expected an integer"),
    (np.array(99), r"format version 99 is newer than this mrnn reads \(expected <= 2\); upgrade"),
])
def test_a_bad_format_version_is_refused(tmp_path, saved, version, message):
    _, _, members = saved
    refused(write(tmp_path / "v.npz", {**members, "__format_version__": version}), message)


@pytest.mark.parametrize("member", ["__spec__", "__dynamics__", "__readout__"])
def test_invalid_embedded_json_is_refused_naming_the_member(tmp_path, saved, member):
    _, _, members = saved
    refused(write(tmp_path / "j.npz", {**members, member: np.array('{"a": [1, 2')}),
            f"{member} is not valid JSON")
    refused(write(tmp_path / "k.npz", {**members, member: np.array("[1, 2]")}),
            f"{member} must be a JSON object, got list")
    refused(write(tmp_path / "l.npz", {**members, member: np.array(7)}),
            f"{member} must be one JSON string")


def test_embedded_json_of_the_wrong_content_is_refused(tmp_path, saved):
    _, _, members = saved
    dynamics = json.loads(str(members["__dynamics__"]))
    refused(write(tmp_path / "d.npz", {**members, "__dynamics__": np.array(json.dumps(
        {**dynamics, "tua": 3}))}), r"__dynamics__: dynamics: unknown key 'tua' \(did you mean 'tau'")
    refused(write(tmp_path / "t.npz", {**members, "__dynamics__": np.array(json.dumps(
        {**dynamics, "tau": -1.0}))}), r"__dynamics__: .*tau")
    spec = json.loads(str(members["__spec__"]))
    spec["recurrent_regions"][0]["num_units"] = "four"
    refused(write(tmp_path / "s.npz", {**members, "__spec__": np.array(json.dumps(spec))}),
            r"__spec__: .*num_units")


@pytest.mark.parametrize("missing", ["__format_version__", "__spec__", "__dynamics__"])
def test_a_missing_metadata_member_is_refused(tmp_path, saved, missing):
    _, _, members = saved
    del members[missing]
    refused(write(tmp_path / "m.npz", members), f"missing {missing}.*Checkpoint.save")


@pytest.mark.parametrize("missing", ["W_rec", "W_rec_mask", "W_inp_sign_matrix", "base_firing", "init"])
def test_a_missing_array_is_refused(tmp_path, saved, missing):
    _, _, members = saved
    del members[missing]
    refused(write(tmp_path / "m.npz", members), f"missing '{missing}'")


def test_unknown_members_are_refused_before_they_are_read(tmp_path, saved):
    _, _, members = saved
    refused(write(tmp_path / "x.npz", {**members, "huge": np.zeros(10)}),
            r"unknown array\(s\) 'huge'; expected only W_rec, ")
    refused(write(tmp_path / "y.npz", {**members, "__notes__": np.array("hi")}),
            r"unknown member\(s\) '__notes__'")
    refused(write(tmp_path / "z.npz", {**members, "readout_W": np.zeros((2, 7))}),
            r"unknown array\(s\) 'readout_W'")


def test_arrays_of_the_wrong_shape_or_kind_are_refused_before_they_are_read(tmp_path, saved):
    _, _, members = saved
    refused(write(tmp_path / "s.npz", {**members, "W_rec": np.zeros((7, 7000))}),
            r"params\['W_rec'\]: expected shape \(7, 7\) for this network, got \(7, 7000\)")
    refused(write(tmp_path / "o.npz", {**members, "init": np.array([object()] * 7)}),
            r"params\['init'\]: holds Python objects .*never loaded")
    refused(write(tmp_path / "c.npz", {**members, "W_rec": members["W_rec"] + 1j}),
            r"params\['W_rec'\]: expected a real array .*got complex dtype complex128")
    refused(write(tmp_path / "u.npz", {**members, "tau": np.array(["x"] * 7)}),
            r"params\['tau'\]: expected a real array .*got string dtype <U1")


def test_bad_values_in_a_well_formed_file_are_refused_naming_file_and_array(tmp_path, saved):
    _, _, members = saved
    mask = members["W_rec_mask"].copy()
    mask[0, 0] = 2.0
    refused(write(tmp_path / "m.npz", {**members, "W_rec_mask": mask}),
            r"\['W_rec_mask'\]\[0, 0\] \(block 'a' -> 'a'\): expected 0 or 1, got")
    refused(write(tmp_path / "t.npz", {**members, "tau": -members["tau"]}),
            r"\['tau'\]: expected finite time constants > 0, got -50.0 for unit 0 \(region 'a'\)")


def test_a_compressed_checkpoint_loads(tmp_path, saved):
    _, ckpt, members = saved
    np.savez_compressed(tmp_path / "c.npz", **members)
    assert same(mc.Checkpoint.load(tmp_path / "c.npz"), ckpt)


def test_a_symlink_to_a_checkpoint_loads(tmp_path, saved):
    path, ckpt, _ = saved
    (tmp_path / "link.npz").symlink_to(path)
    assert same(mc.Checkpoint.load(tmp_path / "link.npz"), ckpt)


def test_non_regular_files_are_refused_without_reading_them(tmp_path):
    refused(tmp_path / "absent.npz", "does not exist")
    refused(tmp_path, "is a directory")
    if os.path.exists("/dev/zero"):
        refused("/dev/zero", "is a character device, expected a regular file")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.npz"
        os.mkfifo(fifo)
        outcome = []

        def load():
            try:
                mc.Checkpoint.load(fifo)
            except mc.MRNNFileError as err:
                outcome.append(str(err))

        reader = threading.Thread(target=load, daemon=True)
        reader.start()
        reader.join(10)
        assert not reader.is_alive(), "loading a FIFO blocked"
        assert outcome and "is a FIFO (named pipe), expected a regular file" in outcome[0]


@pytest.mark.parametrize("route", ["mrnn_torch", "mrnn_jax"])
def test_from_checkpoint_given_a_path_points_to_checkpoint_load(saved, route):
    module = importlib.import_module(route)
    path, _, _ = saved
    for value in (str(path), path):
        with pytest.raises(mc.MRNNConfigError,
                           match=rf"mRNN.from_checkpoint: got the path '{re.escape(str(path))}', "
                                 r"expected a mrnn_core.Checkpoint; read the file first: "
                                 r"mRNN.from_checkpoint\(mrnn_core.Checkpoint.load\(path\)\)"):
            module.mRNN.from_checkpoint(value)
    with pytest.raises(mc.MRNNConfigError, match=r"Readout.from_checkpoint: got the path"):
        module.Readout.from_checkpoint(str(path))


def test_read_text_refuses_what_a_config_reader_must_not_read(tmp_path):
    """``mrnn_core.files.read_text``: the bounded, regular-file-only reader for text files."""
    from mrnn_core.files import read_text

    (tmp_path / "c.json").write_text('{"a": 1}')
    assert read_text(tmp_path / "c.json", "config file") == '{"a": 1}'
    with pytest.raises(mc.MRNNFileError, match=r"config file '.*big.json' holds 11 bytes, more "
                                               r"than the 10 read at most"):
        (tmp_path / "big.json").write_text("x" * 11)
        read_text(tmp_path / "big.json", "config file", max_bytes=10)
    with pytest.raises(mc.MRNNFileError, match=r"config file '.*bad.json' is not UTF-8 text: "
                                               r"got byte b'\\xff' at offset 1"):
        (tmp_path / "bad.json").write_bytes(b"{\xff}")
        read_text(tmp_path / "bad.json", "config file")
    if os.path.exists("/dev/zero"):
        with pytest.raises(mc.MRNNFileError, match=r"'/dev/zero' is a character device"):
            read_text("/dev/zero", "config file")

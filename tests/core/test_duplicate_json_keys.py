"""A key given twice in one JSON object is refused, naming the key and where it is.

Python's json keeps the last value silently; a config with ``num_units``
twice would build a network other than the one its author read.
"""

import json
import re

import numpy as np
import pytest

import mrnn_core as mc
from mrnn_core.config import parse_json

CONFIG = """{
  "recurrent_regions": [
    {"name": "ctx", "num_units": 4},
    {"name": "thal", "num_units": 3, "sign": "neg", "num_units": 30}
  ],
  "input_regions": [{"name": "cue", "num_units": 2}],
  "recurrent_connections": [{"src_region": "ctx", "dst_region": "thal"}],
  "input_connections": [{"src_region": "cue", "dst_region": "ctx", "sparsity": 0.5, "sparsity": 0.0}]
}"""


def test_a_repeated_region_key_names_the_file_the_region_and_the_key(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(CONFIG)
    expected = (rf"^{re.escape(str(path))}\.recurrent_regions\[1\]: key 'num_units' is given more "
                r"than once in one object; expected each key once \(JSON would silently keep only "
                r"the last value\)$")
    with pytest.raises(mc.MRNNConfigError, match=expected):
        mc.load_config(path)
    with pytest.raises(mc.MRNNConfigError, match=expected):
        mc.build_connectivity(str(path))


def test_the_first_repeated_key_is_reported_wherever_it_sits(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(CONFIG.replace('"num_units": 3, "sign": "neg", "num_units": 30', '"num_units": 3'))
    with pytest.raises(mc.MRNNConfigError,
                       match=r"net\.json\.input_connections\[0\]: key 'sparsity' is given more than once"):
        mc.load_config(path)
    path.write_text('{"recurrent_regions": [], "input_regions": [], "recurrent_regions": []}')
    with pytest.raises(mc.MRNNConfigError, match=r"net\.json: key 'recurrent_regions' is given more than once"):
        mc.load_config(path)
    with pytest.raises(mc.MRNNConfigError, match=r"^x\.a\.b\[1\]: key 'c' is given more than once"):
        parse_json('{"a": {"b": [1, {"c": 1, "c": 2}]}}', "x")


def test_comment_keys_may_repeat_and_the_config_builds(tmp_path):
    path = tmp_path / "net.json"
    path.write_text('{"__note": "a", "__note": "b", "recurrent_regions": '
                    '[{"name": "ctx", "num_units": 2, "__why": 1, "__why": 2}]}')
    assert mc.load_config(path).recurrent_names == ("ctx",)


def test_a_valid_file_and_its_dict_give_the_same_spec(tmp_path):
    path = tmp_path / "net.json"
    text = CONFIG.replace(', "num_units": 30', "").replace(', "sparsity": 0.0', "")
    path.write_text(text)
    assert mc.load_config(path) == mc.spec_from_dict(json.loads(text))


def _rewrite(path, key, text):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = np.array(text)
    np.savez(path, **arrays)


@pytest.fixture
def checkpoint_file(tmp_path):
    spec = (mc.NetworkSpec().with_recurrent_region("ctx", 3).with_input_region("cue", 1)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("cue", "ctx"))
    path = tmp_path / "run.npz"
    mc.Checkpoint.initialise(spec, seed=0).save(path)
    return path


def test_json_embedded_in_a_checkpoint_is_held_to_the_same_rule(checkpoint_file):
    path = str(checkpoint_file)
    with np.load(path) as data:
        spec_text, dynamics_text = str(data["__spec__"]), str(data["__dynamics__"])
    _rewrite(path, "__spec__", spec_text.replace('"num_units": 3', '"num_units": 3, "num_units": 30'))
    with pytest.raises(mc.MRNNConfigError, match=rf"^checkpoint file '{re.escape(path)}': "
                                                 rf"{re.escape(path)}\[spec\]\.recurrent_regions\[0\]: "
                                                 r"key 'num_units' is given more than once"):
        mc.Checkpoint.load(path)
    _rewrite(path, "__spec__", spec_text)
    _rewrite(path, "__dynamics__", dynamics_text.replace('"dt": 10.0', '"dt": 10.0, "dt": 1000.0'))
    with pytest.raises(mc.MRNNConfigError, match=rf"^checkpoint file '{re.escape(path)}': "
                                                 rf"{re.escape(path)}\[dynamics\]: key 'dt' is given "
                                                 r"more than once"):
        mc.Checkpoint.load(path)
    _rewrite(path, "__dynamics__", dynamics_text)
    assert mc.Checkpoint.load(path).spec.recurrent_regions[0].num_units == 3


def test_invalid_json_embedded_in_a_checkpoint_names_the_file(checkpoint_file):
    path = str(checkpoint_file)
    _rewrite(path, "__spec__", '{"recurrent_regions": [')
    with pytest.raises(mc.MRNNConfigError, match=rf"^checkpoint file '{re.escape(path)}': __spec__ is not valid JSON: "):
        mc.Checkpoint.load(path)


def test_json_nested_beyond_reason_is_refused_cleanly():
    with pytest.raises(mc.MRNNConfigError, match=r"^deep\.json: JSON nested too deeply to read"):
        parse_json("[" * 100_000 + "]" * 100_000, "deep.json")

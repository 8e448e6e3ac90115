"""Every rejection of SEMANTICS.md section 5, with the message that names the culprit.

Each message must say what was wrong, what was expected and what was got;
a rejected ``with_*`` call must leave the spec it was called on unchanged.
"""

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import mrnn_core as mc
from mrnn_core import reference
from mrnn_core.testing import invalid_configs

Error = mc.MRNNConfigError


def base_spec():
    return (mc.NetworkSpec()
            .with_recurrent_region("ctx", 3, parent_region="cortex")
            .with_recurrent_region("thal", 2, sign="neg")
            .with_input_region("cue", 2)
            .with_recurrent_connection("ctx", "thal")
            .with_input_connection("cue", "ctx"))


def test_the_error_is_a_value_error():
    assert issubclass(mc.MRNNConfigError, ValueError)


# -- building a spec -------------------------------------------------------------

REJECTED_CALLS = [
    # unknown region names, with the known ones listed (and a suggestion)
    (lambda s: s.with_recurrent_connection("ctx", "thalamus"),
     r"unknown destination region 'thalamus'; known recurrent regions: 'ctx', 'thal'"
     r".*did you mean 'thal'"),
    (lambda s: s.with_recurrent_connection("cortex_x", "thal"),
     r"unknown source region 'cortex_x'; known recurrent source regions: 'ctx', 'thal'"),
    (lambda s: s.with_input_connection("cues", "ctx"),
     r"unknown source region 'cues'; known input source regions: 'cue'"),
    (lambda s: s.with_input_connection("cue", "ctz"),
     r"unknown destination region 'ctz'; known recurrent regions: 'ctx', 'thal'"),
    (lambda s: s.with_recurrent_connection("cue", "ctx"),
     r"unknown source region 'cue'; known recurrent source regions: 'ctx', 'thal'"),
    # duplicates
    (lambda s: s.with_recurrent_region("thal", 4),
     r"duplicate region name 'thal': given to two recurrent regions; region names must be unique"),
    (lambda s: s.with_input_region("cue", 1), r"duplicate region name 'cue': given to two input"),
    (lambda s: s.with_input_region("ctx", 1),
     r"duplicate region name 'ctx': given to a recurrent and an input region"),
    (lambda s: s.with_recurrent_region("cue", 1),
     r"duplicate region name 'cue': given to a recurrent and an input region"),
    (lambda s: s.with_recurrent_connection("ctx", "thal", sparsity=0.5),
     r"recurrent connection 'ctx' -> 'thal': duplicate connection"),
    (lambda s: s.with_input_connection("cue", "ctx"),
     r"input connection 'cue' -> 'ctx': duplicate connection"),
    # num_units
    (lambda s: s.with_recurrent_region("gpe", 0),
     r"recurrent region 'gpe': num_units must be an integer >= 1, got 0"),
    (lambda s: s.with_recurrent_region("gpe", -3), r"num_units must be an integer >= 1, got -3"),
    (lambda s: s.with_recurrent_region("gpe", 2.5), r"num_units must be an integer >= 1, got 2\.5"),
    (lambda s: s.with_recurrent_region("gpe", "4"), r"num_units must be an integer >= 1, got '4'"),
    (lambda s: s.with_recurrent_region("gpe", True), r"num_units must be an integer >= 1, got True"),
    (lambda s: s.with_input_region("go", 0),
     r"input region 'go': num_units must be an integer >= 1, got 0"),
    # sparsity
    (lambda s: s.with_recurrent_connection("thal", "ctx", sparsity=1.5),
     r"'thal' -> 'ctx': sparsity must be between 0 and 1 .*got 1\.5"),
    (lambda s: s.with_recurrent_connection("thal", "ctx", sparsity=-0.1),
     r"sparsity must be between 0 and 1 .*got -0\.1"),
    (lambda s: s.with_input_connection("cue", "thal", sparsity=2),
     r"'cue' -> 'thal': sparsity must be between 0 and 1 .*got 2"),
    (lambda s: s.with_recurrent_connection("thal", "ctx", sparsity=float("nan")),
     r"sparsity must be finite, got nan"),
    # signs, with the allowed ones listed
    (lambda s: s.with_recurrent_region("gpe", 2, sign="inhibitory"),
     r"recurrent region 'gpe': unknown sign 'inhibitory'; allowed signs: "
     r"'pos', 'exc', 'neg', 'inhib'"),
    (lambda s: s.with_input_region("go", 1, sign="+"),
     r"input region 'go': unknown sign '\+'; allowed signs: 'pos', 'exc', 'neg', 'inhib'"),
    # connections into an input region
    (lambda s: s.with_recurrent_connection("ctx", "cue"),
     r"'ctx' -> 'cue': 'cue' is an input region and cannot receive connections"),
    (lambda s: s.with_input_connection("cue", "cue"),
     r"'cue' -> 'cue': 'cue' is an input region and cannot receive connections"),
    # per-unit values of the wrong length
    (lambda s: s.with_recurrent_region("gpe", 2, base_firing=[0.1, 0.2, 0.3]),
     r"base_firing must be one number or 2 numbers \(one per unit\), got 3 numbers"),
]


@pytest.mark.parametrize("call, message", REJECTED_CALLS)
def test_a_rejected_with_call_names_the_culprit_and_leaves_the_spec(call, message):
    spec = base_spec()
    snapshot = spec.to_dict()
    with pytest.raises(Error, match=message):
        call(spec)
    assert spec.to_dict() == snapshot
    assert spec == base_spec()


def test_unknown_names_in_lookups_list_the_known_ones():
    spec = base_spec()
    with pytest.raises(Error, match=r"unknown region 'gpe'; known regions: 'ctx', 'thal', 'cue'"):
        spec.region("gpe")
    with pytest.raises(Error, match=r"unknown region 'gpe'; known regions and parents: "
                                    r"'ctx', 'thal', 'cortex'"):
        spec.expand("gpe")
    with pytest.raises(Error, match=r"'cue' is an input region, expected a recurrent region"):
        spec.expand("cue")
    connectivity = mc.build_connectivity(spec, seed=0)
    with pytest.raises(Error, match=r"unknown region 'thl'; known regions: .*'thal'"
                                    r".*did you mean 'thal'"):
        connectivity.region_slice("thl")
    with pytest.raises(Error, match=r"unknown parent region 'cortx'; known parents: 'cortex'"):
        connectivity.children("cortx")
    with pytest.raises(Error, match=r"'cortex' is a parent region.*its children: 'ctx'"):
        connectivity.region_slice("cortex")


# -- dynamics settings -----------------------------------------------------------


@pytest.mark.parametrize("settings, message", [
    (dict(activation="gelu"), r"unknown activation 'gelu'; allowed activations: "
                              r"'relu', 'tanh', 'sigmoid', 'softplus', 'linear'"),
    (dict(kind="lstm"), r"unknown dynamics kind 'lstm'; allowed kinds: 'leaky', 'elman'"),
    (dict(dt=0), r"dt must be a finite number > 0, got 0"),
    (dict(dt=-1.0), r"dt must be a finite number > 0, got -1\.0"),
    (dict(tau=0.0), r"tau must be a finite number > 0, got 0\.0"),
    (dict(tau=-100), r"tau must be a finite number > 0, got -100"),
    (dict(tau=float("inf")), r"tau must be a finite number > 0, got inf"),
    (dict(noise_level_act=-0.1), r"noise_level_act must be a finite number >= 0, got -0\.1"),
    (dict(noise_level_inp=-1), r"noise_level_inp must be a finite number >= 0, got -1"),
    (dict(spectral_radius=0.0), r"spectral_radius must be a finite number > 0, got 0\.0"),
    (dict(batch_first=1), r"batch_first must be True or False, got 1"),
])
def test_bad_dynamics_settings_are_rejected(settings, message):
    with pytest.raises(Error, match=message):
        mc.Dynamics(**settings)


def test_the_reference_rejects_an_unknown_activation_name():
    with pytest.raises(Error, match=r"unknown activation 'elu'; allowed activations: 'relu'"):
        reference.activation_function("elu")


# -- forward-call shapes -----------------------------------------------------------

H, I = 5, 2  # base_spec's sizes


def small_params():
    return dict(mc.Checkpoint.initialise(base_spec(), seed=0).params)


@pytest.mark.parametrize("kwargs, message", [
    (dict(inp=np.zeros(4)),
     r"inp: expected a 3-D tensor \[B, T, I\] \(or 2-D \[T, I\] unbatched\), got 1-D shape \(4,\)"),
    (dict(inp=np.zeros((1, 2, 3, I))), r"inp: expected a 3-D tensor .*got 4-D shape \(1, 2, 3, 2\)"),
    (dict(inp=np.zeros((3, 4, 7))),
     r"inp: expected shape \(3, 4, 2\) = \[B, T, I\] with I = 2 .*got \(3, 4, 7\)"),
    (dict(inp=np.zeros((3, 4, I)), x0=np.zeros((3, 4))),
     r"x0: expected shape \(3, 5\) = \[B, H\] with H = 5, got \(3, 4\)"),
    (dict(inp=np.zeros((3, 4, I)), x0=np.zeros((2, H))),
     r"x0: expected shape \(3, 5\) = \[B, H\] with H = 5, got \(2, 5\)"),
    (dict(inp=np.zeros((3, 4, I)), h0=np.zeros((3, 6))),
     r"h0: expected shape \(3, 5\) = \[B, H\] with H = 5, got \(3, 6\)"),
    (dict(inp=np.zeros((3, 4, I)), stim_input=np.zeros((3, 4, I))),
     r"stim_input: expected shape \(3, 4, 5\) = \[B, T, H\] with H = 5 .*got \(3, 4, 2\)"),
    (dict(inp=np.zeros((3, 4, I)), eps_x=np.zeros((3, 5, H))),
     r"eps_x: expected shape \(3, 4, 5\) = \[B, T, H\] .*got \(3, 5, 5\)"),
    (dict(inp=np.zeros((3, 4, I)), eps_u=np.zeros((3, 4, H))),
     r"eps_u: expected shape \(3, 4, 2\) = \[B, T, I\] .*got \(3, 4, 5\)"),
    (dict(inp=np.zeros((3, 4, I)), W_rec=np.zeros((H, H + 1))),
     r"W_rec: expected shape \(5, 5\) = \[H, H\], got \(5, 6\)"),
    (dict(inp=np.zeros((4, I)), x0=np.zeros((1, H))),
     r"x0: expected shape \(5,\) = \[H\] with H = 5, got \(1, 5\)"),
    (dict(inp=None), r"inp: expected an input of feature size I = 2, got None"),
])
def test_the_reference_rejects_wrong_input_shapes(kwargs, message):
    kwargs = {"x0": np.zeros((3, H)), **kwargs}
    inp = kwargs.pop("inp")
    with pytest.raises(Error, match=message):
        reference.simulate(small_params(), mc.Dynamics(), inp, **kwargs)


def test_time_major_layout_is_named_in_the_message():
    with pytest.raises(Error, match=r"inp: expected shape \(4, 3, 2\) = \[T, B, I\] "
                                    r"with I = 2 \(batch_first=False\), got \(4, 3, 5\)"):
        mc.check_call_shapes(hidden_size=H, input_size=I, batch_first=False,
                             inp=(4, 3, 5), state=(3, H))


def test_the_initial_state_is_required():
    params = small_params()
    with pytest.raises(Error, match=r"x0: the leaky model needs an initial pre-activation "
                                    r"\[B, H\], got None"):
        reference.simulate(params, mc.Dynamics(), np.zeros((1, 2, I)))
    with pytest.raises(Error, match=r"h0: the Elman model needs an initial state \[B, H\], got None"):
        reference.simulate(params, mc.Dynamics(kind="elman"), np.zeros((1, 2, I)))


# -- config files ------------------------------------------------------------------


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"recurrent_regions": [{"name": "a", "num_units": 2,}]}')
    with pytest.raises(Error, match=rf"config file '{re.escape(str(path))}' is not valid JSON: "
                                    r".*line 1, column"):
        mc.load_config(path)


def test_a_missing_config_file_is_named(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(Error, match=rf"config file '{re.escape(str(path))}' does not exist"):
        mc.load_config(path)


@pytest.mark.parametrize("config, message", [
    ({"recurent_regions": []},
     r"config\.recurent_regions: unknown key 'recurent_regions'; valid keys: .*"
     r"\(did you mean 'recurrent_regions'\?\)"),
    ({"recurrent_regions": [{"name": "a", "num_units": 2},
                            {"name": "b", "num_unit": 2}]},
     r"config\.recurrent_regions\[1\]\.num_unit: unknown key 'num_unit'.*"
     r"\(did you mean 'num_units'\?\)"),
    ({"input_regions": [{"name": "u", "num_units": 1, "sing": "pos"}]},
     r"config\.input_regions\[0\]\.sing: unknown key 'sing'.*\(did you mean 'sign'\?\)"),
    ({"recurrent_regions": [{"name": "a", "num_units": 2}],
      "recurrent_connections": [{"src_region": "a", "dst_region": "a", "sparcity": 0.5}]},
     r"config\.recurrent_connections\[0\]\.sparcity: unknown key 'sparcity'.*"
     r"\(did you mean 'sparsity'\?\)"),
    ({"recurrent_regions": [{"name": "a", "num_units": 2}],
      "input_regions": [{"name": "u", "num_units": 1}],
      "input_connections": [{"src_regoin": "u", "dst_region": "a"}]},
     r"config\.input_connections\[0\]\.src_regoin: unknown key 'src_regoin'; valid keys: "
     r"'src_region', 'dst_region', 'sparsity', 'zero_connection', 'density', 'mask', "
     r"'trainable', 'routes' \(did you mean 'src_region'\?\)"),
    ({"recurrent_regions": [{"name": "a"}]},
     r"config\.recurrent_regions\[0\]: missing required key 'num_units'"),
    ({"recurrent_regions": [{"name": "a", "num_units": 2}],
      "recurrent_connections": [{"dst_region": "a"}]},
     r"config\.recurrent_connections\[0\]: missing required key 'src_region'"),
    ({"recurrent_regions": "a"}, r"config\.recurrent_regions: expected a list, got str"),
    ({"recurrent_regions": [3]}, r"config\.recurrent_regions\[0\]: expected an object, got int 3"),
    ({"recurrent_regions": [{"name": "a", "num_units": 0}]},
     r"config\.recurrent_regions\[0\]: recurrent region 'a': num_units must be an integer >= 1"),
])
def test_config_errors_name_the_key_path(config, message):
    with pytest.raises(Error, match=message):
        mc.load_config(config)


def test_config_file_errors_name_the_file_and_the_key_path(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"recurrent_regions": [{"name": "a", "num_units": 2,
                                                       "parent": "grp"}]}))
    with pytest.raises(Error, match=rf"{re.escape(str(path))}\.recurrent_regions\[0\]\.parent: "
                                    r"unknown key 'parent'.*did you mean 'parent_region'"):
        mc.load_config(path)


def test_anything_but_a_path_dict_or_spec_is_rejected():
    with pytest.raises(Error, match=r"expected a JSON file path, a dict or a NetworkSpec, got list"):
        mc.load_config([{"name": "a"}])


@given(invalid_configs())
def test_drawn_invalid_configs_are_rejected_with_their_message(case):
    config, message = case
    with pytest.raises(Error, match=message):
        mc.load_config(config)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "drawn.json"
        path.write_text(json.dumps(config))
        with pytest.raises(Error, match=re.escape(str(path)) + ".*" + message):
            mc.load_config(path)


# -- checkpoints -------------------------------------------------------------------


def test_a_checkpoint_without_a_required_array_is_rejected():
    params = small_params()
    del params["W_inp_mask"]
    with pytest.raises(Error, match=r"Checkpoint\.params: missing 'W_inp_mask'; expected at least "
                                    r"W_rec, W_rec_mask"):
        mc.Checkpoint(base_spec(), mc.Dynamics(), params)


def test_a_checkpoint_with_a_wrongly_shaped_array_is_rejected():
    params = {**small_params(), "W_rec": np.zeros((H, H - 1))}
    with pytest.raises(Error, match=r"Checkpoint\.params\['W_rec'\]: expected shape \(5, 5\) "
                                    r"for this network, got \(5, 4\)"):
        mc.Checkpoint(base_spec(), mc.Dynamics(), params)


def test_a_checkpoint_needs_a_spec_and_dynamics():
    with pytest.raises(Error, match=r"Checkpoint\.spec: expected a NetworkSpec, got dict"):
        mc.Checkpoint(base_spec().to_dict(), mc.Dynamics(), small_params())
    with pytest.raises(Error, match=r"Checkpoint\.dynamics: expected a Dynamics, got dict"):
        mc.Checkpoint(base_spec(), {}, small_params())


def saved_arrays(tmp_path):
    path = tmp_path / "good.npz"
    mc.Checkpoint.initialise(base_spec(), seed=0).save(path)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_loading_a_file_with_a_missing_array_is_rejected(tmp_path):
    arrays = saved_arrays(tmp_path)
    del arrays["base_firing"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(Error, match=r"missing 'base_firing'"):
        mc.Checkpoint.load(tmp_path / "partial.npz")


def test_loading_a_file_with_a_wrongly_shaped_array_is_rejected(tmp_path):
    arrays = {**saved_arrays(tmp_path), "W_inp": np.zeros((H, I + 1))}
    np.savez(tmp_path / "reshaped.npz", **arrays)
    with pytest.raises(Error, match=r"\['W_inp'\]: expected shape \(5, 2\) .*got \(5, 3\)"):
        mc.Checkpoint.load(tmp_path / "reshaped.npz")


def test_loading_something_that_is_not_a_checkpoint_names_the_file(tmp_path):
    no_meta = tmp_path / "plain.npz"
    np.savez(no_meta, W_rec=np.zeros((2, 2)))
    with pytest.raises(Error, match=rf"checkpoint file '{re.escape(str(no_meta))}': missing "
                                    r"__format_version__.*expected a file written by Checkpoint\.save"):
        mc.Checkpoint.load(no_meta)
    text = tmp_path / "model.npz.txt"
    text.write_text("not a zip file")
    with pytest.raises(Error, match=rf"checkpoint file '{re.escape(str(text))}' is not an mrnn "
                                    r"checkpoint"):
        mc.Checkpoint.load(text)
    with pytest.raises(Error, match=r"checkpoint file '.*missing\.npz' does not exist"):
        mc.Checkpoint.load(tmp_path / "missing.npz")


def test_a_checkpoint_from_a_newer_format_is_rejected(tmp_path):
    arrays = {**saved_arrays(tmp_path), "__format_version__": np.array(mc.FORMAT_VERSION + 1)}
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(Error, match=rf"format version {mc.FORMAT_VERSION + 1} is newer than "
                                    rf"this mrnn reads \(expected <= {mc.FORMAT_VERSION}\)"):
        mc.Checkpoint.load(tmp_path / "future.npz")


def test_missing_input_is_rejected_when_the_network_has_inputs():
    import numpy as np

    from mrnn_core import Checkpoint, Dynamics, MRNNConfigError, NetworkSpec, reference

    spec = (NetworkSpec().with_recurrent_region("a", 2).with_input_region("u", 3)
            .with_input_connection("u", "a"))
    ckpt = Checkpoint.initialise(spec, Dynamics(), seed=0)
    with pytest.raises(MRNNConfigError, match=r"inp: expected an input of feature size I = 3, got None"):
        reference.simulate(ckpt.params, ckpt.dynamics, None, np.zeros((1, 2)),
                           stim_input=np.zeros((1, 4, 2)))

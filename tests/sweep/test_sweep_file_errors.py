"""A bad sweep file fails at once, before Ray starts any trial, with one error naming the place
in the file (``search.training.lr: ...``) and what was expected."""

import json
import os

import pytest

import ray  # noqa: E402,F401  (the sweep extra: CI installs it, so a missing Ray fails here)

import mrnn_sweep  # noqa: E402
from mrnn_core import MRNNConfigError  # noqa: E402

from .sweeps import small_sweep  # noqa: E402

# Starting Ray forks helper processes (fork + exec). When an earlier test in the
# session has initialised JAX, JAX's at-fork hook warns that forking a
# multithreaded process may deadlock; that concerns a fork without exec, not
# Ray's, so here that one warning is not an error.
pytestmark = pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning")


def with_search(**search):
    return small_sweep(search=search)


@pytest.mark.parametrize("search, match", [
    ({"training": {"lrr": {"grid": [1e-3]}}},
     r"search\.training\.lrr: unknown setting 'lrr'; known: .*\(did you mean 'lr'\?\)"),
    ({"network": {"dynamics": {"tua": {"grid": [50.0]}}}},
     r"search\.network\.dynamics\.tua: unknown setting 'tua'.*did you mean 'tau'"),
    ({"trainig": {"lr": {"grid": [1e-3]}}},
     r"search\.trainig\.lr: unknown setting 'trainig'.*did you mean 'training'"),
    ({"network": {"config": {"recurrent_connections": {"7": {"sparsity": {"grid": [0.5]}}}}}},
     r"search\.network\.config\.recurrent_connections\.7: expected a list index 0\.\.2, got '7'"),
    ({"network": {"config": {"recurrent_regions": {"0": {"num_unit": {"grid": [4]}}}}}},
     r"search\.network\.config\.recurrent_regions\.0\.num_unit: grid value 0 \(4\): .*unknown key "
     r"'num_unit'.*did you mean 'num_units'"),
    ({"task": {"params": {"n_bit": {"grid": [2]}}}},
     r"search\.task\.params\.n_bit: grid value 0 \(2\): task.*n_bit"),
])
def test_unknown_hyperparameter_is_named_with_its_path(search, match):
    with pytest.raises(MRNNConfigError, match=match):
        mrnn_sweep.load_sweep(with_search(**search))


@pytest.mark.parametrize("domain, match", [
    ({"loguniform": [0.0, 1e-2]}, r"search\.training\.lr\.loguniform: expected 0 < low < high, got \[0\.0, 0\.01\]"),
    ({"uniform": [1e-2, 1e-3]}, r"search\.training\.lr\.uniform: expected finite numbers \[low, high\] with low < high"),
    ({"grid": []}, r"search\.training\.lr\.grid: expected a non-empty list of values, got \[\]"),
    ({"gird": [1e-3]}, r"search\.training\.lr: unknown search kind 'gird'.*did you mean 'grid'"),
    ({"grid": [1e-3], "choice": [1e-2]}, r"search\.training\.lr: expected a table with exactly one of"),
    ({"grid": [1e-3, -1.0]}, r"search\.training\.lr: grid value 1 \(-1\.0\): training\.lr: expected a finite number > 0, got -1\.0"),
    ({"choice": [1e-3, "fast"]}, r"search\.training\.lr: choice value 1 \('fast'\): training\.lr: expected a finite number > 0"),
])
def test_invalid_value_in_the_search_space(domain, match):
    with pytest.raises(MRNNConfigError, match=match):
        mrnn_sweep.load_sweep(with_search(training={"lr": domain}))


def test_a_range_is_checked_at_both_ends():
    with pytest.raises(MRNNConfigError,
                       match=r"search\.task\.params\.p_pulse: uniform high end \(2\.0\): task: .*p_pulse"):
        mrnn_sweep.load_sweep(with_search(task={"params": {"p_pulse": {"uniform": [0.0, 2.0]}}}))
    with pytest.raises(MRNNConfigError,
                       match=r"search\.network\.dynamics\.tau: randint low end \(0\): network\.dynamics: tau"):
        mrnn_sweep.load_sweep(with_search(network={"dynamics": {"tau": {"randint": [0, 100]}}}))


def test_network_values_are_checked_by_the_network_validation():
    with pytest.raises(MRNNConfigError,
                       match=r"search\.network\.config\.recurrent_connections\.0\.sparsity: grid value 1 "
                             r"\(1\.5\): network\.config\.recurrent_connections\[0\].*sparsity"):
        mrnn_sweep.load_sweep(with_search(
            network={"config": {"recurrent_connections": {"0": {"sparsity": {"grid": [0.2, 1.5]}}}}}))
    with pytest.raises(MRNNConfigError,
                       match=r"search\.network\.dynamics\.activation: choice value 1 \('tahn'\): "
                             r"network\.dynamics: .*tahn"):
        mrnn_sweep.load_sweep(with_search(
            network={"dynamics": {"activation": {"choice": ["tanh", "tahn"]}}}))


def test_base_network_config_that_fails_validation():
    sweep = small_sweep()
    sweep["network"]["config"]["recurrent_connections"][1]["dst_region"] = "inhib"
    with pytest.raises(MRNNConfigError, match=r"network\.config.*'inhib'"):
        mrnn_sweep.load_sweep(sweep)
    sweep = small_sweep()
    sweep["network"]["config"]["input_regions"][0]["num_units"] = 3
    with pytest.raises(MRNNConfigError,
                       match=r"network\.config: the network has 3 input channels but task 'flip_flop' "
                             r"gives 2"):
        mrnn_sweep.load_sweep(sweep)


@pytest.mark.parametrize("change, match", [
    ({"backend": "pytorch"}, r"backend: expected one of 'torch', 'jax', got 'pytorch'.*did you mean 'torch'"),
    ({"backend": None}, r"backend: expected one of 'torch', 'jax', got None"),
    ({"searches": 3}, r"searches: unknown top-level key 'searches'.*did you mean 'search'"),
    ({"training": {"steps": 10}}, r"training: missing required key 'batch_size'"),
    ({"training": {"steps": 0, "batch_size": 2}}, r"training\.steps: expected an integer >= 1, got 0"),
    ({"training": {"steps": 5, "batch_size": 2, "optimiser": "adam"}},
     r"training\.optimiser: unknown key 'optimiser'.*did you mean 'optimizer'"),
    ({"training": {"steps": 5, "batch_size": 2, "optimizer": "adagrad"}},
     r"training\.optimizer: expected one of 'adam', 'adamw', 'sgd', 'rmsprop', got 'adagrad'"),
    ({"resources": {"cpus_per_trial": 0}}, r"resources: a trial needs cpus_per_trial or gpus_per_trial > 0"),
    ({"metric": "accuracy"}, r"metric: expected one of 'loss', 'best_loss', got 'accuracy'"),
    ({"task": {"name": "flipflop"}}, r"task: make_task: unknown task 'flipflop'.*did you mean 'flip_flop'"),
    ({"search_algorithm": {"name": "optuan"}},
     r"search_algorithm\.name: unknown Ray Tune search algorithm 'optuan'.*did you mean 'optuna'"),
    ({"scheduler": "ashaa"}, r"scheduler\.name: unknown Ray Tune scheduler 'ashaa'"),
])
def test_bad_settings_outside_the_search(change, match):
    sweep = small_sweep()
    for key, value in change.items():
        if value is None:
            sweep.pop(key)
        else:
            sweep[key] = value
    with pytest.raises(MRNNConfigError, match=match):
        mrnn_sweep.load_sweep(sweep)


def test_a_grid_needs_the_default_search_algorithm():
    sweep = with_search(training={"lr": {"grid": [1e-3, 1e-2]}})
    sweep["search_algorithm"] = {"name": "hyperopt"}
    with pytest.raises(MRNNConfigError,
                       match=r"search\.training\.lr: a grid works only with the default search "
                             r"algorithm; search_algorithm 'hyperopt' needs choice"):
        mrnn_sweep.load_sweep(sweep)


def test_run_sweep_fails_before_ray_starts_or_a_folder_is_made(tmp_path):
    import ray

    assert not ray.is_initialized()
    with pytest.raises(MRNNConfigError, match=r"search\.training\.lr\.loguniform"):
        mrnn_sweep.run_sweep(with_search(training={"lr": {"loguniform": [-1.0, 1.0]}}),
                             storage_path=str(tmp_path / "sweeps"))
    assert not ray.is_initialized()
    assert not os.path.exists(tmp_path / "sweeps")


def test_toml_file_with_a_network_config_path(tmp_path):
    (tmp_path / "net.json").write_text(json.dumps(small_sweep()["network"]["config"]))
    (tmp_path / "s.toml").write_text(
        'backend = "jax"\n[network]\nconfig = "net.json"\nreadout = { regions = ["exc"] }\n'
        '[task]\nname = "flip_flop"\nparams = { n_bits = 2, steps = 10 }\n'
        '[training]\nsteps = 4\nbatch_size = 2\n'
        '[search.training]\nlr = { loguniform = [1e-4, 1e-2] }\n'
        '[search.network.config.recurrent_connections.0]\nsparsity = { choice = [0.25, 0.5] }\n')
    sweep = mrnn_sweep.load_sweep(str(tmp_path / "s.toml"))
    assert sweep.name == "s" and sweep.backend == "jax"
    assert sweep.base["network"]["config"]["recurrent_regions"][0]["name"] == "exc"
    assert {p: (d.kind, d.values) for p, d in sweep.search.items()} == {
        "training.lr": ("loguniform", (1e-4, 1e-2)),
        "network.config.recurrent_connections.0.sparsity": ("choice", (0.25, 0.5))}
    trial = sweep.trial_settings({"network.config.recurrent_connections.0.sparsity": 0.25})
    assert trial["network"]["config"]["recurrent_connections"][0]["sparsity"] == 0.25
    assert sweep.base["network"]["config"]["recurrent_connections"][0]["sparsity"] == 0.5

    (tmp_path / "bad.toml").write_text((tmp_path / "s.toml").read_text().replace(
        'config = "net.json"', 'config = "nets.json"'))
    with pytest.raises(MRNNConfigError, match=r"network\.config: file .*nets\.json' does not exist"):
        mrnn_sweep.load_sweep(str(tmp_path / "bad.toml"))


def test_json_sweep_file_with_a_key_given_twice(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"backend": "torch", "backend": "jax"}')
    with pytest.raises(MRNNConfigError, match=r"s\.json'.*key 'backend' is given twice"):
        mrnn_sweep.load_sweep(str(path))


def test_a_search_algorithm_whose_package_is_missing_is_named():
    sweep = with_search(training={"lr": {"loguniform": [1e-4, 1e-2]}})
    sweep["search_algorithm"] = {"name": "hyperopt"}
    try:
        import hyperopt  # noqa: F401
    except ImportError:
        with pytest.raises(MRNNConfigError,
                           match=r"search_algorithm\.name: 'hyperopt' needs a package that is not "
                                 r"installed"):
            mrnn_sweep.load_sweep(sweep)
    else:
        assert mrnn_sweep.load_sweep(sweep).search_algorithm == {"name": "hyperopt"}

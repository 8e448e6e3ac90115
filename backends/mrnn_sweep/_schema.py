"""Reading a sweep file and checking all of it before any trial starts.

A sweep file (TOML or JSON) has these sections; only the marked keys are
required, everything else has the default shown:

    name = "flipflop_grid"          # the experiment's folder name (default: the file's stem)
    backend = "torch"               # required: "torch" or "jax"
    metric = "loss"                 # what Tune ranks trials by: "loss" (last reported) or "best_loss"
    num_samples = 1                 # repeats of the grid (random domains are drawn per trial)

    [network]
    config = "net.json"             # required: an mRNNTorch JSON path (relative to this file) or a table
    seed = 0                        # masks and initial weights (mrnn_core.Checkpoint.initialise);
                                    # the readout's initial weights are drawn from seed + 1
    dynamics = { kind = "leaky", activation = "tanh", tau = 100.0 }   # any mrnn_core.Dynamics field
    readout = { regions = ["alm"] } # default: every recurrent region; out_features from the task

    [task]
    name = "flip_flop"              # required: a name for mrnn_core.tasks.make_task
    params = { steps = 50 }

    [training]                      # keywords of mrnn_torch.train.train / mrnn_jax.train.train
    steps = 500                     # required
    batch_size = 16                 # required
    lr = 1e-3
    optimizer = "adam"              # "adam", "adamw", "sgd" or "rmsprop"
    checkpoint_every = 100          # each checkpoint is reported to Tune with its loss
    keep = 3
    seed = 0
    loss = "mse"                    # default: the task's own loss
    noise = true                    # run the network with its noise levels

    [search.training]               # the search space: any setting above, by its path
    lr = { loguniform = [1e-4, 1e-2] }

    [search_algorithm]              # optional: a named Ray Tune searcher and its keywords
    name = "random"
    [scheduler]                     # optional: a named Ray Tune scheduler and its keywords
    name = "asha"
    [resources]
    cpus_per_trial = 1
    gpus_per_trial = 0
    max_failures = 2                # restarts of a trial whose worker died, from its last checkpoint
    max_concurrent_trials = 0       # 0: as many as the resources allow

Every error names its place in the file (``search.training.lr: ...``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass

from mrnn_core.errors import MRNNConfigError, closest

from ._space import KINDS, Domain, parse_domain

BACKENDS = ("torch", "jax")
METRICS = ("loss", "best_loss")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
TOP_KEYS = ("name", "backend", "metric", "num_samples", "network", "task", "training",
            "search", "search_algorithm", "scheduler", "resources")
NETWORK_KEYS = ("config", "seed", "dynamics", "readout")
READOUT_KEYS = ("regions", "dale", "bias")
TASK_KEYS = ("name", "params")
TRAINING_KEYS = ("steps", "batch_size", "lr", "optimizer", "checkpoint_every", "keep", "seed",
                 "loss", "noise")
RESOURCE_KEYS = ("cpus_per_trial", "gpus_per_trial", "max_failures", "max_concurrent_trials")
TRAINING_DEFAULTS = {"lr": 1e-3, "optimizer": "adam", "checkpoint_every": 100, "keep": 3,
                     "seed": 0, "loss": None, "noise": True}
RESOURCE_DEFAULTS = {"cpus_per_trial": 1, "gpus_per_trial": 0, "max_failures": 2,
                     "max_concurrent_trials": 0}


def _dynamics_fields() -> tuple[str, ...]:
    from mrnn_core import Dynamics

    return tuple(f.name for f in dataclasses.fields(Dynamics))


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the base settings of every trial and what varies.

    **Fields:**

    - `name`: the experiment name (its folder under the storage path).
    - `base`: the settings every trial starts from, as plain data:
      ``{"backend", "network": {"config": {...}, "seed", "dynamics", "readout"},
      "task": {"name", "params"}, "training": {...}}``; ``network.config`` is
      always an inline mRNNTorch dict (a path is read once, here), so trials
      on other machines need no file.
    - `search`: ``{"training.lr": Domain, ...}`` by dotted path.
    - `metric`: ``"loss"`` or ``"best_loss"`` (always minimised).
    - `num_samples`, `resources`, `search_algorithm`, `scheduler`: as in the file.
    - `source`: the file it was read from, or ``None``.
    """

    name: str
    base: dict
    search: dict
    metric: str = "loss"
    num_samples: int = 1
    resources: dict = dataclasses.field(default_factory=lambda: dict(RESOURCE_DEFAULTS))
    search_algorithm: dict | None = None
    scheduler: dict | None = None
    source: str | None = None

    @property
    def backend(self) -> str:
        return self.base["backend"]

    def trial_settings(self, values: dict) -> dict:
        """The base settings with ``{"training.lr": 0.01, ...}`` written in (a fresh copy)."""
        return with_values(self.base, values)


# -- reading ---------------------------------------------------------------------------------


def _reject_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise MRNNConfigError(f"key {key!r} is given twice in one object")
        out[key] = value
    return out


def _read_file(path: str) -> dict:
    try:
        if path.endswith(".toml"):
            import tomllib

            with open(path, "rb") as f:
                return tomllib.load(f)
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=_reject_duplicates)
    except FileNotFoundError:
        raise MRNNConfigError(f"sweep file {path!r} does not exist") from None
    except MRNNConfigError as err:
        raise MRNNConfigError(f"sweep file {path!r}: {err}") from None
    except json.JSONDecodeError as err:
        raise MRNNConfigError(
            f"sweep file {path!r} is not valid JSON: {err.msg} at line {err.lineno}, "
            f"column {err.colno}") from None
    except ValueError as err:  # tomllib.TOMLDecodeError
        raise MRNNConfigError(f"sweep file {path!r} is not valid TOML: {err}") from None


def _read_network_config(value, folder: str) -> dict:
    if isinstance(value, dict):
        return copy.deepcopy(value)
    if not isinstance(value, str):
        raise MRNNConfigError(
            f"network.config: expected a JSON file path or a table in mRNNTorch's format, "
            f"got {value!r}")
    path = value if os.path.isabs(value) else os.path.join(folder, value)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=_reject_duplicates)
    except FileNotFoundError:
        raise MRNNConfigError(f"network.config: file {path!r} does not exist") from None
    except json.JSONDecodeError as err:
        raise MRNNConfigError(
            f"network.config: {path!r} is not valid JSON: {err.msg} at line {err.lineno}, "
            f"column {err.colno}") from None
    except MRNNConfigError as err:
        raise MRNNConfigError(f"network.config: {path!r}: {err}") from None


def _table(raw: dict, key: str, allowed, where: str) -> dict:
    value = raw.get(key, {})
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise MRNNConfigError(f"{where}: expected a table, got {value!r}")
    for name in value:
        if allowed is not None and name not in allowed:
            raise MRNNConfigError(
                f"{where}.{name}: unknown key {name!r}; valid keys: "
                + ", ".join(repr(k) for k in allowed) + closest(name, allowed))
    return dict(value)


def _integer(value, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise MRNNConfigError(f"{where}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _named(raw: dict, key: str) -> dict | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise MRNNConfigError(
            f"{key}: expected a table with a string 'name' (and that algorithm's keywords), "
            f"got {value!r}")
    return dict(value)


def load_sweep(source, *, name: str | None = None) -> Sweep:
    """Read and check a sweep: a TOML / JSON file path, a dict, or a :class:`Sweep`.

    Everything is checked here, before any trial starts: the keys, the base
    network (built once with :meth:`mrnn_core.Checkpoint.initialise`), the
    task, the training settings, and every value of the search space (each
    listed value, and both ends of a range, substituted into the base and
    built the same way).

    **Arguments:**

    - `source`: the sweep file (``.toml``, else JSON), a dict with the same
      content, or a :class:`Sweep` (returned as is).
    - `name`: overrides the file's ``name``.

    **Returns:** the :class:`Sweep`.

    **Raises:** :class:`mrnn_core.MRNNConfigError` naming the path in the
    sweep file (``search.training.lr: ...``).
    """
    if isinstance(source, Sweep):
        return source if name is None else dataclasses.replace(source, name=name)
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        raw, folder = _read_file(path), os.path.dirname(path)
        default_name = os.path.splitext(os.path.basename(path))[0]
    elif isinstance(source, dict):
        raw, folder, default_name, path = copy.deepcopy(source), os.getcwd(), "sweep", None
    else:
        raise MRNNConfigError(
            f"sweep: expected a TOML/JSON file path or a dict, got {type(source).__name__}")
    if not isinstance(raw, dict):
        raise MRNNConfigError(f"sweep: expected a table of sections, got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_KEYS:
            raise MRNNConfigError(
                f"{key}: unknown top-level key {key!r}; valid keys: "
                + ", ".join(repr(k) for k in TOP_KEYS) + closest(key, TOP_KEYS))
    sweep_name = name if name is not None else raw.get("name", default_name)
    if not isinstance(sweep_name, str) or not sweep_name or os.sep in sweep_name:
        raise MRNNConfigError(f"name: expected a non-empty name without '/', got {sweep_name!r}")

    backend = raw.get("backend")
    if backend not in BACKENDS:
        raise MRNNConfigError(
            f"backend: expected one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
            + closest(str(backend), BACKENDS))
    metric = raw.get("metric", "loss")
    if metric not in METRICS:
        raise MRNNConfigError(
            f"metric: expected one of {', '.join(map(repr, METRICS))}, got {metric!r}"
            + closest(str(metric), METRICS))
    num_samples = _integer(raw.get("num_samples", 1), "num_samples", 1)

    network = _table(raw, "network", NETWORK_KEYS, "network")
    if "config" not in network:
        raise MRNNConfigError("network: missing required key 'config' (a JSON path or a table)")
    network["config"] = _read_network_config(network["config"], folder)
    network.setdefault("seed", 0)
    network["dynamics"] = _table(network, "dynamics", _dynamics_fields(), "network.dynamics")
    readout = network.get("readout", {})
    if readout is not False:
        readout = _table(network, "readout", READOUT_KEYS, "network.readout")
    network["readout"] = readout

    task = _table(raw, "task", TASK_KEYS, "task")
    if "name" not in task:
        raise MRNNConfigError("task: missing required key 'name' (e.g. \"flip_flop\")")
    task["params"] = _table(task, "params", None, "task.params")

    training = _table(raw, "training", TRAINING_KEYS, "training")
    for key in ("steps", "batch_size"):
        if key not in training:
            raise MRNNConfigError(f"training: missing required key {key!r}")
    training = {**TRAINING_DEFAULTS, **training}

    resources = {**RESOURCE_DEFAULTS, **_table(raw, "resources", RESOURCE_KEYS, "resources")}
    for key in RESOURCE_KEYS:
        value = resources[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value < 0 or (
                key != "gpus_per_trial" and not float(value).is_integer()):
            raise MRNNConfigError(
                f"resources.{key}: expected a number >= 0"
                + ("" if key == "gpus_per_trial" else " (whole)") + f", got {value!r}")
    if resources["cpus_per_trial"] == 0 and resources["gpus_per_trial"] == 0:
        raise MRNNConfigError("resources: a trial needs cpus_per_trial or gpus_per_trial > 0")

    base = {"backend": backend, "network": network, "task": task, "training": training}
    check_settings(base)
    search = {}
    _flatten_search(_table(raw, "search", None, "search"), (), search)
    for path, domain in search.items():
        _check_search_value(base, path, domain)
    search_algorithm, scheduler = _named(raw, "search_algorithm"), _named(raw, "scheduler")
    _check_algorithms(search_algorithm, scheduler, search, metric)
    return Sweep(sweep_name, base, search, metric, num_samples, resources, search_algorithm,
                 scheduler, path)


# -- the search space --------------------------------------------------------------------------


def _flatten_search(table: dict, prefix: tuple, out: dict) -> None:
    for key, value in table.items():
        path = prefix + (str(key),)
        where = "search." + ".".join(path)
        is_domain = isinstance(value, dict) and (
            any(k in KINDS for k in value) or (len(value) == 1 and isinstance(
                next(iter(value.values())), list)))
        if isinstance(value, dict) and not is_domain:
            if not value:
                raise MRNNConfigError(f"{where}: an empty table; give a setting and its domain")
            _flatten_search(value, path, out)
            continue
        if not isinstance(value, dict):
            raise MRNNConfigError(
                f"{where}: expected a search domain such as {{ grid = [...] }} or "
                f"{{ loguniform = [low, high] }}, got {value!r}")
        _check_search_path(path)
        out[".".join(path)] = parse_domain(value, where)


def _known(where: str, name: str, allowed) -> None:
    if name not in allowed:
        raise MRNNConfigError(
            f"{where}: unknown setting {name!r}; known: " + ", ".join(repr(k) for k in allowed)
            + closest(name, allowed))


def _check_search_path(path: tuple) -> None:
    """Only settings a trial reads may be swept (``network.config.*`` is checked by the spec)."""
    where = "search." + ".".join(path)
    head = path[0]
    _known(where, head, ("network", "task", "training"))
    if len(path) == 1:
        raise MRNNConfigError(f"{where}: name a setting inside {head!r}, e.g. search.{head}.<key>")
    second = path[1]
    if head == "training":
        _known(where, second, TRAINING_KEYS)
        depth = 2
    elif head == "task":
        _known(where, second, TASK_KEYS)
        depth = 2 if second == "name" else 3
    else:
        _known(where, second, NETWORK_KEYS)
        if second == "dynamics" and len(path) > 2:
            _known(where, path[2], _dynamics_fields())
        if second == "readout" and len(path) > 2:
            _known(where, path[2], READOUT_KEYS)
        depth = {"config": None, "seed": 2, "dynamics": 3, "readout": 3}[second]
    if depth is not None and len(path) != depth:
        raise MRNNConfigError(
            f"{where}: expected a path of {depth} names "
            + ("(search.task.params.<name>)" if head == "task" else "")
            + f", got {len(path)}")
    if depth is None and len(path) < 3:
        raise MRNNConfigError(
            f"{where}: name a key inside the network config, e.g. "
            f"search.network.config.recurrent_connections.0.sparsity")


def with_values(base: dict, values: dict) -> dict:
    """A deep copy of ``base`` with each ``{"a.b.c": value}`` written at its path."""
    out = copy.deepcopy(base)
    for dotted, value in values.items():
        path = dotted.split(".")
        node = out
        for i, key in enumerate(path[:-1]):
            node = _child(node, key, path[: i + 1])
        last = path[-1]
        if isinstance(node, list):
            node[_index(node, last, path)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise MRNNConfigError(
                f"search.{dotted}: {'.'.join(path[:-1])} is {node!r}, not a table or list")
    return out


def _index(node: list, key: str, path) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise MRNNConfigError(
            f"search.{'.'.join(path)}: expected a list index 0..{len(node) - 1}, got {key!r}")
    return int(key)


def _child(node, key: str, path):
    if isinstance(node, list):
        return node[_index(node, key, path)]
    if isinstance(node, dict):
        if key not in node:
            if path[:2] == ["network", "config"]:
                raise MRNNConfigError(
                    f"search.{'.'.join(path)}: the network config has no {key!r}; it has "
                    + ", ".join(repr(k) for k in node) + closest(key, list(node)))
            node[key] = {}
        return node[key]
    raise MRNNConfigError(
        f"search.{'.'.join(path)}: {'.'.join(path[:-1])} is {node!r}, not a table or list")


def _check_search_value(base: dict, path: str, domain: Domain) -> None:
    for i, value in enumerate(domain.candidates):
        label = (f"{domain.kind} value {i} ({value!r})" if domain.kind in ("grid", "choice")
                 else f"{domain.kind} {('low', 'high')[i]} end ({value!r})")
        try:
            settings = with_values(base, {path: value})
            check_settings(settings)
        except MRNNConfigError as err:
            message = str(err)
            if message.startswith(f"search.{path}"):
                raise
            raise MRNNConfigError(f"search.{path}: {label}: {message}") from None


def make_algorithm(key: str, entry: dict | None, **extra):
    """The Ray Tune searcher (`key` ``"search_algorithm"``) or scheduler an entry names, or None."""
    if entry is None:
        return None
    from ray import tune
    from ray.tune.schedulers import SCHEDULER_IMPORT
    from ray.tune.search import SEARCH_ALG_IMPORT

    known, factory = ((SEARCH_ALG_IMPORT, tune.create_searcher) if key == "search_algorithm"
                      else (SCHEDULER_IMPORT, tune.create_scheduler))
    name = entry["name"]
    if name not in known:
        raise MRNNConfigError(
            f"{key}.name: unknown Ray Tune {key.replace('_', ' ')} {name!r}; known: "
            + ", ".join(repr(k) for k in known) + closest(name, list(known)))
    kwargs = {k: v for k, v in entry.items() if k != "name"}
    try:
        return factory(name, **extra, **kwargs)
    except (ImportError, AssertionError) as err:  # Ray's searchers assert their package exists
        raise MRNNConfigError(
            f"{key}.name: {name!r} needs a package that is not installed ({err})") from None
    except (TypeError, ValueError) as err:
        raise MRNNConfigError(f"{key}: {name!r} rejects its settings {kwargs}: {err}") from None


def _check_algorithms(search_algorithm, scheduler, search, metric) -> None:
    if search_algorithm is not None and search_algorithm["name"] not in ("variant_generator",
                                                                         "random"):
        grids = [p for p, d in search.items() if d.kind == "grid"]
        if grids:
            raise MRNNConfigError(
                f"search.{grids[0]}: a grid works only with the default search algorithm; "
                f"search_algorithm {search_algorithm['name']!r} needs choice / uniform / "
                f"loguniform / randint domains")
    make_algorithm("search_algorithm", search_algorithm, metric=metric, mode="min")
    make_algorithm("scheduler", scheduler)


# -- one trial's settings ------------------------------------------------------------------------


def check_settings(settings: dict) -> None:
    """Build what a trial builds (task, network, readout) and check the training settings."""
    build_trial(settings)


def build_trial(settings: dict):
    """``(task, checkpoint, train_kwargs)`` for one trial's settings, all validated.

    `checkpoint` is the trial's initial :class:`mrnn_core.Checkpoint` (with
    its readout unless ``network.readout`` is false); `train_kwargs` holds
    the ``train`` keywords that need no backend (``steps``, ``batch_size``,
    ``lr``, ``checkpoint_every``, ``keep``, ``seed``, ``loss``) plus
    ``"optimizer"`` as a name.
    """
    from mrnn_core import Checkpoint, Dynamics, ReadoutSpec, init_readout
    from mrnn_core.config import spec_from_dict
    from mrnn_core.readout import READOUT_KEYS as READOUT_PARAMS
    from mrnn_core.tasks import make_task

    task_settings = settings["task"]
    if not isinstance(task_settings["name"], str):
        raise MRNNConfigError(f"task.name: expected a task name, got {task_settings['name']!r}")
    try:
        task = make_task(task_settings["name"], **task_settings["params"])
    except TypeError as err:
        raise MRNNConfigError(f"task.params: {err}") from None
    except MRNNConfigError as err:
        raise MRNNConfigError(f"task: {err}") from None

    network = settings["network"]
    spec = spec_from_dict(network["config"], source="network.config")
    seed = network["seed"]
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise MRNNConfigError(f"network.seed: expected an integer >= 0, got {seed!r}")
    try:
        dynamics = Dynamics(**network["dynamics"])
    except MRNNConfigError as err:
        raise MRNNConfigError(f"network.dynamics: {err}") from None
    if spec.input_size != task.n_inputs:
        raise MRNNConfigError(
            f"network.config: the network has {spec.input_size} input channels but task "
            f"{task_settings['name']!r} gives {task.n_inputs}; size its input regions to match")
    try:
        checkpoint = Checkpoint.initialise(spec, dynamics, seed=int(seed))
    except MRNNConfigError as err:
        raise MRNNConfigError(f"network: {err}") from None
    readout = network["readout"]
    if readout is not False:
        regions = readout.get("regions", [r.name for r in spec.recurrent_regions])
        try:
            readout_spec = ReadoutSpec(regions, task.n_outputs, readout.get("dale", False),
                                       readout.get("bias", True))
            weights = init_readout(spec, readout_spec, int(seed) + 1)
        except MRNNConfigError as err:
            raise MRNNConfigError(f"network.readout: {err}") from None
        params = dict(checkpoint.params)
        params.update(zip(READOUT_PARAMS, (weights["W"], weights["b"])))
        checkpoint = Checkpoint(checkpoint.spec, checkpoint.dynamics, params, readout_spec)

    training = dict(settings["training"])
    for key in ("steps", "batch_size", "checkpoint_every", "keep"):
        training[key] = _integer(training[key], f"training.{key}", 1)
    training["seed"] = _integer(training["seed"], "training.seed", 0)
    lr = training["lr"]
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (
            math.isfinite(lr) and lr > 0):
        raise MRNNConfigError(f"training.lr: expected a finite number > 0, got {lr!r}")
    if training["optimizer"] not in OPTIMIZERS:
        raise MRNNConfigError(
            f"training.optimizer: expected one of {', '.join(map(repr, OPTIMIZERS))}, "
            f"got {training['optimizer']!r}" + closest(str(training["optimizer"]), OPTIMIZERS))
    if not isinstance(training["noise"], bool):
        raise MRNNConfigError(f"training.noise: expected true or false, got {training['noise']!r}")
    if training["loss"] is None:
        training["loss"] = task.loss
    if training["loss"] not in ("mse", "cross_entropy"):
        raise MRNNConfigError(
            f"training.loss: expected 'mse' or 'cross_entropy', got {training['loss']!r}")
    return task, checkpoint, training

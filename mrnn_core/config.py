"""Reading and writing mRNNTorch's JSON network format.

The file holds up to four lists: ``recurrent_regions``, ``input_regions``,
``recurrent_connections`` and ``input_connections``. Keys starting with
``__`` are comments, anywhere. Any other unknown key is an error that names
the file, the key path and the closest valid key. A key given twice in one
object is an error too (:func:`parse_json`, which every JSON the core reads
goes through).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from .errors import MRNNConfigError, closest
from .files import atomic_write, read_text
from .spec import ConnectionSpec, InputRegionSpec, NetworkSpec, RecurrentRegionSpec, ei_area_regions

SECTIONS = ("recurrent_regions", "input_regions", "recurrent_connections", "input_connections")

RECURRENT_REGION_KEYS = ("name", "num_units", "sign", "base_firing", "init",
                         "parent_region", "learnable_bias", "device",
                         "tau", "learnable_tau", "learnable_init", "trainable", "exc_pct")
INPUT_REGION_KEYS = ("name", "num_units", "sign", "device")
CONNECTION_KEYS = ("src_region", "dst_region", "sparsity", "zero_connection",
                   "density", "mask", "trainable", "routes")

_IGNORED = ("device",)  # accepted for mRNNTorch files; the model's device rules


class _JSONObject(dict):
    """A parsed JSON object that remembers the keys its text gave more than once."""

    repeated: tuple[str, ...] = ()


def _collect_pairs(pairs) -> _JSONObject:
    obj = _JSONObject()
    repeated = []
    for key, value in pairs:
        if key in obj and not key.startswith("__") and key not in repeated:
            repeated.append(key)  # comment keys (``__...``) may repeat: they are ignored
        obj[key] = value
    obj.repeated = tuple(repeated)
    return obj


def _first_repeated_key(value, where: str):
    """``(where, key)`` of the first key given twice, depth first, or None."""
    if isinstance(value, _JSONObject):
        if value.repeated:
            return where, value.repeated[0]
        children = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for child_where, child in children:
        found = _first_repeated_key(child, child_where)
        if found:
            return found
    return None


def parse_json(text: str, source: str, label: str | None = None):
    """Parse JSON text the way every JSON the core reads is parsed.

    Like :func:`json.loads`, but a key given twice in one object (which
    :mod:`json` silently resolves to the last value) is an error naming the
    key and where it is; keys starting with ``__`` (comments) may repeat.

    **Arguments:**

    - `text`: the JSON text.
    - `source`: where it comes from, the prefix of every location in an
      error (a file name, or e.g. ``"run.npz[spec]"`` for JSON embedded in a
      checkpoint); locations read ``source.recurrent_regions[1]``.
    - `label`: how a syntax error names the text (default `source`).

    **Returns:** the parsed value (objects are ``dict`` instances).

    **Raises:** :class:`MRNNConfigError` for invalid JSON or a repeated key.
    """
    try:
        value = json.loads(text, object_pairs_hook=_collect_pairs)
        found = _first_repeated_key(value, source)
    except json.JSONDecodeError as err:
        raise MRNNConfigError(
            f"{label or source} is not valid JSON: {err.msg} "
            f"at line {err.lineno}, column {err.colno}"
        ) from None
    except RecursionError:
        raise MRNNConfigError(
            f"{label or source}: JSON nested too deeply to read; expected an mrnn config "
            f"(a few levels of objects and lists)"
        ) from None
    if found:
        where, key = found
        raise MRNNConfigError(
            f"{where}: key {key!r} is given more than once in one object; expected each "
            f"key once (JSON would silently keep only the last value)"
        )
    return value


def _strip_comments(entry: Mapping, allowed, where: str) -> dict:
    if not isinstance(entry, Mapping):
        raise MRNNConfigError(f"{where}: expected an object, got {type(entry).__name__} {entry!r}")
    out = {}
    for key, value in entry.items():
        if isinstance(key, str) and key.startswith("__"):
            continue
        if key not in allowed:
            raise MRNNConfigError(
                f"{where}.{key}: unknown key {key!r}; valid keys: "
                + ", ".join(repr(k) for k in allowed) + closest(key, allowed)
            )
        if key not in _IGNORED:
            out[key] = value
    return out


def _require(entry: dict, key: str, where: str):
    if key not in entry:
        raise MRNNConfigError(f"{where}: missing required key {key!r}")
    return entry[key]


def _build(cls, where: str, **kwargs):
    try:
        return cls(**kwargs)
    except MRNNConfigError as err:
        raise MRNNConfigError(f"{where}: {err}") from None


def spec_from_dict(config: Mapping, source: str = "config") -> NetworkSpec:
    """Validate an mRNNTorch-format mapping and return its :class:`NetworkSpec`.

    ``source`` prefixes every error message (a file name, for example).
    """
    top = _strip_comments(config, SECTIONS, source)
    lists = {}
    for section in SECTIONS:
        value = top.get(section, [])
        if value is None or value == {}:
            value = []
        if not isinstance(value, list):
            raise MRNNConfigError(
                f"{source}.{section}: expected a list, got {type(value).__name__}"
            )
        lists[section] = value

    rec = []
    for i, entry in enumerate(lists["recurrent_regions"]):
        where = f"{source}.recurrent_regions[{i}]"
        e = _strip_comments(entry, RECURRENT_REGION_KEYS, where)
        e.setdefault("name", f"region_{i}")
        _require(e, "num_units", where)
        if "exc_pct" in e:  # an E/I area: two child regions under the area's name
            try:
                rec.extend(ei_area_regions(e.pop("name"), e.pop("num_units"), **e))
            except (MRNNConfigError, TypeError) as err:
                raise MRNNConfigError(f"{where}: {err}") from None
        else:
            rec.append(_build(RecurrentRegionSpec, where, **e))

    inp = []
    for i, entry in enumerate(lists["input_regions"]):
        where = f"{source}.input_regions[{i}]"
        e = _strip_comments(entry, INPUT_REGION_KEYS, where)
        _require(e, "name", where)
        _require(e, "num_units", where)
        inp.append(_build(InputRegionSpec, where, **e))

    try:
        regions = NetworkSpec(tuple(rec), tuple(inp))
    except MRNNConfigError as err:
        raise MRNNConfigError(f"{source}: {err}") from None
    conns = {}
    for section in ("recurrent_connections", "input_connections"):
        conns[section] = []
        kind = section.split("_")[0]
        for i, entry in enumerate(lists[section]):
            where = f"{source}.{section}[{i}]"
            e = _strip_comments(entry, CONNECTION_KEYS, where)
            src, dst = _require(e, "src_region", where), _require(e, "dst_region", where)
            if e.get("zero_connection") is None:
                e.pop("zero_connection", None)
            routes = e.pop("routes", None)
            fields = {k: v for k, v in e.items() if k not in ("src_region", "dst_region")}
            # Parents (E/I areas) expand here; unknown names surface below.
            conns[section].extend(_build(regions._expand_connection, where, kind=kind, src=src,
                                         dst=dst, routes=routes, fields=fields))

    try:
        return NetworkSpec(tuple(rec), tuple(inp),
                           tuple(conns["recurrent_connections"]),
                           tuple(conns["input_connections"]))
    except MRNNConfigError as err:
        raise MRNNConfigError(f"{source}: {err}") from None


def load_config(source) -> NetworkSpec:
    """Read a network from a JSON file path, a mapping, or pass a spec through.

    **Arguments:**

    - `source`: a path to an mRNNTorch-format JSON file, a ``dict`` in the
      same format, or a :class:`NetworkSpec` (returned unchanged).

    **Returns:** the validated :class:`NetworkSpec`.
    """
    if isinstance(source, NetworkSpec):
        return source
    if isinstance(source, Mapping):
        return spec_from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        text = read_text(path, "config file")  # regular files only, bounded
        config = parse_json(text, source=path, label=f"config file {path!r}")
        return spec_from_dict(config, source=path)
    raise MRNNConfigError(
        f"config: expected a JSON file path, a dict or a NetworkSpec, "
        f"got {type(source).__name__}"
    )


def spec_to_dict(spec: NetworkSpec) -> dict:
    """The mRNNTorch-format mapping of ``spec``; ``spec_from_dict`` inverts it."""
    def per_unit(v):
        return list(v) if isinstance(v, tuple) else v

    return {
        "recurrent_regions": [
            {"name": r.name, "num_units": r.num_units, "sign": r.sign,
             "base_firing": per_unit(r.base_firing), "init": per_unit(r.init),
             "parent_region": r.parent_region, "learnable_bias": r.learnable_bias,
             **_non_default(r, ("tau", None), ("learnable_tau", False),
                            ("learnable_init", False), ("trainable", True))}
            for r in spec.recurrent_regions
        ],
        "input_regions": [
            {"name": r.name, "num_units": r.num_units, "sign": r.sign}
            for r in spec.input_regions
        ],
        "recurrent_connections": [_connection_dict(c) for c in spec.recurrent_connections],
        "input_connections": [_connection_dict(c) for c in spec.input_connections],
    }


def _connection_dict(c: ConnectionSpec) -> dict:
    out = {"src_region": c.src_region, "dst_region": c.dst_region,
           "sparsity": c.sparsity, "zero_connection": c.zero_connection,
           **_non_default(c, ("density", None), ("trainable", True))}
    if c.mask is not None:
        out["mask"] = [[int(v) for v in row] for row in c.mask]
    return out


def _non_default(obj, *pairs) -> dict:
    """The fields beyond mRNNTorch's format, written only when set, so a file of
    a plain mRNNTorch network stays in mRNNTorch's exact key set."""
    return {k: getattr(obj, k) for k, default in pairs if getattr(obj, k) != default}


def save_config(spec: NetworkSpec, path) -> None:
    """Write ``spec`` to ``path`` as indented mRNNTorch-format JSON."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(spec_to_dict(spec), f, indent=2)
        f.write("\n")

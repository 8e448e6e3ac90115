"""Hypothesis strategies for property-testing mRNNs (needs ``hypothesis``).

Public: users property-test their own models with them. Import this module
explicitly (``import mrnn_core.testing``); ``import mrnn_core`` does not load
hypothesis.

- :func:`network_specs` draws valid :class:`NetworkSpec` s.
- :func:`dynamics_settings` draws :class:`Dynamics`.
- :func:`invalid_configs` draws ``(config_dict, message_regex)`` pairs that
  must be rejected.
- :func:`corrupted_checkpoints` draws a checkpoint's arrays with one of them
  corrupted, and the message loading them must raise.
- :func:`register_profiles` registers the ``dev``, ``ci`` and ``thorough``
  settings profiles and loads the one named by ``MRNN_HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os
import re

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from .dynamics import ACTIVATIONS, Dynamics
from .errors import MRNNConfigError
from .spec import ROUTES, NetworkSpec

PROFILE_ENV = "MRNN_HYPOTHESIS_PROFILE"
"""Environment variable naming the hypothesis profile (``dev`` by default)."""

_NAMES = ("ctx", "thal", "str_d1", "str_d2", "gpe", "stn", "snr", "alm", "hpc", "vta")


def register_profiles() -> str:
    """Register ``dev``, ``ci`` and ``thorough`` (10x ``ci``) and load the chosen one."""
    common = dict(deadline=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("dev", max_examples=20, **common)
    settings.register_profile("ci", max_examples=25, derandomize=True, **common)
    settings.register_profile("thorough", max_examples=250, **common)
    name = os.environ.get(PROFILE_ENV, "dev")
    settings.load_profile(name)
    return name


@st.composite
def network_specs(draw, min_regions: int = 1, max_regions: int = 4,
                  max_units: int = 6, max_inputs: int = 2, max_input_units: int = 4,
                  allow_parents: bool = True, allow_learnable_bias: bool = True,
                  min_inputs: int = 0, beyond_mrnntorch: bool = False) -> NetworkSpec:
    """Draw a valid :class:`NetworkSpec`.

    Covers excitatory and inhibitory regions (sign aliases included), per-region
    baselines and initial states, parent groups, learnable biases, dense,
    sparse, zero and undeclared connections, and input regions of either sign.
    Region sizes run from 1 to ``max_units``.

    ``beyond_mrnntorch=True`` also draws the nn4n-style features: per-region
    ``tau``, learnable tau and initial state, frozen regions and projections,
    ``density`` and explicit ``mask`` connections, and E/I areas (``exc_pct``)
    wired by ``routes``.
    """
    n_rec = draw(st.integers(min_regions, max_regions))
    n_inp = draw(st.integers(min_inputs, max_inputs))
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=n_rec + n_inp,
                          max_size=n_rec + n_inp, unique=True))
    rec_names, inp_names = names[:n_rec], names[n_rec:]
    small = st.floats(-1.0, 1.0, allow_nan=False, width=32)
    spec = NetworkSpec()
    parents = ["grp_a", "grp_b"] if allow_parents else []
    extra = _extra_region_fields if beyond_mrnntorch else (lambda draw: {})
    for name in rec_names:
        if beyond_mrnntorch and draw(st.integers(0, 3)) == 0:
            # an E/I area: two children (name_exc, name_inh) under parent `name`
            n = draw(st.integers(2, max(2, max_units)))
            pct = draw(st.sampled_from([0.5, 0.8])) if n >= 5 else 0.5  # >= 1 unit each
            spec = spec.with_ei_area(name, n, exc_pct=pct,
                                     base_firing=draw(small), init=draw(small), **extra(draw))
            continue
        spec = spec.with_recurrent_region(
            name, draw(st.integers(1, max_units)),
            sign=draw(st.sampled_from(["pos", "neg", "exc", "inhib"])),
            base_firing=draw(small), init=draw(small),
            parent_region=draw(st.sampled_from([None] + parents)) if parents else None,
            learnable_bias=draw(st.booleans()) if allow_learnable_bias else False,
            **extra(draw),
        )
    for name in inp_names:
        spec = spec.with_input_region(name, draw(st.integers(1, max_input_units)),
                                      sign=draw(st.sampled_from(["pos", "neg"])))
    kinds = ["dense", "dense", "sparse", "zero", "absent"]
    if beyond_mrnntorch:
        kinds += ["density", "mask", "frozen"]
    sizes = {r.name: r.num_units for r in spec.recurrent_regions + spec.input_regions}
    # E/I areas are connected through their parent name, which expands to
    # the children (filtered by routes); plain regions by their own name.
    nodes = [n for n in rec_names if n in sizes or n in spec.parents]
    for side, sources in (("recurrent", nodes), ("input", inp_names)):
        add = spec.with_recurrent_connection if side == "recurrent" else spec.with_input_connection
        for src in sources:
            for dst in nodes:
                kind = draw(st.sampled_from(kinds))
                if kind == "absent":
                    continue
                fields = _connection_fields(draw, kind, src, dst, sizes)
                if src in spec.parents or dst in spec.parents:
                    fields.pop("mask", None)
                    fields["routes"] = draw(st.lists(st.sampled_from(ROUTES), min_size=4,
                                                     max_size=4, unique=True)
                                            .flatmap(lambda r: st.integers(1, 4).map(
                                                lambda k: r[:k])))
                try:
                    spec = add(src, dst, **fields)
                except MRNNConfigError:  # routes matched no pair of populations
                    continue
    return spec


def _extra_region_fields(draw) -> dict:
    return {"tau": draw(st.sampled_from([None, None, 20.0, 50.0, 100.0, 150.0])),
            "learnable_tau": draw(st.booleans()),
            "learnable_init": draw(st.booleans()),
            "trainable": draw(st.sampled_from([True, True, False]))}


def _connection_fields(draw, kind, src, dst, sizes) -> dict:
    fields: dict = {}
    if kind == "sparse":
        fields["sparsity"] = draw(st.floats(0.0, 1.0, allow_nan=False))
    elif kind == "zero":
        fields["zero_connection"] = True
    elif kind == "density":
        fields["density"] = draw(st.floats(0.0, 1.0, allow_nan=False))
    elif kind == "mask" and src in sizes and dst in sizes:
        seed = draw(st.integers(0, 2**32 - 1))
        fields["mask"] = np.random.default_rng(seed).integers(0, 2, (sizes[dst], sizes[src]))
    elif kind == "frozen":
        fields["trainable"] = False
    return fields


def dynamics_settings(kind: str | None = None, spectral_radius: bool = False,
                      batch_first: bool | None = None, balance_ei: bool = False):
    """Draw :class:`Dynamics` (all activations, both constraints, both layouts;
    ``balance_ei=True`` also draws the balanced E/I initialisation flag)."""
    return st.builds(
        Dynamics,
        kind=st.sampled_from(["leaky", "elman"]) if kind is None else st.just(kind),
        activation=st.sampled_from(ACTIVATIONS),
        dt=st.sampled_from([1.0, 5.0, 10.0]),
        tau=st.sampled_from([20.0, 50.0, 100.0]),
        noise_level_act=st.floats(0.0, 0.2),
        noise_level_inp=st.floats(0.0, 0.2),
        rec_constrained=st.booleans(),
        inp_constrained=st.booleans(),
        batch_first=st.booleans() if batch_first is None else st.just(batch_first),
        spectral_radius=st.one_of(st.none(), st.floats(0.5, 1.5)) if spectral_radius else st.none(),
        balance_ei=st.booleans() if balance_ei else st.just(False),
    )


def arrays(shape, low: float = -1.0, high: float = 1.0):
    """Draw a float64 array of ``shape`` from a seed (fast for large shapes)."""
    return st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).uniform(low, high, size=shape))


def _base_config():
    return {
        "recurrent_regions": [{"name": "ctx", "num_units": 3},
                              {"name": "thal", "num_units": 2, "sign": "neg"}],
        "input_regions": [{"name": "cue", "num_units": 2}],
        "recurrent_connections": [{"src_region": "ctx", "dst_region": "thal"}],
        "input_connections": [{"src_region": "cue", "dst_region": "ctx"}],
    }


def _mutations():
    """``(mutate(config), message_regex)``: each breaks one rule of SEMANTICS.md section 5."""
    def set_(path, value):
        def apply(c):
            section, index, key = path
            c[section][index][key] = value
            return c
        return apply

    def append(section, entry):
        def apply(c):
            c[section].append(entry)
            return c
        return apply

    return [
        (set_(("recurrent_regions", 0, "num_units"), 0), r"num_units must be an integer >= 1, got 0"),
        (set_(("recurrent_regions", 0, "num_units"), 2.5), r"num_units must be an integer >= 1, got 2\.5"),
        (set_(("input_regions", 0, "num_units"), -1), r"num_units must be an integer >= 1, got -1"),
        (set_(("recurrent_regions", 1, "sign"), "inhibitory"), r"unknown sign 'inhibitory'.*'inhib'"),
        (set_(("recurrent_regions", 1, "name"), "ctx"), r"duplicate region name 'ctx'"),
        (set_(("input_regions", 0, "name"), "thal"), r"duplicate region name 'thal'"),
        (set_(("recurrent_connections", 0, "sparsity"), 1.5), r"sparsity must be between 0 and 1.*1\.5"),
        (set_(("recurrent_connections", 0, "sparsity"), -0.1), r"sparsity must be between 0 and 1.*-0\.1"),
        (set_(("recurrent_connections", 0, "dst_region"), "thalamus"), r"unknown destination region 'thalamus'.*'thal'"),
        (set_(("recurrent_connections", 0, "src_region"), "cortex"), r"unknown source region 'cortex'"),
        (set_(("input_connections", 0, "dst_region"), "cue"), r"'cue' is an input region and cannot receive"),
        (set_(("recurrent_regions", 0, "num_untis"), 3), r"unknown key 'num_untis'.*did you mean 'num_units'"),
        (set_(("recurrent_connections", 0, "sparsty"), 0.1), r"unknown key 'sparsty'.*did you mean 'sparsity'"),
        (append("recurrent_connections", {"src_region": "ctx", "dst_region": "thal"}), r"duplicate connection"),
        (append("input_connections", {"src_region": "cue", "dst_region": "ctx"}), r"duplicate connection"),
        (append("input_regions", {"num_units": 2}), r"missing required key 'name'"),
    ]


def invalid_configs():
    """Draw ``(config_dict, message_regex)``: a config that must be rejected, and the
    message (a regex for ``pytest.raises(match=...)``) that names the culprit."""
    mutations = _mutations()
    return st.sampled_from(range(len(mutations))).map(
        lambda i: (mutations[i][0](_base_config()), mutations[i][1]))


_EXTRA_NAMES = ("W_out", "readout", "bias", "W_rec_T", "weights", "log_tau_a", "base_firing_a",
                "optimizer_state", "readout_W", "readout_b")


@st.composite
def corrupted_checkpoints(draw, checkpoint):
    """Draw ``(params, message_regex)``: ``checkpoint.params`` with one array corrupted.

    The corruption is one of: a wrong value (NaN or inf in a weight, a
    time constant <= 0, a mask entry that is not 0/1 or is 1 in a block the
    spec does not connect or disagrees with an explicit ``mask``, a sign
    that contradicts the source region), a wrong dtype (complex, integer,
    boolean, string; masks and signs cast losslessly stay valid), a wrong
    shape, an extra array, or a missing one.

    ``message_regex`` is what the :class:`MRNNConfigError` raised by
    ``Checkpoint(checkpoint.spec, checkpoint.dynamics, params,
    checkpoint.readout)`` (or ``Checkpoint.load`` of those arrays) must
    match, or ``None`` when the change leaves an equivalent network (it must
    then load with the same ``PARAM_NAMES`` and readout arrays, as float64).
    """
    from .validate import STRUCTURE_NAMES, _rules

    params = {k: np.array(v) for k, v in checkpoint.params.items()}
    keys = sorted(params)
    kind = draw(st.sampled_from(["value", "value", "dtype", "shape", "extra", "missing"]))
    if kind == "extra":
        name = draw(st.sampled_from([n for n in _EXTRA_NAMES if n not in params]))
        params[name] = draw(arrays((draw(st.integers(0, 3)),)))
        return params, rf"unknown array\(s\) '{name}'"
    if kind == "missing":
        optional = {"log_tau"}
        if "tau" in params and np.array_equal(params["tau"], _spec_tau(checkpoint)):
            optional.add("tau")  # filled from the spec: the same time constants
        key = draw(st.sampled_from(keys))
        del params[key]
        return params, None if key in optional else rf"missing '{key}'"
    key = draw(st.sampled_from(keys))
    a = params[key]
    q = re.escape(f"['{key}']")
    if kind == "shape":
        choices = [a.shape + (1,), a.shape[:-1] + (a.shape[-1] + 1,) if a.ndim else (2,), ()]
        if a.ndim == 2 and a.shape[0] != a.shape[1]:
            choices.append(a.shape[::-1])
        shape = draw(st.sampled_from([s for s in choices if s != a.shape]))
        params[key] = np.resize(a, shape) if a.size else np.zeros(shape)
        return params, q + r": expected shape"
    if kind == "dtype":
        structure = key in STRUCTURE_NAMES
        dtype = draw(st.sampled_from(["complex128", "int64", "bool", "str", "float32"]
                                     if structure else ["complex128", "int64", "bool", "str"]))
        params[key] = a.astype(dtype)
        if not structure or dtype in ("complex128", "str"):
            return params, q + r": expected a real"
        if dtype == "bool" and np.any(a < 0):
            return params, q + r"\[\d+, \d+\] \(block .*\): expected -1"
        return params, None
    # a wrong value
    if a.size == 0:
        params[key] = a.astype("complex128")
        return params, q + r": expected a real"
    index = tuple(int(draw(st.integers(0, n - 1))) for n in a.shape)
    a = a.astype(float)
    if key.endswith("_mask"):
        allowed, fixed, _ = _rules(checkpoint.spec, "rec" if key.startswith("W_rec") else "inp")
        forbidden = np.argwhere(~allowed & (a == 0))
        pinned = [(r.start + i, c.start + j) for r, c, block in fixed
                  for i, j in np.argwhere(np.ones_like(block, dtype=bool))]
        options = ["number"] + (["forbidden"] if forbidden.size else []) + (["pinned"] if pinned else [])
        how = draw(st.sampled_from(options))
        if how == "forbidden":
            index = tuple(int(i) for i in forbidden[draw(st.integers(0, len(forbidden) - 1))])
            a[index] = 1.0
            message = r": expected 0, since the spec does not connect"
        elif how == "pinned":
            index = pinned[draw(st.integers(0, len(pinned) - 1))]
            a[index] = 1.0 - a[index]
            message = r": expected \d, the value of the connection's explicit mask"
        else:
            a[index] = draw(st.sampled_from([2.0, -1.0, 0.5, np.nan]))
            message = r": expected (finite values|0 or 1)"
    elif key.endswith("_sign_matrix"):
        a[index] = draw(st.sampled_from([-a[index] if a[index] else 1.0, 2.0, np.nan]))
        message = r": expected (finite values|-?\d+ \(mask \* the sign)"
    elif key == "tau":
        a[index] = draw(st.sampled_from([0.0, -a[index], np.nan, np.inf]))
        message = r": expected finite"
    else:
        a[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        message = r": expected finite values"
    params[key] = a
    return params, q + r".*" + message


def _spec_tau(checkpoint):
    from .connectivity import unit_tau

    return unit_tau(checkpoint.spec, checkpoint.dynamics)

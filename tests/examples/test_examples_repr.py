"""A model's repr shows its regions, sizes, signs and non-default settings,
and a torch model and a JAX model of the same network print the same text."""

import dataclasses
from pathlib import Path

import equinox as eqx
import jax
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
import mrnn_torch
from mrnn_core.describe import WIDTH
from mrnn_core.testing import dynamics_settings, network_specs

CBGT = Path(__file__).resolve().parents[2] / "examples" / "configs" / "cbgt_loop.json"


def both(spec, dynamics, seed=0):
    """The torch and the JAX model of ``spec`` with ``dynamics``, from one checkpoint.

    The weights are drawn unscaled (a feed-forward network has no spectral
    radius to scale); the repr reads only the spec and the settings."""
    unscaled = dataclasses.replace(dynamics, spectral_radius=None)
    ckpt = mrnn_core.Checkpoint.initialise(spec, unscaled, seed=seed)
    ckpt = mrnn_core.Checkpoint(spec, dynamics, ckpt.params)
    torch_cls = mrnn_torch.mRNN if dynamics.kind == "leaky" else mrnn_torch.ElmanmRNN
    return torch_cls.from_checkpoint(ckpt, device="cpu"), mrnn_jax.mRNNBase.from_checkpoint(ckpt)


@given(spec=network_specs(max_regions=5, max_units=4),
       dynamics=dynamics_settings(spectral_radius=True), seed=st.integers(0, 2**31))
def test_torch_and_jax_print_the_same_summary(spec, dynamics, seed):
    torch_model, jax_model = both(spec, dynamics, seed)
    text = repr(jax_model)
    assert repr(torch_model) == text
    assert text.startswith(f"{type(jax_model).__name__}(\n  H={spec.hidden_size}, I={spec.input_size}")
    for region in spec.recurrent_regions:
        assert f"{region.name} {region.num_units} {region.sign}" in text
    for region in spec.input_regions:
        assert f"{region.name} {region.num_units} {region.sign}" in text


def test_regions_show_parents_baselines_and_initial_states():
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("exc", 8, sign="exc", parent_region="ctx", learnable_bias=True)
            .with_recurrent_region("inh", 2, sign="inhib", parent_region="ctx", base_firing=0.25)
            .with_recurrent_region("thal", 3, init=[0.0, 0.5, 1.0])
            .with_input_region("cue", 2, sign="neg")
            .with_recurrent_connection("exc", "inh", sparsity=0.5)
            .with_recurrent_connection("inh", "exc", zero_connection=True)
            .with_input_connection("cue", "exc"))
    _, model = both(spec, mrnn_core.Dynamics())
    assert repr(model) == "\n".join([
        "mRNN(",
        "  H=13, I=2",
        "  regions: exc 8 pos [ctx] b learnable, inh 2 neg [ctx] b=0.25, thal 3 pos x0=0..1",
        "  inputs: cue 2 neg",
        "  connections: 2 recurrent (1 sparse, 1 empty), 1 input",
        ")",
    ])


def test_only_settings_that_differ_from_the_defaults_are_shown():
    spec = mrnn_core.load_config(CBGT)
    plain, _ = both(spec, mrnn_core.Dynamics())
    first_line = repr(plain).splitlines()[1]
    assert first_line == "  H=350, I=3"
    changed = mrnn_core.Dynamics(activation="tanh", tau=50.0, rec_constrained=False,
                                 spectral_radius=0.9)
    torch_model, jax_model = both(spec, changed)
    first_line = repr(jax_model).splitlines()[1]
    assert first_line == ("  H=350, I=3, activation='tanh', tau=50.0, rec_constrained=False, "
                          "spectral_radius=0.9")
    # Elman's defaults are its own: the same settings are not repeated
    elman, _ = both(spec, mrnn_core.Dynamics(kind="elman"))
    assert type(elman).__name__ == "ElmanmRNN" and repr(elman).splitlines()[1] == "  H=350, I=3"


def test_ten_regions_wrap_into_short_lines_each_region_once():
    spec = mrnn_core.NetworkSpec()
    names = [f"area_{k:02d}" for k in range(10)]
    for k, name in enumerate(names):
        spec = spec.with_recurrent_region(name, 10 * (k + 1), sign="neg" if k % 3 else "pos",
                                          parent_region="cortex" if k < 4 else None,
                                          base_firing=0.1 * k)
    for a, b in zip(names, names[1:]):
        spec = spec.with_recurrent_connection(a, b)
    many = mrnn_core.Dynamics(activation="softplus", dt=5.0, tau=20.0, noise_level_act=0.05,
                              noise_level_inp=0.0, rec_constrained=False, batch_first=False,
                              spectral_radius=1.1)
    _, model = both(spec, many)
    lines = repr(model).splitlines()
    assert all(len(line) <= WIDTH + 2 for line in lines)  # + the two-space indent
    settings = " ".join(lines[1:3])
    for field in ("activation", "dt", "tau", "noise_level_act", "noise_level_inp",
                  "rec_constrained", "batch_first", "spectral_radius"):
        assert f"{field}={getattr(many, field)!r}" in settings
    region_lines = [line for line in lines if line.startswith(("  regions:", "           "))]
    assert len(region_lines) >= 3
    text = "".join(region_lines)
    assert [text.count(f"{name} ") for name in names] == [1] * 10


def test_an_unfinalised_torch_model_says_which_side_is_open():
    model = mrnn_torch.mRNN(device="cpu", seed=0)
    assert repr(model).splitlines()[-2] == \
        "  not finalised: recurrent and input connectivity still open"
    model.add_recurrent_region("a", 3)
    model.add_recurrent_connection("a", "a")
    model.finalize_rec_connectivity()
    assert repr(model).splitlines()[-2] == "  not finalised: input connectivity still open"
    model.finalize_inp_connectivity()
    assert "not finalised" not in repr(model)
    assert "regions: a 3 pos" in repr(model)


def test_wrapped_models_show_the_summary_in_both_backends():
    spec = mrnn_core.load_config(CBGT)
    torch_model, jax_model = both(spec, mrnn_core.Dynamics(activation="tanh"))
    summary_line = "regions: d1 50 neg [striatum], d2 50 neg [striatum], gpe 40 neg b=0.3"

    wrapper = torch.nn.Sequential(torch_model)
    assert f"    {summary_line}" in repr(wrapper)

    class Net(eqx.Module):
        rnn: mrnn_jax.mRNN
        readout: eqx.nn.Linear

    net = Net(jax_model, eqx.nn.Linear(350, 2, key=jax.random.key(0)))
    text = repr(net)
    assert f"    {summary_line}" in text
    assert "W_rec=" not in text  # the summary, not equinox's field-by-field dump


def test_describe_is_the_text_both_backends_print():
    spec = mrnn_core.load_config(CBGT)
    dynamics = mrnn_core.Dynamics(noise_level_act=0.05)
    torch_model, jax_model = both(spec, dynamics)
    body = mrnn_core.describe(spec, dynamics)
    assert torch_model.extra_repr() == body
    assert repr(jax_model) == mrnn_core.describe(spec, dynamics, name="mRNN")
    assert repr(jax_model) == "mRNN(\n" + "\n".join("  " + line for line in body.splitlines()) + "\n)"


@pytest.mark.parametrize("sides", [("recurrent",), ("input",), ("recurrent", "input")])
def test_describe_notes_open_sides(sides):
    text = mrnn_core.describe(mrnn_core.NetworkSpec(), mrnn_core.Dynamics(), open_sides=sides)
    assert text.splitlines()[-1] == f"not finalised: {' and '.join(sides)} connectivity still open"

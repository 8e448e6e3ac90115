"""The fast paths of ``mrnn_jax.simulate`` compute what the dense path computes.

Block-sparse recurrence (``recurrence="blocks"``, a structure, or ``"auto"``
on a large block-sparse network) must agree with ``recurrence="dense"`` in
outputs and gradients, and ``"auto"`` must actually pick it where it pays.

Tolerance ``1e-12`` (float64): both paths evaluate the same products; the block
path only sums each row's terms in a different grouping, which moves results
by a few ulps of O(1) values over a handful of steps.
"""

from contextlib import contextmanager
from functools import partial
from unittest import mock

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mrnn_core
import mrnn_jax
from .jax_cases import assert_close, cases, to_jax
from mrnn_jax import _blocks, _recurrence, _simulate

TIGHT = 1e-12


def ring(n_regions: int, units: int, n_inputs: int = 2) -> mrnn_core.NetworkSpec:
    """Each region projects to itself and the next (the last wraps to the first,
    so region 0's sources are two separate spans); every 3rd region is
    inhibitory; the input drives region 0 only."""
    names = [f"r{k}" for k in range(n_regions)]
    spec = mrnn_core.NetworkSpec()
    for k, name in enumerate(names):
        spec = spec.with_recurrent_region(name, units, sign="neg" if k % 3 == 2 else "pos")
    spec = spec.with_input_region("cue", n_inputs).with_input_connection("cue", names[0])
    for k, name in enumerate(names):
        spec = spec.with_recurrent_connection(name, name)
        spec = spec.with_recurrent_connection(name, names[(k + 1) % n_regions])
    return spec


def _ring_call(spec, kind="leaky", B=2, T=4, seed=0):
    d = mrnn_core.Dynamics(kind=kind, activation="tanh")
    ckpt = mrnn_core.Checkpoint.initialise(spec, d, seed=seed)
    rng = np.random.default_rng(seed)
    H, I = spec.hidden_size, spec.input_size
    params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    params["W_rec"] = jnp.asarray(rng.uniform(-1, 1, (H, H)) * 1.5 / np.sqrt(H))
    state = jnp.asarray(rng.uniform(-0.5, 0.5, (B, H)))
    call = {"inp": jnp.asarray(rng.uniform(-1, 1, (B, T, I))),
            "stim_input": jnp.asarray(rng.uniform(-0.3, 0.3, (B, T, H))),
            ("x0" if kind == "leaky" else "h0"): state}
    return d, params, call


@settings(deadline=None)
@given(cases(), st.sampled_from(["blocks", "spec", "connectivity"]))
def test_block_recurrence_equals_dense_on_drawn_networks(case, source):
    """Any network, any call: the planned blocks give the dense result, whether
    the plan is read from the concrete masks or from the spec / connectivity."""
    ckpt, call = case
    call = {**call, "W_rec": None}  # a replacement matrix always runs dense
    recurrence = {"blocks": "blocks", "spec": _blocks.plan_of(ckpt.spec),
                  "connectivity": _blocks.plan_of(ckpt.connectivity)}[source]
    params = to_jax(ckpt.params)
    dense = mrnn_jax.simulate(params, ckpt.dynamics, recurrence="dense", **to_jax(call))
    blocks = mrnn_jax.simulate(params, ckpt.dynamics, recurrence=recurrence, **to_jax(call))
    assert_close(blocks, dense, TIGHT, TIGHT, "blocks vs dense")


@settings(deadline=None)
@given(cases())
def test_the_plan_covers_every_nonzero_of_the_mask(case):
    ckpt, _ = case
    mask = ckpt.params["W_rec_mask"]
    for plan in (_blocks.plan_of(ckpt.spec), _blocks.plan_of(ckpt.connectivity),
                 _blocks.block_plan(mask)):
        assert plan.covers(mask)
        rows = [(d0, d1) for d0, d1, _ in plan.groups]
        assert rows[0][0] == 0 and rows[-1][1] == mask.shape[0]
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))


def test_ring_plan_computes_only_the_declared_blocks():
    plan = _blocks.plan_of(ring(4, 3))
    assert plan.groups == (
        (0, 3, ((0, 3), (9, 12))),  # r0 hears itself and r3 (wrap-around)
        (3, 6, ((0, 6),)), (6, 9, ((3, 9),)), (9, 12, ((6, 12),)))
    assert plan.fraction == pytest.approx(8 / 16)


@pytest.mark.parametrize("kind", ["leaky", "elman"])
def test_block_gradients_equal_dense_gradients(kind):
    """Training sees the same gradients on either path (W_rec, W_inp, bias, input)."""
    spec = ring(4, 3).with_recurrent_region("silent", 2)  # a region nothing projects to
    d, params, call = _ring_call(spec, kind)
    plan = _blocks.plan_of(spec)
    assert plan.groups[-1][2] == ()

    def loss(p, inp, recurrence):
        out = mrnn_jax.simulate(p, d, inp, **{k: v for k, v in call.items() if k != "inp"},
                                recurrence=recurrence)
        hs = out[1] if kind == "leaky" else out
        return jnp.sum(jnp.sin(3.0 * hs))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
    g_dense, g_blocks = grad(params, call["inp"], "dense"), grad(params, call["inp"], plan)
    for name in ("W_rec", "W_inp", "base_firing"):
        assert np.any(np.asarray(g_dense[0][name]) != 0), name
        assert_close(g_blocks[0][name], g_dense[0][name], TIGHT, TIGHT, name)
    assert_close(g_blocks[1], g_dense[1], TIGHT, TIGHT, "d loss / d inp")


def _square_dots(fn, H, *args):
    """How many matmuls with an ``[H, H]`` operand ``fn(*args)`` traces."""
    def walk(jaxpr):
        count = 0
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                count += any(tuple(v.aval.shape) == (H, H) for v in eqn.invars)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                count += walk(sub)
        return count
    return walk(jax.make_jaxpr(fn)(*args).jaxpr)


def test_auto_picks_blocks_for_a_large_block_sparse_model_under_jit():
    """A model call inside the user's jit (masks traced) still skips absent blocks
    because the model hands its spec over; results equal the dense path."""
    spec = ring(4, 128)  # H = 512, half the blocks
    H = spec.hidden_size
    d, params, call = _ring_call(spec, B=2, T=3)
    model = mrnn_jax.mRNN.from_checkpoint(mrnn_core.Checkpoint(
        spec, d, {k: np.asarray(v) for k, v in params.items()} | {"init": np.zeros(H)}))

    def run(model, inp, recurrence):
        return model(inp, call["x0"], stim_input=call["stim_input"], recurrence=recurrence)

    assert _square_dots(lambda m, u: run(m, u, "auto"), H, model, call["inp"]) == 0
    assert _square_dots(lambda m, u: run(m, u, "dense"), H, model, call["inp"]) == 1
    jitted = eqx.filter_jit(run)
    assert_close(jitted(model, call["inp"], "auto"), jitted(model, call["inp"], "dense"),
                 TIGHT, TIGHT, "auto (blocks) vs dense")


@pytest.mark.parametrize("spec, picks_blocks", [
    (ring(4, 128), True),        # H = 512, 50 % of the entries
    (ring(4, 100), False),       # H = 400: too small to pay
    (ring(2, 300), False),       # two regions, both blocks of each present: dense
])
def test_auto_chooses_by_size_and_block_density(spec, picks_blocks):
    mask = mrnn_core.build_connectivity(spec, seed=0).W_rec_mask
    H = spec.hidden_size
    for recurrence, m in (("auto", mask), (spec, None)):
        plan = _blocks.choose_plan(recurrence, m, H, replaced=False)
        assert (plan is not None) == picks_blocks
    assert _blocks.choose_plan("auto", mask, H, replaced=True) is None  # W_rec= is dense
    assert _blocks.choose_plan("dense", mask, H, replaced=False) is None


def test_vmap_over_stacked_parameter_sets_with_a_block_plan():
    spec = ring(3, 4)
    d, params, call = _ring_call(spec)
    plan = _blocks.plan_of(spec)
    rng = np.random.default_rng(3)
    stacked = {k: jnp.stack([v] * 3) for k, v in params.items()}
    stacked["W_rec"] = stacked["W_rec"] * jnp.asarray(rng.uniform(0.5, 1.5, (3, 1, 1)))
    run = jax.vmap(lambda p: mrnn_jax.simulate(p, d, recurrence=plan, **call))
    xs, hs = run(stacked)
    for k in range(3):
        one = mrnn_jax.simulate({n: v[k] for n, v in stacked.items()}, d, recurrence="dense",
                                **call)
        assert_close((xs[k], hs[k]), one, TIGHT, TIGHT, f"set {k}")


def test_bad_recurrence_choices_raise_naming_the_argument():
    spec = ring(3, 4)
    d, params, call = _ring_call(spec)
    W = jnp.zeros((12, 12))
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"recurrence: expected one of .* got 'sparse'"):
        mrnn_jax.simulate(params, d, recurrence="sparse", **call)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"recurrence: .* got a int"):
        mrnn_jax.simulate(params, d, recurrence=3, **call)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"W_rec= .* got both"):
        mrnn_jax.simulate(params, d, recurrence="blocks", W_rec=W, **call)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"structure has 15 hidden units, expected H = 12"):
        mrnn_jax.simulate(params, d, recurrence=ring(3, 5), **call)
    with pytest.raises(mrnn_core.MRNNConfigError, match=r"'blocks' reads the block structure .* traced"):
        jax.jit(lambda p: mrnn_jax.simulate(p, d, recurrence="blocks", **call))(params)


@settings(deadline=None)
@given(cases())
def test_input_term_inside_the_step_matches_the_reference(case):
    """Large states compute ``W_inp_eff u_t + b`` inside each step instead of
    as one drive array first; forced on here for small drawn networks."""
    from .jax_cases import ATOL, RTOL, reference

    ckpt, call = case
    saved = _simulate._INPUT_IN_STEP_MIN
    _simulate._INPUT_IN_STEP_MIN = 0
    try:
        out = mrnn_jax.simulate(to_jax(ckpt.params), ckpt.dynamics, **to_jax(call))
    finally:
        _simulate._INPUT_IN_STEP_MIN = saved
    assert_close(out, reference(ckpt, call), RTOL, ATOL, "input in step vs reference")


def _autodiff_simulate(params, d, inp, state, stim_input, eps_x):
    """The plain formulation: ``jax.grad`` differentiates a scan of ``mrnn_jax.step``
    over ``input_drive`` (time-major, two output streams); the dense path's
    hand-written reverse pass must give its gradients."""
    drive = mrnn_jax.input_drive(params, d, inp, stim_input=stim_input, eps_x=eps_x)
    W_rec_eff, _ = mrnn_jax._functional.effective_weights(params, d)
    f = mrnn_jax._activations.get_activation(d.activation)
    unbatched = drive.ndim == 2
    if unbatched:
        drive, state = drive[:, None], state[None]

    def body(carry, drive_t):
        carry = mrnn_jax.step(d, W_rec_eff, carry, drive_t)
        return carry, carry

    init = (state, f(state)) if d.kind == "leaky" else (state, state)
    _, (xs, hs) = jax.lax.scan(body, init, drive)
    if unbatched:
        xs, hs = xs[:, 0], hs[:, 0]
    elif d.batch_first:
        xs, hs = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(hs, 0, 1)
    return (xs, hs) if d.kind == "leaky" else hs


def _reverse_case(spec, d, layout, seed, steps):
    """Drawn params (weights big enough to matter, a bias), call arrays in the
    ``layout`` (``"batch_first"``, ``"time_major"``, ``"unbatched"``), and the
    loss weights ``A``, ``C`` of ``L = sum(A * hs) + sum(C * xs)``."""
    ckpt = mrnn_core.Checkpoint.initialise(spec, d, seed=seed)
    rng = np.random.default_rng(seed + 4)
    H, I, B, T = spec.hidden_size, spec.input_size, 2, steps
    params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    params["W_rec"] = jnp.asarray(rng.uniform(-1, 1, (H, H)) * 1.5 / np.sqrt(H))
    params["base_firing"] = jnp.asarray(rng.uniform(-0.2, 0.2, H))
    shape = {"batch_first": (B, T), "time_major": (T, B), "unbatched": (T,)}[layout]
    args = {"inp": jnp.asarray(rng.uniform(-1, 1, shape + (I,))),
            "state": jnp.asarray(rng.uniform(-0.5, 0.5, (H,) if layout == "unbatched" else (B, H))),
            "stim_input": jnp.asarray(rng.uniform(-0.3, 0.3, shape + (H,))),
            "eps_x": jnp.asarray(rng.standard_normal(shape + (H,)))}
    A, C = rng.standard_normal(shape + (H,)), rng.standard_normal(shape + (H,))
    return params, args, A, C


@contextmanager
def _dense_path_forced(input_term, reverse, n_inputs):
    """The dense recurrence's size-based choices forced: the input term as a drive
    array, a matmul or multiply-adds in the step; weight gradients by one GEMM
    after the loop or accumulated in it."""
    saved = (_simulate._INPUT_IN_STEP_MIN, _recurrence._INPUT_FMA_MAX,
             _recurrence._GEMM_MAX_ELEMENTS)
    _simulate._INPUT_IN_STEP_MIN = 10**9 if input_term == "drive" else 0
    _recurrence._INPUT_FMA_MAX = n_inputs if input_term == "fma" else -1
    _recurrence._GEMM_MAX_ELEMENTS = 10**9 if reverse == "gemm" else 0
    try:
        yield
    finally:
        (_simulate._INPUT_IN_STEP_MIN, _recurrence._INPUT_FMA_MAX,
         _recurrence._GEMM_MAX_ELEMENTS) = saved


# Every activation in each kind, every call layout, every way of adding the
# input term (a drive array before the loop, a matmul or multiply-adds in the
# step), both ways of forming the weight gradients, without the full product
# (each case compiles twice).
_REVERSE_CASES = [
    ("leaky", "relu", "batch_first", "drive", "gemm"),
    ("leaky", "tanh", "batch_first", "matmul", "accumulate"),
    ("leaky", "sigmoid", "time_major", "drive", "accumulate"),
    ("leaky", "softplus", "unbatched", "fma", "gemm"),
    ("leaky", "linear", "batch_first", "fma", "accumulate"),
    ("leaky", "tanh", "time_major", "matmul", "gemm"),
    ("elman", "relu", "time_major", "fma", "accumulate"),
    ("elman", "tanh", "batch_first", "drive", "gemm"),
    ("elman", "sigmoid", "batch_first", "matmul", "gemm"),
    ("elman", "softplus", "batch_first", "drive", "accumulate"),
    ("elman", "linear", "unbatched", "drive", "gemm"),
    ("elman", "tanh", "unbatched", "matmul", "accumulate")]


@pytest.mark.parametrize("kind, activation, layout, input_term, reverse", _REVERSE_CASES)
def test_dense_reverse_pass_equals_autodiff_of_the_plain_scan(kind, activation, layout,
                                                              input_term, reverse):
    """Every argument's gradient (weights, bias, state, input, stimulus, noise) of
    ``L = sum(A * hs) + sum(C * xs)``, for every activation and call layout, with
    the input term in the drive array or the step, weight gradients from
    one GEMM after the loop or accumulated in it. Tolerance 1e-12
    (float64): the same products, summed in another order."""
    spec = ring(3, 3)
    d = mrnn_core.Dynamics(kind=kind, activation=activation,
                           batch_first=layout != "time_major")
    params, args, A, C = _reverse_case(spec, d, layout, seed=1, steps=5)

    def loss(run, p, a):
        out = run(p, a)
        return jnp.sum(A * out[1]) + jnp.sum(C * out[0]) if kind == "leaky" else jnp.sum(A * out)

    def ours(p, a):
        state = {"x0" if kind == "leaky" else "h0": a["state"]}
        return mrnn_jax.simulate(p, d, a["inp"], stim_input=a["stim_input"], eps_x=a["eps_x"],
                                 recurrence="dense", **state)

    def plain(p, a):
        return _autodiff_simulate(p, d, a["inp"], a["state"], a["stim_input"], a["eps_x"])

    with _dense_path_forced(input_term, reverse, spec.input_size):
        assert_close(jax.jit(ours)(params, args), jax.jit(plain)(params, args), TIGHT, TIGHT,
                     "forward")
        g_ours = jax.jit(jax.grad(partial(loss, ours), argnums=(0, 1)))(params, args)
    g_plain = jax.jit(jax.grad(partial(loss, plain), argnums=(0, 1)))(params, args)
    for name in ("W_rec", "W_inp", "base_firing"):
        assert np.any(np.asarray(g_plain[0][name]) != 0), name
        assert_close(g_ours[0][name], g_plain[0][name], TIGHT, TIGHT, name)
    for name in args:
        assert_close(g_ours[1][name], g_plain[1][name], TIGHT, TIGHT, f"d loss / d {name}")


_PER_UNIT_CASES = [
    ("tanh", "batch_first", "fma", "gemm"),
    ("relu", "batch_first", "matmul", "accumulate"),
    ("sigmoid", "time_major", "drive", "gemm"),
    ("softplus", "unbatched", "drive", "accumulate"),
    ("tanh", "time_major", "matmul", "accumulate")]


@pytest.mark.parametrize("activation, layout, input_term, reverse", _PER_UNIT_CASES)
def test_per_unit_tau_reverse_pass_equals_autodiff_of_the_plain_scan(activation, layout,
                                                                     input_term, reverse):
    """Regions with their own tau (alpha per unit) run the same hand-written
    reverse pass: outputs and every gradient, the time constants' included
    (what a learned tau trains), equal ``jax.grad`` of the plain
    ``recurrence="scan"``. Tolerance 1e-12 (float64): the same products,
    summed in another order."""
    spec = ring(3, 3)
    d = mrnn_core.Dynamics(kind="leaky", activation=activation, dt=10.0, tau=100.0,
                           batch_first=layout != "time_major")
    params, args, A, C = _reverse_case(spec, d, layout, seed=2, steps=6)
    params["tau"] = jnp.asarray(np.repeat([30.0, 100.0, 55.0], 3))  # one per region

    def run(recurrence, p, a):
        return mrnn_jax.simulate(p, d, a["inp"], a["state"], stim_input=a["stim_input"],
                                 eps_x=a["eps_x"], recurrence=recurrence)

    def loss(recurrence, p, a):
        xs, hs = run(recurrence, p, a)
        return jnp.sum(A * hs) + jnp.sum(C * xs)

    seen = []
    scan = _simulate._scan

    def spy(*a, **kw):
        seen.append((kw["fast"], kw["alpha"]))
        return scan(*a, **kw)

    with _dense_path_forced(input_term, reverse, spec.input_size), \
            mock.patch.object(_simulate, "_scan", spy):
        fast = jax.jit(partial(run, "dense"))(params, args)
        g_fast = jax.jit(jax.grad(partial(loss, "dense"), argnums=(0, 1)))(params, args)
    assert seen and all(f and alpha is None for f, alpha in seen)  # the per-unit fast path
    assert_close(fast, jax.jit(partial(run, "scan"))(params, args), TIGHT, TIGHT, "forward")
    g_plain = jax.jit(jax.grad(partial(loss, "scan"), argnums=(0, 1)))(params, args)
    assert np.all(np.asarray(g_plain[0]["tau"]) != 0)  # every unit's time constant matters
    for name in ("W_rec", "W_inp", "base_firing", "tau"):
        assert np.any(np.asarray(g_plain[0][name]) != 0), name
        assert_close(g_fast[0][name], g_plain[0][name], TIGHT, TIGHT, name)
    for name in args:
        assert_close(g_fast[1][name], g_plain[1][name], TIGHT, TIGHT, f"d loss / d {name}")


def test_scan_recurrence_allows_forward_mode_and_agrees_with_the_fast_path():
    """``recurrence="scan"`` runs a plain lax.scan: jvp / jacfwd work, and the
    numbers equal the default fast path's (float64, 1e-12); the default path
    documents that forward mode raises."""
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 5).with_input_region("u", 2)
            .with_recurrent_connection("a", "a").with_input_connection("u", "a"))
    ckpt = mrnn_core.Checkpoint.initialise(spec, mrnn_core.Dynamics(activation="tanh"), seed=1)
    params = {k: jnp.asarray(v) for k, v in ckpt.params.items()}
    rng = np.random.default_rng(0)
    inp, x0 = jnp.asarray(rng.normal(size=(2, 7, 2))), jnp.asarray(rng.normal(size=(2, 5)))

    def hs(x, recurrence):
        return mrnn_jax.simulate(params, ckpt.dynamics, inp, x, recurrence=recurrence)[1]

    np.testing.assert_allclose(hs(x0, "scan"), hs(x0, "auto"), rtol=1e-12, atol=1e-12)
    tangent = jnp.ones_like(x0)
    _, forward = jax.jvp(lambda x: hs(x, "scan"), (x0,), (tangent,))
    _, pullback = jax.vjp(lambda x: hs(x, "auto"), x0)
    # <J t, c> = <t, J^T c> for a random cotangent c
    c = jnp.asarray(rng.normal(size=forward.shape))
    np.testing.assert_allclose(jnp.sum(forward * c), jnp.sum(tangent * pullback(c)[0]),
                               rtol=1e-11)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: hs(x, "auto"), (x0,), (tangent,))


@pytest.mark.parametrize("regions, scalar", [
    (dict(), True),                                   # Dynamics.tau for all
    (dict(tau=40.0), True),                           # one shared region tau
    (dict(tau=40.0, learnable_tau=True), False),      # learned: traced, per unit
])
def test_a_jitted_model_keeps_the_scalar_fast_path_when_its_units_share_a_fixed_tau(
        monkeypatch, regions, scalar):
    """Under jit the dense recurrence with the hand-written reverse pass runs
    either way; units sharing a fixed tau get the scalar-alpha code (the same
    numbers as a network without region taus), a learned tau the per-unit one."""
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("a", 6, **regions)
            .with_recurrent_region("b", 4, sign="neg", **regions)
            .with_recurrent_connection("a", "b").with_recurrent_connection("b", "a"))
    model = mrnn_jax.mRNN(spec, activation="tanh", seed=0)
    seen = []
    scan = _simulate._scan

    def spy(*args, **kwargs):
        seen.append((kwargs["fast"], kwargs["alpha"] is not None))
        return scan(*args, **kwargs)

    monkeypatch.setattr(_simulate, "_scan", spy)
    x0 = jnp.full((2, 10), 0.1)
    loss = eqx.filter_jit(lambda m: jnp.sum(m(jnp.zeros((2, 5, 0)), x0)[1]))
    eqx.filter_grad(loss)(model)
    assert seen == [(True, scalar)]

"""The leaky Euler step is refused where it is unsafe (SEMANTICS.md section 5).

``alpha = dt / tau > 1`` for any unit (global tau, a region's tau, a learned
tau at construction, a checkpoint's tau array) is refused unless
``allow_unstable_alpha=True``; ``alpha`` underflowing to 0 or overflowing is
refused whatever the switch (it used to raise ZeroDivisionError mid-forward).
Elman networks have no alpha and are not checked.
"""

import json
import re

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import mrnn_core as mc
from mrnn_core.dynamics import check_alpha

UNSTABLE = r"> 1{}: the Euler step overshoots the leak and can grow without bound; expected tau >= dt = {}\. " \
           r"Use a smaller dt or a larger tau, or pass allow_unstable_alpha=True"
SPEC = (mc.NetworkSpec().with_recurrent_region("ctx", 3).with_recurrent_region("fast", 2, tau=4.0)
        .with_input_region("cue", 1).with_recurrent_connection("ctx", "fast")
        .with_input_connection("cue", "ctx"))


@pytest.mark.parametrize("dt, tau", [(20.0, 10.0), (10.0, 9.999), (100.0, 1.0)])
def test_a_global_time_step_longer_than_tau_is_refused(dt, tau):
    with pytest.raises(mc.MRNNConfigError,
                       match=rf"^dynamics: alpha = dt / tau = {dt!r} / {tau!r} = .* " + UNSTABLE.format("", dt)):
        mc.Dynamics(dt=dt, tau=tau)
    assert mc.Dynamics(dt=dt, tau=tau, allow_unstable_alpha=True).alpha == dt / tau


def test_alpha_of_exactly_one_is_the_discrete_step_and_accepted():
    assert mc.Dynamics(dt=10.0, tau=10.0).alpha == 1.0


def test_elman_dynamics_have_no_alpha_to_check():
    assert mc.Dynamics(kind="elman", dt=100.0, tau=1.0).alpha == 1.0


@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("dt, tau, alpha", [(1e-300, 1e300, "0.0"), (1e-5, 1e305, "1e-310"),
                                            (1e300, 1e-300, "inf")])
def test_alpha_that_a_float_cannot_step_with_is_refused_whatever_the_switch(dt, tau, alpha, allow):
    with pytest.raises(mc.MRNNConfigError,
                       match=re.escape(f"dynamics: alpha = dt / tau = {dt!r} / {tau!r} = {alpha} is outside "
                                       f"what a float can step with; expected a finite alpha >= "
                                       f"2.2250738585072014e-308")):
        mc.Dynamics(dt=dt, tau=tau, allow_unstable_alpha=allow)


def test_the_switch_must_be_a_bool():
    with pytest.raises(mc.MRNNConfigError, match=r"allow_unstable_alpha must be True or False, got 'yes'"):
        mc.Dynamics(allow_unstable_alpha="yes")


def test_a_unit_array_names_the_first_bad_unit_and_its_region():
    d = mc.Dynamics(dt=10.0)
    tau = np.array([100.0, 100.0, 100.0, 12.0, 8.0])
    with pytest.raises(mc.MRNNConfigError,
                       match=r"^ckpt: alpha = dt / tau = 10\.0 / 8\.0 = 1\.25 "
                             + UNSTABLE.format(r" for unit 4 \(region 'fast'\)", r"10\.0")):
        check_alpha(tau, d, where="ckpt", spec=SPEC)
    with pytest.raises(mc.MRNNConfigError, match=r"^tau: alpha = .* > 1 for unit 4:"):
        check_alpha(tau, d)
    check_alpha(tau, mc.Dynamics(dt=10.0, allow_unstable_alpha=True))
    check_alpha(tau, mc.Dynamics(kind="elman"))
    check_alpha(np.zeros(0), d)


@pytest.mark.parametrize("bad, got", [(-1.0, r"-1\.0"), (0.0, r"0\.0"), (np.nan, "nan"), (np.inf, "inf")])
def test_a_time_constant_that_is_not_positive_and_finite_is_named(bad, got):
    tau = np.array([100.0, 100.0, bad, 100.0, 100.0])
    with pytest.raises(mc.MRNNConfigError, match=rf"^ckpt: expected finite time constants > 0, got {got} "
                                                 rf"for unit 2 \(region 'ctx'\)$"):
        check_alpha(tau, mc.Dynamics(allow_unstable_alpha=True), where="ckpt", spec=SPEC)


def test_non_numeric_time_constants_are_refused():
    with pytest.raises(mc.MRNNConfigError, match=r"ckpt: expected real time constants, got 'fast'"):
        check_alpha("fast", mc.Dynamics(), where="ckpt")


@given(dt=st.sampled_from([0.5, 1.0, 10.0, 20.0, 100.0]),
       taus=st.lists(st.sampled_from([0.25, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0]), min_size=1, max_size=6),
       allow=st.booleans())
@example(dt=10.0, taus=[10.0], allow=False)
def test_refused_exactly_when_some_unit_steps_past_its_time_constant(dt, taus, allow):
    unsafe = any(dt / t > 1 for t in taus)
    d = mc.Dynamics(dt=dt, tau=max(dt, 1.0), allow_unstable_alpha=allow)
    if unsafe and not allow:
        with pytest.raises(mc.MRNNConfigError, match=r"> 1 for unit \d+: the Euler step overshoots"):
            check_alpha(np.array(taus), d)
    else:
        check_alpha(np.array(taus), d)


def test_the_switch_travels_through_to_dict_and_old_dicts_still_load():
    allowed = mc.Dynamics(dt=20.0, tau=10.0, allow_unstable_alpha=True)
    assert mc.Dynamics.from_dict(json.loads(json.dumps(allowed.to_dict()))) == allowed
    assert "allow_unstable_alpha" not in mc.Dynamics().to_dict()  # default files keep the old key set
    old = {k: v for k, v in mc.Dynamics(tau=50.0).to_dict().items()}
    assert mc.Dynamics.from_dict(old) == mc.Dynamics(tau=50.0)
    assert mc.Dynamics.from_dict(old).allow_unstable_alpha is False
    # a frozen record stays hashable (JAX keeps it as a static field)
    assert hash(allowed) != hash(mc.Dynamics(dt=20.0, tau=10.0, allow_unstable_alpha=True,
                                             activation="tanh"))
    assert len({allowed, mc.Dynamics(dt=20.0, tau=10.0, allow_unstable_alpha=True)}) == 1


def test_a_region_tau_shorter_than_dt_is_refused_when_a_model_is_initialised():
    with pytest.raises(mc.MRNNConfigError,
                       match=r"^spec: alpha = dt / tau = 10\.0 / 4\.0 = 2\.5 "
                             + UNSTABLE.format(r" for unit 3 \(region 'fast'\)", r"10\.0")):
        mc.Checkpoint.initialise(SPEC, mc.Dynamics(), seed=0)
    ckpt = mc.Checkpoint.initialise(SPEC, mc.Dynamics(allow_unstable_alpha=True), seed=0)
    assert list(ckpt.params["tau"]) == [100.0, 100.0, 100.0, 4.0, 4.0]
    assert mc.Checkpoint.initialise(SPEC, mc.Dynamics(dt=4.0), seed=0).dynamics.dt == 4.0
    assert mc.Checkpoint.initialise(SPEC, mc.Dynamics(kind="elman", dt=10.0), seed=0) is not None


def test_a_huge_region_tau_is_refused_at_initialisation_not_mid_forward():
    spec = mc.NetworkSpec().with_recurrent_region("slow", 2, tau=1e306).with_recurrent_connection("slow", "slow")
    with pytest.raises(mc.MRNNConfigError, match=r"spec: alpha = dt / tau = 1e-20 / 1e\+306 = 0\.0 for unit 0 "
                                                 r"\(region 'slow'\) is outside what a float can step with"):
        mc.Checkpoint.initialise(spec, mc.Dynamics(dt=1e-20, allow_unstable_alpha=True), seed=0)


def test_an_allowed_unstable_network_runs_and_a_saved_one_keeps_its_switch(tmp_path):
    # The reason for the rule: with alpha > 2 the leak alone, x <- (1 - alpha) x,
    # grows by |1 - alpha| per step. The switch lets a user run it anyway.
    spec = mc.NetworkSpec().with_recurrent_region("a", 1).with_input_region("u", 1) \
        .with_input_connection("u", "a")
    d = mc.Dynamics(activation="linear", dt=30.0, tau=10.0, allow_unstable_alpha=True,
                    noise_level_act=0.0, noise_level_inp=0.0)
    ckpt = mc.Checkpoint.initialise(spec, d, seed=0)
    xs, _ = mc.reference.simulate(dict(ckpt.params), d, np.zeros((20, 1)), x0=np.ones(1))
    assert np.allclose(xs[:, 0], (-2.0) ** np.arange(1, 21), rtol=1e-12)
    path = tmp_path / "run.npz"
    ckpt.save(path)
    assert mc.Checkpoint.load(path).dynamics.allow_unstable_alpha is True


def test_a_task_step_longer_than_tau_needs_the_switch_too():
    from types import SimpleNamespace

    from mrnn_core.neurogym import task_dynamics

    env = SimpleNamespace(dt=100.0)
    with pytest.raises(mc.MRNNConfigError, match=r"tau: expected at least the task's dt = 100 ms"):
        task_dynamics(env, tau=50.0)
    assert task_dynamics(env, tau=50.0, allow_unstable_alpha=True).alpha == 2.0


def test_a_functional_call_with_an_underflowing_alpha_raises_the_documented_error():
    # Arrays handed straight to a simulate function skip construction; the noise
    # constant sqrt(2 alpha sigma^2) / alpha used to divide by zero there.
    spec = mc.NetworkSpec().with_recurrent_region("slow", 2).with_recurrent_connection("slow", "slow")
    d = mc.Dynamics(dt=1e-20)
    params = {**mc.Checkpoint.initialise(spec, d, seed=0).params, "tau": np.full(2, 1e306)}
    with pytest.raises(mc.MRNNConfigError, match=r"^tau: alpha = dt / tau = 1e-20 / 1e\+306 = 0\.0 for unit 0 "
                                                 r"is outside what a float can step with"):
        mc.reference.simulate(params, d, np.zeros((3, 0)), x0=np.zeros(2),
                              eps_x=np.ones((3, 2)), eps_u=np.ones((3, 0)))

"""Ensembles over several devices: sharded over members or trials, a call and a
training step give what the unsharded ensemble gives (float64, 1e-12), and a
mesh that does not divide the members or the batch is refused before any work.

The devices are two host-platform CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), which must be set
before JAX starts: the checks run in a fresh Python process.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(r'''
    import json
    import jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    import optax
    import pytest

    import mrnn_core
    import mrnn_jax
    from mrnn_core import MRNNConfigError
    from mrnn_jax.ensemble import member_optimiser, mesh, shard_batch

    assert len(jax.devices()) == 2, jax.devices()
    spec = (mrnn_core.NetworkSpec()
            .with_recurrent_region("a", 5, learnable_bias=True)
            .with_recurrent_region("b", 3, sign="neg", tau=50.0)
            .with_input_region("u", 2)
            .with_recurrent_connection("a", "a").with_recurrent_connection("a", "b")
            .with_recurrent_connection("b", "a").with_input_connection("u", "a"))
    ens = mrnn_jax.Ensemble.from_seeds(spec, [0, 1, 2, 3], activation="tanh",
                                       member_values={"noise_level_act": [0.0, 0.1, 0.2, 0.3]})
    rng = np.random.default_rng(0)
    inp = jnp.asarray(rng.standard_normal((4, 6, 2)))
    target = jnp.asarray(rng.standard_normal((4, 4, 6, 8)))
    keys = jax.random.split(jax.random.key(1), 4)
    optimiser = member_optimiser(optax.chain(optax.clip_by_global_norm(0.1), optax.adam(1e-2)))

    def loss(t, f, inp, keys):
        hs = eqx.combine(t, f)(inp, key=keys)[1]
        return jnp.sum(jnp.mean((hs - target) ** 2, axis=(1, 2, 3)))

    @eqx.filter_jit
    def step(t, f, state, inp, keys):
        grads = jax.grad(loss)(t, f, inp, keys)
        updates, state = optimiser.update(grads, state, t)
        return eqx.apply_updates(t, updates), state

    def run(ens, inp, keys):
        t, f = eqx.partition(ens, mrnn_jax.trainable_filter(ens))
        out = eqx.filter_jit(lambda e, i, k: e(i, key=k))(ens, inp, keys)
        t, _ = step(t, f, optimiser.init(t), inp, keys)
        return out, t

    def diff(a, b):
        return max(float(jnp.max(jnp.abs(x - y)))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))

    result = {}
    plain_out, plain_t = run(ens, inp, keys)
    # members over the two devices
    by_members = mesh(members=2)
    sharded = ens.shard(by_members)
    result["member_leaf_devices"] = len(sharded.model.W_rec.sharding.device_set)
    result["member_shard_shape"] = list(sharded.model.W_rec.addressable_shards[0].data.shape)
    out, t = run(sharded, inp, keys)
    result["members_out_shards"] = list(out[1].addressable_shards[0].data.shape)
    result["members_diff"] = max(diff(out, plain_out), diff(t, plain_t))
    # trials over the two devices (every member on both)
    by_batch = mesh(members=1, batch=2)
    out, t = run(ens.shard(by_batch), shard_batch(inp, by_batch, per_member=False), keys)
    result["batch_out_shards"] = list(out[1].addressable_shards[0].data.shape)
    result["batch_diff"] = max(diff(out, plain_out), diff(t, plain_t))
    # per-member inputs over members and trials
    inp_e = jnp.broadcast_to(inp, (4,) + inp.shape)
    out, _ = run(sharded, shard_batch(inp_e, by_members, per_member=True), keys)
    result["per_member_diff"] = diff(out, plain_out)

    with pytest.raises(MRNNConfigError, match=r"'members' axis has 2 devices, which does not divide E = 3 members"):
        mrnn_jax.Ensemble.from_seeds(spec, [0, 1, 2]).shard(by_members)
    with pytest.raises(MRNNConfigError, match=r"'batch' axis has 2 devices, which does not divide the trial axis .*\(3, 6, 2\)"):
        shard_batch(inp[:3], by_batch, per_member=False)
    with pytest.raises(MRNNConfigError, match=r"members x batch must equal the number of devices, 2; got members = 2, batch = 2"):
        mesh(members=2, batch=2)
    result["errors_checked"] = True
    print(json.dumps(result))
''')


@pytest.fixture(scope="module")
def two_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "backends"),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sharded_over_members_equals_unsharded(two_devices):
    assert two_devices["member_leaf_devices"] == 2
    assert two_devices["member_shard_shape"] == [2, 8, 8]  # two members per device
    assert two_devices["members_out_shards"] == [2, 4, 6, 8]
    assert two_devices["members_diff"] <= 1e-12


def test_sharded_over_trials_equals_unsharded(two_devices):
    assert two_devices["batch_out_shards"] == [4, 2, 6, 8]  # two trials per device
    assert two_devices["batch_diff"] <= 1e-12
    assert two_devices["per_member_diff"] <= 1e-12


def test_a_mesh_that_does_not_divide_is_refused(two_devices):
    assert two_devices["errors_checked"]

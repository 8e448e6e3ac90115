"""mrnn_jax.train.train(ensemble, ..., mesh=...): the members (or trials) split over two
devices train to the losses and arrays of the run without a mesh (float64, atol 1e-12 /
rtol 1e-10: the sharded matmuls may sum in another order); a mesh that does not divide
the members or the batch, or a mesh for a single model, is refused before any work.

The devices are two host-platform CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), which must be set before
JAX starts: the checks run in a fresh Python process.
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
    import json, os, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import numpy as np
    import optax
    import pytest

    import mrnn_core
    from mrnn_core import MRNNConfigError
    from mrnn_core.tasks import make_task
    from mrnn_jax import Ensemble, Readout, mRNN
    from mrnn_jax.ensemble import mesh
    from mrnn_jax.train import train

    assert len(jax.devices()) == 2, jax.devices()
    run_root = sys.argv[1]
    spec = (mrnn_core.NetworkSpec().with_recurrent_region("ctx", 6).with_input_region("u", 3)
            .with_recurrent_connection("ctx", "ctx").with_input_connection("u", "ctx"))
    dyn = mrnn_core.Dynamics(kind="leaky", activation="tanh", tau=50.0, noise_level_act=0.1)
    models = [mRNN.from_checkpoint(mrnn_core.Checkpoint.initialise(spec, dyn, s)) for s in (1, 2, 3, 4)]
    ens = Ensemble.from_models(models)
    readouts = [Readout(m, "ctx", 3, seed=10 + e) for e, m in enumerate(models)]
    task = make_task("flip_flop", steps=8, p_pulse=0.2, dtype="float64")
    optimiser = optax.chain(optax.clip_by_global_norm(0.05), optax.adam(0.01))
    settings = dict(readout=readouts, optimizer=optimiser, steps=3, batch_size=4, seed=5,
                    progress=False)

    def diff(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))

    result = {}
    plain = train(ens, task, **settings)
    for name, grid in (("members", mesh(members=2)), ("batch", mesh(members=1, batch=2))):
        got = train(ens, task, mesh=grid, run_dir=os.path.join(run_root, name), **settings)
        result[name + "_devices"] = len(got.model.model.W_rec.sharding.device_set)
        result[name + "_history_diff"] = float(np.max(np.abs(got.member_history - plain.member_history)))
        result[name + "_model_diff"] = diff(got.model, plain.model)
        result[name + "_readout_diff"] = diff(got.readout, plain.readout)
    # its checkpoint holds the members it trained; resuming under the mesh goes on exactly
    folder = train(ens, task, mesh=mesh(members=2), run_dir=os.path.join(run_root, "members"),
                   resume=True, **settings).last_checkpoint
    loaded = Ensemble.from_checkpoints(mrnn_core.training.member_network_paths(folder, 4))
    result["checkpoint_diff"] = diff(eqx.filter(loaded, eqx.is_array),
                                     eqx.filter(plain.model, eqx.is_array))
    longer = dict(settings, steps=5)
    resumed = train(ens, task, mesh=mesh(members=2), run_dir=os.path.join(run_root, "members"),
                    resume=True, **longer)
    straight = train(ens, task, **longer)
    result["resumed_diff"] = max(diff(resumed.model, straight.model),
                                 float(np.max(np.abs(resumed.member_history - straight.member_history))))
    result["member_shard_shape"] = list(
        train(ens, task, mesh=mesh(members=2), **settings).model.model.W_rec
        .addressable_shards[0].data.shape)

    before = sorted(os.listdir(run_root))
    with pytest.raises(MRNNConfigError, match=r"mesh: its 'members' axis has 2 devices, which does not divide E = 3 members"):
        train(Ensemble.from_models(models[:3]), task, mesh=mesh(members=2),
              run_dir=os.path.join(run_root, "refused"), **dict(settings, readout=readouts[:3]))
    with pytest.raises(MRNNConfigError, match=r"mesh: its 'batch' axis has 2 devices, which does not divide batch_size = 3"):
        train(ens, task, mesh=mesh(members=1, batch=2), run_dir=os.path.join(run_root, "refused"),
              **dict(settings, batch_size=3))
    with pytest.raises(MRNNConfigError, match=r"mesh: expected None for a single model .* got a mesh for a mRNN"):
        train(models[0], task, mesh=mesh(members=2), run_dir=os.path.join(run_root, "refused"),
              **dict(settings, readout=readouts[0]))
    with pytest.raises(MRNNConfigError, match=r"mesh: expected a jax.sharding.Mesh .* got int"):
        train(ens, task, mesh=2, **settings)
    result["refused_without_work"] = sorted(os.listdir(run_root)) == before
    print(json.dumps(result))
''')

ATOL = 1e-12


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "backends"),
                                         env.get("PYTHONPATH", "")])
    runs = tmp_path_factory.mktemp("mesh_runs")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT, str(runs)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("axis", ["members", "batch"])
def test_training_over_a_mesh_equals_training_without(two_devices, axis):
    assert two_devices[f"{axis}_devices"] == 2
    assert two_devices[f"{axis}_history_diff"] <= ATOL
    assert two_devices[f"{axis}_model_diff"] <= ATOL
    assert two_devices[f"{axis}_readout_diff"] <= ATOL


def test_a_run_over_a_mesh_checkpoints_and_resumes(two_devices):
    assert two_devices["checkpoint_diff"] <= ATOL
    assert two_devices["resumed_diff"] <= ATOL


def test_members_are_split_over_the_devices(two_devices):
    assert two_devices["member_shard_shape"] == [2, 6, 6]  # two members per device


def test_a_mesh_that_does_not_fit_is_refused_before_any_work(two_devices):
    assert two_devices["refused_without_work"]

"""Test-session set-up shared by every test folder.

- Hypothesis profile from ``MRNN_HYPOTHESIS_PROFILE`` (``dev`` default,
  ``ci`` in CI, ``thorough`` for 10x the examples).
- JAX runs in float64 (equivalence tests compare at 1e-10).
- Both backends are imported here on purpose: a missing backend is a failed
  suite, never a silently smaller one.
- The ``slow`` marker (see :func:`pytest_collection_modifyitems`), so that
  ``pytest -m "not slow"`` is a fast subset for the edit-test loop; CI runs
  everything.
"""

from pathlib import Path

import jax
import pytest
import torch  # noqa: F401

from mrnn_core.testing import register_profiles

jax.config.update("jax_enable_x64", True)
PROFILE = register_profiles()


def pytest_report_header(config):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [f"hypothesis profile: {PROFILE}", f"torch devices under test: {', '.join(devices)}"]


_TESTS = Path(__file__).parent

SLOW_FOLDERS = ("equivalence", "examples", "jax", "sweep")
"""Folders whose every test is slow: the cross-backend property suite (27 min
under the ci profile on the shared, loaded 2-core machine), the example
scripts, the JAX tests (each compiles programs: 30 min for the folder
there), and the sweeps (each starts Ray and trial workers)."""

SLOW_TESTS = {
    # Measured with --durations on the same loaded machine (seconds there).
    "core/test_isolation.py": ("test_importing_every_core_module_loads_no_framework",),  # 4.6, subprocess
    "torch/test_torch_building.py": (
        "test_finalising_fills_every_block_and_connections_follow_the_weights",),  # 14.5
    "torch/test_torch_flipflop.py": ("test_small_ei_network_learns_three_bit_flip_flop",),  # 8.0
    "torch/test_torch_fast_paths.py": (
        "test_gradcheck_of_the_fused_recurrence",  # 3.5 to 7.6 each
        "test_every_mode_matches_the_reference",  # 4.8
        "test_fused_backward_matches_autograd_through_the_loop"),  # 3.0
    "analysis/test_analysis_equivalence.py": None,  # torch against JAX: 9 to 23 each
    "analysis/test_analysis_flipflop_example.py": None,  # 120, trains the example
    "analysis/test_analysis_bad_inputs.py": ("test_jax_states_work_in_either_backend",),  # 26
    "bench/test_benchmark_smoke.py": None,  # 180 and 137, run the benchmarks
    "bench/test_gpu_check.py": None,  # runs scripts/gpu_check.sh
    # Subprocesses killed or launched on purpose: seconds each, however small the work.
    "core/test_atomic_saves.py": None,
    "torch/test_torch_resumable_training.py": (
        "test_killed_at_random_points_and_resumed_equals_an_uninterrupted_run",),
    "torch/test_distributed.py": None,
    "torch/test_ensemble_benchmark.py": None,
    "torch/test_ensemble_properties.py": None,
}
"""Other slow tests: file (under tests/) -> test functions (None: all of them).
Analysis tests run with the JAX finder (the ``analysis`` fixture's ``jax``
case) are slow too: each compiles its search."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        try:
            rel = path.relative_to(_TESTS.resolve()).as_posix()
        except ValueError:
            continue
        names = SLOW_TESTS.get(rel, ())
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (rel.split("/", 1)[0] in SLOW_FOLDERS or names is None
                or getattr(item, "originalname", item.name) in names
                or (rel.startswith("analysis/") and params.get("analysis") == "jax")):
            item.add_marker(pytest.mark.slow)

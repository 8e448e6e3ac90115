"""Test-session set-up shared by every test folder.

- Hypothesis profile from ``MRNN_HYPOTHESIS_PROFILE`` (``dev`` default,
  ``ci`` in CI, ``thorough`` for 10x the examples).
- JAX runs in float64 (equivalence tests compare at 1e-10).
- Both backends are imported here on purpose: a missing backend is a failed
  suite, never a silently smaller one.
"""

import jax
import torch  # noqa: F401

from mrnn_core.testing import register_profiles

jax.config.update("jax_enable_x64", True)
PROFILE = register_profiles()


def pytest_report_header(config):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [f"hypothesis profile: {PROFILE}", f"torch devices under test: {', '.join(devices)}"]

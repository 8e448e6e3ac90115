"""mrnn_core is numpy-only: importing any of its modules never loads a framework.

The test session itself has torch and jax loaded (``tests/conftest.py``), so
each check runs in a fresh interpreter.
"""

import json
import subprocess
import sys
from pathlib import Path

import mrnn_core

FRAMEWORKS = ("torch", "jax", "jaxlib", "equinox", "optax")

PACKAGE_DIR = Path(mrnn_core.__file__).parent


def core_modules():
    """Every importable module of mrnn_core, found from its .py files."""
    names = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        names.append("mrnn_core" if path.stem == "__init__" else f"mrnn_core.{path.stem}")
    return names


def loaded_after_importing(modules):
    """The top-level package names in ``sys.modules`` of a fresh interpreter
    after it imports ``modules``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_module_list_covers_the_whole_package():
    modules = core_modules()
    # Guards against a glob that silently finds nothing (a test that cannot fail).
    for expected in ("mrnn_core", "mrnn_core.spec", "mrnn_core.config",
                     "mrnn_core.connectivity", "mrnn_core.init", "mrnn_core.checkpoint",
                     "mrnn_core.reference", "mrnn_core.testing"):
        assert expected in modules


def test_importing_every_core_module_loads_no_framework():
    loaded = loaded_after_importing(core_modules())
    assert "mrnn_core" in loaded
    assert "hypothesis" in loaded  # mrnn_core.testing was really imported
    assert not loaded & set(FRAMEWORKS), f"frameworks imported: {sorted(loaded & set(FRAMEWORKS))}"


def test_plain_import_needs_neither_frameworks_nor_hypothesis():
    loaded = loaded_after_importing(["mrnn_core"])
    assert not loaded & (set(FRAMEWORKS) | {"hypothesis"})

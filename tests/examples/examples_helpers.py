"""Shared checks of tests/examples."""

import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def assert_png(path):
    """``path`` is a PNG file that matplotlib reads back as a non-trivial image."""
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50, image.shape


def run(cwd, script, *args, module=None):
    """Run ``examples/<script>`` (or ``python -m <module> examples/<script>``) in ``cwd``;
    return its stdout after checking it exited 0."""
    command = [sys.executable] + (["-m", module] if module else []) + [str(EXAMPLES / script)]
    done = subprocess.run(command + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def number_after(pattern, text):
    match = re.search(pattern + r"\s*([0-9.]+e[+-]?[0-9]+|[0-9.]+)", text)
    assert match, f"no {pattern!r} in:\n{text}"
    return float(match.group(1))

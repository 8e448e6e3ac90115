"""Examples called the way a notebook calls them: ``main([...])`` in the kernel's process.

A notebook kernel's ``sys.argv`` holds its own arguments (``-f kernel.json``) and
its matplotlib backend draws inline: an example must parse only the list it is
given, and drawing its figures to files must neither switch the backend nor leave
pyplot figures open.
"""

import importlib.util
import sys

import matplotlib
import matplotlib.pyplot as plt

from .examples_helpers import EXAMPLES, assert_png


def load(script):
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_runs_from_a_notebook_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", str(tmp_path / "kernel.json")])
    backend, figures = matplotlib.get_backend(), plt.get_fignums()
    load("quickstart.py").main(["--steps", "20", "--out", str(tmp_path)])
    assert "max |difference|" in capsys.readouterr().out
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figures  # figures written to files are not left in pyplot
    assert_png(tmp_path / "quickstart_rates.png")
    assert_png(tmp_path / "quickstart_connectivity.png")


def test_build_three_ways_takes_its_arguments_from_the_call(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json"])
    load("build_three_ways.py").main([])
    assert "identical to the config-built model: True" in capsys.readouterr().out

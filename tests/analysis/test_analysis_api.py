"""Both backends export the same analysis names with the same signatures."""

import inspect
import subprocess
import sys

import mrnn_jax.analysis
import mrnn_torch.analysis


def test_both_backends_export_the_same_names():
    assert sorted(mrnn_torch.analysis.__all__) == sorted(mrnn_jax.analysis.__all__)
    for name in ("find_fixed_points", "jacobian", "jacobian_blocks", "linearise", "flow_field"):
        assert name in mrnn_torch.analysis.__all__


def test_the_functions_have_the_same_signatures():
    for name in mrnn_torch.analysis.__all__:
        a, b = getattr(mrnn_torch.analysis, name), getattr(mrnn_jax.analysis, name)
        if inspect.isclass(a):
            assert a is b, name  # the records are shared, from mrnn_core.analysis
        else:
            assert inspect.signature(a) == inspect.signature(b), name


def test_plotting_imports_matplotlib_only_when_drawing():
    script = ("import sys, mrnn_core.analysis, mrnn_core.plotting\n"
              "print('matplotlib' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"

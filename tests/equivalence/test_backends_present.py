"""A missing backend fails the suite: it never silently shrinks."""

import importlib


def test_both_backends_import_and_expose_models():
    for name in ("mrnn_torch", "mrnn_jax"):
        module = importlib.import_module(name)
        for cls in ("mRNN", "ElmanmRNN", "simulate", "effective_weights"):
            assert hasattr(module, cls), f"{name} lacks {cls}"

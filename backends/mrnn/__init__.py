"""The ``mrnn`` command's package: ``python -m mrnn sweep sweep.toml`` runs :mod:`mrnn_sweep`'s CLI.

The library itself lives in ``mrnn_core``, ``mrnn_torch`` and ``mrnn_jax``;
this package holds only the command-line entry point.
"""

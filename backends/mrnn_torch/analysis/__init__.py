"""Dynamical-systems analysis of ``mrnn_torch`` models: fixed points, Jacobians,
linearisation and flow fields.

Every function takes a model (or a :class:`mrnn_core.Checkpoint`, or a
mapping of named arrays with its ``dynamics``), works in float64 on detached
copies and returns numpy records from :mod:`mrnn_core.analysis`; the model's
parameters, ``requires_grad`` flags, buffers and training mode are left
exactly as they were. :mod:`mrnn_jax.analysis` is the same code
(:mod:`mrnn_core.analysis_driver`), bound to JAX; it has the same names and
signatures and gives the same numbers.
"""

from mrnn_core.analysis import FixedPoints, FlowField, JacobianBlocks, Linearisation  # noqa: F401
from mrnn_core.analysis_driver import FUNCTION_NAMES, RECORD_NAMES, bind

from ._backend import TorchBackend as _Backend

find_fixed_points, jacobian, jacobian_blocks, linearise, flow_field = bind(_Backend())

__all__ = [*FUNCTION_NAMES, *RECORD_NAMES]

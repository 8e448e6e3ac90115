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

from mrnn_core.analysis import FixedPoints as FixedPoints
from mrnn_core.analysis import FlowField as FlowField
from mrnn_core.analysis import JacobianBlocks as JacobianBlocks
from mrnn_core.analysis import Linearisation as Linearisation

from mrnn_core.analysis_driver import AnalysisFunctions as _AnalysisFunctions

from ._backend import TorchBackend as _TorchBackend

_FUNCTIONS = _AnalysisFunctions(_TorchBackend())
find_fixed_points = _FUNCTIONS.find_fixed_points
jacobian = _FUNCTIONS.jacobian
jacobian_blocks = _FUNCTIONS.jacobian_blocks
linearise = _FUNCTIONS.linearise
flow_field = _FUNCTIONS.flow_field

__all__ = [
    "find_fixed_points", "jacobian", "jacobian_blocks", "linearise", "flow_field",
    "FixedPoints", "FlowField", "JacobianBlocks", "Linearisation",
]

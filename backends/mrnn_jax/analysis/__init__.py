"""Dynamical-systems analysis of ``mrnn_jax`` models: fixed points, Jacobians,
linearisation and flow fields.

Every function takes a model (or a :class:`mrnn_core.Checkpoint`, or a
mapping of named arrays with its ``dynamics``), works in float64 (inside
``jax.enable_x64``) on copies of its arrays and returns numpy records from
:mod:`mrnn_core.analysis`. The fixed-point search is jitted and vmapped over
its initial states. :mod:`mrnn_torch.analysis` has the same names and
signatures and gives the same numbers.
"""

from mrnn_core.analysis import FixedPoints as FixedPoints
from mrnn_core.analysis import FlowField as FlowField
from mrnn_core.analysis import JacobianBlocks as JacobianBlocks
from mrnn_core.analysis import Linearisation as Linearisation

from mrnn_core.analysis_driver import AnalysisFunctions as _AnalysisFunctions

from ._backend import JaxBackend as _JaxBackend

_FUNCTIONS = _AnalysisFunctions(_JaxBackend())
find_fixed_points = _FUNCTIONS.find_fixed_points
jacobian = _FUNCTIONS.jacobian
jacobian_blocks = _FUNCTIONS.jacobian_blocks
linearise = _FUNCTIONS.linearise
flow_field = _FUNCTIONS.flow_field

__all__ = [
    "find_fixed_points", "jacobian", "jacobian_blocks", "linearise", "flow_field",
    "FixedPoints", "FlowField", "JacobianBlocks", "Linearisation",
]

"""Dynamical-systems analysis of ``mrnn_torch`` models: fixed points, Jacobians,
linearisation and flow fields.

Every function takes a model (or a :class:`mrnn_core.Checkpoint`, or a
mapping of named arrays with its ``dynamics``), works in float64 on detached
copies and returns numpy records from :mod:`mrnn_core.analysis`; the model's
parameters, ``requires_grad`` flags, buffers and training mode are left
exactly as they were. :mod:`mrnn_jax.analysis` has the same names and
signatures and gives the same numbers.
"""

from mrnn_core.analysis import FixedPoints as FixedPoints
from mrnn_core.analysis import FlowField as FlowField
from mrnn_core.analysis import JacobianBlocks as JacobianBlocks
from mrnn_core.analysis import Linearisation as Linearisation

from ._fixed_points import find_fixed_points as find_fixed_points
from ._local import flow_field as flow_field
from ._local import jacobian as jacobian
from ._local import jacobian_blocks as jacobian_blocks
from ._local import linearise as linearise

__all__ = [
    "find_fixed_points", "jacobian", "jacobian_blocks", "linearise", "flow_field",
    "FixedPoints", "FlowField", "JacobianBlocks", "Linearisation",
]

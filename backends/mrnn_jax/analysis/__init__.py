"""Dynamical-systems analysis of ``mrnn_jax`` models: fixed points, Jacobians,
linearisation and flow fields.

Every function takes a model (or a :class:`mrnn_core.Checkpoint`, or a
mapping of named arrays with its ``dynamics``), works in float64 (inside
``jax.enable_x64``) on copies of its arrays and returns numpy records from
:mod:`mrnn_core.analysis`. The fixed-point search is jitted and vmapped over
its initial states. :mod:`mrnn_torch.analysis` has the same names and
signatures and gives the same numbers.
"""

from mrnn_core.analysis import FixedPoints, FlowField, JacobianBlocks, Linearisation  # noqa: F401
from mrnn_core.analysis_driver import FUNCTION_NAMES, RECORD_NAMES, bind

from ._backend import JaxBackend as _Backend

find_fixed_points, jacobian, jacobian_blocks, linearise, flow_field = bind(_Backend())

__all__ = [*FUNCTION_NAMES, *RECORD_NAMES]

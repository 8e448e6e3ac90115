"""mrnn_jax: the JAX/equinox backend.

The primary interface is pure: :func:`simulate` (one ``lax.scan`` over
:func:`step`) takes a mapping of named arrays and a static
:class:`mrnn_core.Dynamics`, and works under ``jit``, ``vmap`` and ``grad``.
The equinox Modules :class:`mRNN` (leaky) and :class:`ElmanmRNN` hold those
arrays as a pytree and call it.

``__all__`` lists exactly the names :mod:`mrnn_torch` exports too. The one
JAX-only helper, :func:`trainable_filter` (which arrays an optimiser should
train, for ``eqx.partition``), is importable from here but not in ``__all__``.
"""

from mrnn_core import Checkpoint as Checkpoint
from mrnn_core import Dynamics as Dynamics
from mrnn_core import MRNNConfigError as MRNNConfigError
from mrnn_core.api import BACKEND_API

from ._activations import get_activation as get_activation
from ._functional import effective_weights as effective_weights
from ._functional import step as step
from ._model import ElmanmRNN as ElmanmRNN
from ._model import mRNN as mRNN
from ._model import mRNNBase as mRNNBase
from . import losses as losses
from . import ensemble as ensemble
from .ensemble import Ensemble as Ensemble
from .readout import Readout as Readout
from ._model import trainable_filter as trainable_filter
from ._regions import initial_condition as initial_condition
from ._regions import projection as projection
from ._regions import region_activity as region_activity
from ._regions import region_indices as region_indices
from ._regions import tonic_input as tonic_input
from ._regions import weight_subset as weight_subset
from ._simulate import input_drive as input_drive
from ._simulate import simulate as simulate

__all__ = list(BACKEND_API)

"""mrnn_torch: the PyTorch backend, keeping mRNNTorch's API on the shared core.

Model classes :class:`mRNN` (leaky), :class:`ElmanmRNN` and :class:`mRNNBase`;
pure functions of tensors (:func:`simulate`, :func:`step`, :func:`input_drive`,
...) that the classes call; region helpers on a :class:`mrnn_core.Connectivity`.

``__all__`` lists exactly the names :mod:`mrnn_jax` exports too. The region
classes of mRNNTorch (``Region``, ``RecurrentRegion``, ``InputRegion``,
``Connection``) are torch-only: importable from here and from
:mod:`mrnn_torch.region`, but not in ``__all__``.
"""

from mrnn_core import Checkpoint as Checkpoint
from mrnn_core import Dynamics as Dynamics
from mrnn_core import MRNNConfigError as MRNNConfigError
from mrnn_core.api import BACKEND_API

from . import region as region
from ._base import mRNNBase as mRNNBase
from ._elman import ElmanmRNN as ElmanmRNN
from ._functional import effective_weights as effective_weights
from ._functional import get_activation as get_activation
from ._functional import initial_condition as initial_condition
from ._functional import input_drive as input_drive
from ._functional import projection as projection
from ._functional import region_activity as region_activity
from ._functional import region_indices as region_indices
from ._functional import simulate as simulate
from ._functional import step as step
from ._functional import tonic_input as tonic_input
from ._functional import weight_subset as weight_subset
from ._leaky import mRNN as mRNN
from .ensemble import Ensemble as Ensemble
from . import losses as losses
from .readout import Readout as Readout
from .region import Connection as Connection
from .region import InputRegion as InputRegion
from .region import RecurrentRegion as RecurrentRegion
from .region import Region as Region

__all__ = list(BACKEND_API)

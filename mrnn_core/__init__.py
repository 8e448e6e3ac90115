"""mrnn_core: the backend-neutral, validated description of a multi-regional RNN.

numpy only: importing it never imports torch or jax. See docs/semantics.md for
the numbers every backend agrees on.
"""

from .checkpoint import FORMAT_VERSION as FORMAT_VERSION
from .checkpoint import Checkpoint as Checkpoint
from .config import load_config as load_config
from .config import save_config as save_config
from .config import spec_from_dict as spec_from_dict
from .config import spec_to_dict as spec_to_dict
from .connectivity import Connectivity as Connectivity
from .connectivity import Streams as Streams
from .connectivity import build_connectivity as build_connectivity
from .connectivity import connectivity_from_arrays as connectivity_from_arrays
from .connectivity import input_structure as input_structure
from .connectivity import recurrent_structure as recurrent_structure
from .connectivity import sparse_block_mask as sparse_block_mask
from .connectivity import connection_block_mask as connection_block_mask
from .connectivity import learnable_masks as learnable_masks
from .connectivity import learns_tau as learns_tau
from .connectivity import trainable_masks as trainable_masks
from .connectivity import unit_tau as unit_tau
from .describe import describe as describe
from .dynamics import ACTIVATIONS as ACTIVATIONS
from .dynamics import Dynamics as Dynamics
from .dynamics import check_activation as check_activation
from .dynamics import input_noise_constant as input_noise_constant
from .dynamics import uniform_alpha as uniform_alpha
from .errors import MRNNConfigError as MRNNConfigError
from .errors import MRNNFileError as MRNNFileError
from .errors import MRNNStateDictError as MRNNStateDictError
from .errors import NonFiniteStateError as NonFiniteStateError
from .finite import NonFinite as NonFinite
from .finite import check_finite as check_finite
from .finite import first_nonfinite as first_nonfinite
from .init import PARAM_NAMES as PARAM_NAMES
from .init import balance_ei as balance_ei
from .init import effective_weight as effective_weight
from .init import init_input_weight as init_input_weight
from .init import init_recurrent_weight as init_recurrent_weight
from .init import initial_params as initial_params
from .init import scale_to_spectral_radius as scale_to_spectral_radius
from .init import spectral_radius as spectral_radius
from .shapes import CallShape as CallShape
from .shapes import check_batch_size as check_batch_size
from .shapes import check_call_shapes as check_call_shapes
from .shapes import check_input_dtype as check_input_dtype
from .shapes import numpy_input as numpy_input
from .spec import SIGN_ALIASES as SIGN_ALIASES
from .spec import ConnectionSpec as ConnectionSpec
from .spec import InputRegionSpec as InputRegionSpec
from .spec import NetworkSpec as NetworkSpec
from .spec import RecurrentRegionSpec as RecurrentRegionSpec
from .spec import ROUTES as ROUTES
from .spec import ei_area_regions as ei_area_regions
from .readout import ReadoutSpec as ReadoutSpec
from .readout import apply_readout as apply_readout
from .readout import init_readout as init_readout
from .readout import readout_units as readout_units
from . import activations as activations
from . import losses as losses
from . import reference as reference
from .tasks import flip_flop as flip_flop

__version__ = "0.1.0"

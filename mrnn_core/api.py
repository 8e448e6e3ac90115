"""The public names both backends export at their top level (``mrnn_torch``, ``mrnn_jax``).

One list, so the two backends cannot drift apart in what they offer; each
backend's ``__all__`` is this list plus what only it has.
"""

BACKEND_API = (
    "mRNN", "ElmanmRNN", "mRNNBase",
    "MRNNConfigError", "Dynamics", "Checkpoint",
    "get_activation", "effective_weights", "input_drive", "step", "simulate",
    "region_indices", "region_activity", "projection", "weight_subset",
    "tonic_input", "initial_condition",
    "Readout", "losses", "Ensemble",
)

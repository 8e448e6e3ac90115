"""A small sweep definition the sweep tests start from (dicts, as a sweep file holds them)."""

import copy

NETWORK = {
    "recurrent_regions": [{"name": "exc", "num_units": 8, "sign": "pos"},
                          {"name": "inh", "num_units": 4, "sign": "neg"}],
    "input_regions": [{"name": "bits", "num_units": 2, "sign": "pos"}],
    "recurrent_connections": [{"src_region": "exc", "dst_region": "exc", "sparsity": 0.5},
                              {"src_region": "exc", "dst_region": "inh"},
                              {"src_region": "inh", "dst_region": "exc"}],
    "input_connections": [{"src_region": "bits", "dst_region": "exc"}],
}

SWEEP = {
    "name": "small",
    "backend": "torch",
    "network": {"config": NETWORK, "seed": 0,
                "dynamics": {"activation": "tanh", "tau": 50.0, "noise_level_act": 0.05,
                             "noise_level_inp": 0.0},
                "readout": {"regions": ["exc"]}},
    "task": {"name": "flip_flop", "params": {"steps": 20, "n_bits": 2, "p_pulse": 0.1}},
    "training": {"steps": 60, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 20},
    "resources": {"cpus_per_trial": 1, "max_failures": 1},
}


def small_sweep(**sections):
    """A deep copy of :data:`SWEEP`; each keyword replaces (or, with None, removes) a top-level key."""
    sweep = copy.deepcopy(SWEEP)
    for key, value in sections.items():
        if value is None:
            sweep.pop(key, None)
        else:
            sweep[key] = value
    return sweep

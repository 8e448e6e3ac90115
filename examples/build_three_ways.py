"""Build one network three ways (JSON, code, mixed), as mRNNTorch's README does.

    python examples/build_three_ways.py

The network: an excitatory and an inhibitory cortical population under one
parent ("ctx"), a thalamic population, and a cue input. All three routes give
the same spec, so with the same seed they give identical weights and masks.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mrnn_torch import mRNN

CONFIG = {
    "__comment": "regions and input connections here; recurrent wiring added in code below",
    "recurrent_regions": [
        {"name": "ctx_exc", "num_units": 16, "sign": "exc", "parent_region": "ctx"},
        {"name": "ctx_inh", "num_units": 4, "sign": "inhib", "parent_region": "ctx"},
        {"name": "thal", "num_units": 8, "sign": "exc", "base_firing": 0.1},
    ],
    "input_regions": [{"name": "cue", "num_units": 2}],
    "input_connections": [{"src_region": "cue", "dst_region": "ctx_exc"}],
}
WIRING = [("ctx_exc", "ctx_exc", 0.5), ("ctx_exc", "ctx_inh", None), ("ctx_inh", "ctx_exc", None),
          ("ctx_exc", "thal", None), ("thal", "ctx_exc", 0.25)]


class FromConfig(nn.Module):
    """1. Everything in the config (regions and every connection)."""

    def __init__(self, seed):
        super().__init__()
        config = dict(CONFIG, recurrent_connections=[
            {"src_region": s, "dst_region": d, "sparsity": p} for s, d, p in WIRING])
        self.mrnn = mRNN(config, device="cpu", seed=seed)


class ByHand(nn.Module):
    """2. Every region and connection added in code, then finalised."""

    def __init__(self, seed):
        super().__init__()
        self.mrnn = mRNN(device="cpu", seed=seed)
        for region in CONFIG["recurrent_regions"]:
            self.mrnn.add_recurrent_region(**region)
        self.mrnn.add_input_region("cue", 2)
        for src, dst, sparsity in WIRING:
            self.mrnn.add_recurrent_connection(src, dst, sparsity=sparsity)
        self.mrnn.add_input_connection("cue", "ctx_exc")
        self.mrnn.finalize_connectivity()


class Mixed(nn.Module):
    """3. Regions and input wiring from the config, recurrent wiring in code."""

    def __init__(self, seed):
        super().__init__()
        self.mrnn = mRNN(CONFIG, device="cpu", seed=seed, config_finalize=False)
        for src, dst, sparsity in WIRING:
            self.mrnn.add_recurrent_connection(src, dst, sparsity=sparsity)
        self.mrnn.finalize_connectivity()


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    models = [cls(seed=0).mrnn for cls in (FromConfig, ByHand, Mixed)]
    print(models[0])
    reference = models[0].state_dict()
    for name, model in zip(("by hand", "mixed"), models[1:]):
        same = all(torch.equal(reference[k], v) for k, v in model.state_dict().items())
        print(f"{name:>8}: identical to the config-built model: {same}")
        assert same
    W = models[0].get_projection("ctx", "thal")
    print(f"thal -> ctx projection: {tuple(W.shape)} (rows: ctx_exc then ctx_inh)")


if __name__ == "__main__":
    main()

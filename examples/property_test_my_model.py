"""Property-test your own model with mrnn's hypothesis strategies.

Run:  .venv/bin/python -m pytest examples/property_test_my_model.py -q

``MyModel`` is the kind of wrapper users write: an mRNN plus a linear readout
of one region. Hypothesis draws networks (regions, signs, parents, sparse and
zero connections, inputs) and dynamics settings; the properties check the
wrapper against mrnn's numpy reference and a shape contract.
"""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mrnn_core
from mrnn_core.testing import dynamics_settings, network_specs
from mrnn_torch import ElmanmRNN, mRNN


class MyModel(torch.nn.Module):
    def __init__(self, spec, dynamics, seed, n_out=2):
        super().__init__()
        cls = mRNN if dynamics.kind == "leaky" else ElmanmRNN
        options = dict(activation=dynamics.activation, rec_constrained=dynamics.rec_constrained,
                       inp_constrained=dynamics.inp_constrained, device="cpu", seed=seed,
                       dtype=torch.float64)
        if dynamics.kind == "leaky":
            options.update(dt=dynamics.dt, tau=dynamics.tau)
        self.rnn = cls(spec, **options)
        self.rnn.finalize_connectivity()  # a side the spec leaves unwired is still open
        self.readout_region = spec.recurrent_names[-1]
        n = spec.recurrent_regions[-1].num_units
        self.readout = torch.nn.Linear(n, n_out, dtype=torch.float64)

    def forward(self, inp):
        state = self.rnn.batched_initial_condition(inp.shape[0])
        if isinstance(self.rnn, mRNN):
            _, hs = self.rnn(inp, *state)
        else:
            hs = self.rnn(inp, state)
        return self.readout(self.rnn.get_region_activity(hs, self.readout_region)), hs


@settings(max_examples=20, deadline=None)
@given(spec=network_specs(max_units=5), dynamics=dynamics_settings(batch_first=True),
       seed=st.integers(0, 2**31), steps=st.integers(1, 8))
def test_my_model_runs_the_documented_network(spec, dynamics, seed, steps):
    model = MyModel(spec, dynamics, seed)
    inp = torch.randn(2, steps, spec.input_size, dtype=torch.float64)
    out, hs = model(inp)
    assert out.shape == (2, steps, 2)

    # the same network through mrnn's numpy reference simulator
    ckpt = model.rnn.to_checkpoint()
    state = model.rnn.initial_condition.detach().numpy()[None].repeat(2, 0)
    call = {"x0": state} if dynamics.kind == "leaky" else {"h0": state}
    expected = mrnn_core.reference.simulate(ckpt.params, ckpt.dynamics, inp.numpy(), **call)
    expected_hs = expected[1] if dynamics.kind == "leaky" else expected
    np.testing.assert_allclose(hs.detach().numpy(), expected_hs, rtol=1e-10, atol=1e-10)


if __name__ == "__main__":
    test_my_model_runs_the_documented_network()
    print("property held on every drawn network")

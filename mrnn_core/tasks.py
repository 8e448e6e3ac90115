"""Task data for training examples (numpy, seeded)."""

from __future__ import annotations

import numpy as np

from .errors import MRNNConfigError


def flip_flop(batch: int, steps: int, n_bits: int = 3, p_pulse: float = 0.05,
              seed=None, batch_first: bool = True):
    """The n-bit flip-flop task (Sussillo & Barak, 2013).

    Each input channel carries rare pulses of +1 or -1; the matching output
    must hold the sign of the channel's most recent pulse (0 before the first).

    **Arguments:**

    - `batch`, `steps`: ``B`` trials of ``T`` steps.
    - `n_bits`: number of independent channels (3 for the classic task).
    - `p_pulse`: probability of a pulse per channel and step.
    - `seed`: numpy seed; the same seed gives the same trials.
    - `batch_first`: ``[B, T, n_bits]`` if True, else ``[T, B, n_bits]``.

    **Returns:** ``(inputs, targets)``, float64 arrays of the same shape.
    """
    for name, value in (("batch", batch), ("steps", steps), ("n_bits", n_bits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise MRNNConfigError(f"flip_flop: {name} must be an integer >= 1, got {value!r}")
    if not 0.0 <= p_pulse <= 1.0:
        raise MRNNConfigError(f"flip_flop: p_pulse must be in [0, 1], got {p_pulse!r}")
    rng = np.random.default_rng(seed)
    pulse = rng.random((batch, steps, n_bits)) < p_pulse
    sign = rng.choice([-1.0, 1.0], size=(batch, steps, n_bits))
    inputs = np.where(pulse, sign, 0.0)
    targets = np.zeros_like(inputs)
    held = np.zeros((batch, n_bits))
    for t in range(steps):
        held = np.where(pulse[:, t], sign[:, t], held)
        targets[:, t] = held
    if not batch_first:
        inputs, targets = inputs.transpose(1, 0, 2), targets.transpose(1, 0, 2)
    return inputs, targets

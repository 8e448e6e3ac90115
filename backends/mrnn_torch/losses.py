"""Losses and regularisers on torch tensors, differentiable.

The functions are those of :mod:`mrnn_core.losses` (same code, names,
signatures, equations and shapes), bound to torch: results are 0-d tensors in the
dtype and on the device of the inputs. Both backends reject bad input with the same message.
"""

from mrnn_core.losses import KINDS, SIDES, bind  # noqa: F401 (KINDS, SIDES re-exported)

(mse, weight_l2, weight_l1, projection_penalty, weight_penalty, rate_l2, rate_std,
 rate_cv) = bind("torch")

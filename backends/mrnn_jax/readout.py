"""Readout: a linear map from chosen regions' rates to outputs, as an equinox Module.

The numbers are :func:`mrnn_core.readout.apply_readout`'s; the torch backend's
``mrnn_torch.readout.Readout`` computes the same from the same arrays.
"""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import MRNNConfigError, NetworkSpec
from mrnn_core import readout as core

from ._model import _Fields, _seed_from, mRNNBase


def _readout_fields(spec: NetworkSpec, readout: core.ReadoutSpec, params: dict) -> _Fields:
    """A readout's field values for ``params`` (``{"W": [O, n], "b": [O]}``, already checked)."""
    return _Fields({"weight": jnp.asarray(params["W"]),
                    "bias": jnp.asarray(params["b"]) if readout.bias else None,
                    "spec": spec, "readout_spec": readout,
                    "index": tuple(int(i) for i in core.readout_units(spec, readout))})


def _network_spec(model_or_spec) -> NetworkSpec:
    if isinstance(model_or_spec, mRNNBase):
        return model_or_spec.spec
    if isinstance(model_or_spec, NetworkSpec):
        return model_or_spec
    raise MRNNConfigError(
        f"Readout: expected an mrnn_jax model or a mrnn_core.NetworkSpec to read from, "
        f"got {type(model_or_spec).__name__}")


@final
class Readout(eqx.Module):
    """``y = hs[..., idx] @ W_eff.T + b``: outputs ``[..., O]`` from rates ``hs`` ``[..., H]``.

    ``idx`` are the units of ``regions`` (region or parent names), in
    hidden-vector order (:func:`mrnn_core.readout.readout_units`); ``W_eff =
    |weight|`` with ``dale=True`` (which also reads only excitatory regions),
    else ``weight``.

    **Arguments:** `model_or_spec` (an mrnn_jax model or a
    :class:`mrnn_core.NetworkSpec`), `regions`, `out_features` (``O``),
    `dale`, `bias`; keyword-only `key` (a PRNG key the numpy seed of the
    default weights is derived from) or `seed` (that seed: the weights then
    equal a torch ``Readout`` built with the same seed).

    **Fields:**

    - `weight` ``[O, n]``, `bias` ``[O]`` (``None`` when ``bias=False``): the
      only array leaves, so the only ones an optimiser sees.
    - `spec`, `readout_spec`, `index` (static): the network, the readout's
      :class:`mrnn_core.readout.ReadoutSpec` and ``idx`` as a tuple of ints
      (structure, fixed by the two specs, like the model's ``spec``).

    Training with optax: the trainable part is the inexact arrays, ::

        params = eqx.filter(readout, eqx.is_inexact_array)
        opt_state = optimiser.init(params)
        grads = eqx.filter_grad(loss)(readout, ...)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        readout = eqx.apply_updates(readout, updates)

    Inside a bigger pytree holding a model, use ``mrnn_jax.trainable_filter``
    (it keeps every floating-point array outside the model, so the readout's
    ``weight`` and ``bias``).
    """

    weight: jax.Array
    bias: jax.Array | None
    spec: NetworkSpec = eqx.field(static=True)
    readout_spec: core.ReadoutSpec = eqx.field(static=True)
    index: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, model_or_spec, regions, out_features: int, dale: bool = False,
                 bias: bool = True, *, key=None, seed=None):
        fields = model_or_spec
        if not isinstance(fields, _Fields):  # else from_params: the values as they are
            spec = _network_spec(model_or_spec)
            readout = core.ReadoutSpec(regions, out_features, dale, bias)
            seed = _seed_from(key, seed)
            fields = _readout_fields(spec, readout, core.init_readout(spec, readout, seed))
        for name, value in fields.values.items():
            setattr(self, name, value)

    @classmethod
    def from_params(cls, spec: NetworkSpec, readout_spec: core.ReadoutSpec, W, b=None) -> Readout:
        """A readout holding exactly ``W`` ``[O, n]`` and ``b`` ``[O]`` (numpy arrays; nothing drawn).

        In float64 (``jax_enable_x64``) the arrays are bit-identical to those given.
        """
        if not isinstance(spec, NetworkSpec):
            raise MRNNConfigError(
                f"Readout.from_params: expected a mrnn_core.NetworkSpec, got {type(spec).__name__}")
        params = core.check_readout_params(spec, readout_spec, W, b)
        return cls(_readout_fields(spec, readout_spec, params), readout_spec.regions,
                   readout_spec.out_features, readout_spec.dale, readout_spec.bias)

    @classmethod
    def from_checkpoint(cls, checkpoint) -> Readout:
        """The readout a :class:`mrnn_core.Checkpoint` holds (its ``readout`` field)."""
        readout, params = core.checkpoint_readout(checkpoint)
        return cls.from_params(checkpoint.spec, readout, params["W"], params["b"])

    def __repr__(self) -> str:
        """The text a torch ``Readout`` of the same spec prints."""
        return f"Readout({core.describe_readout(self.readout_spec, len(self.index))})"

    @property
    def effective_weight(self) -> jax.Array:
        """``W_eff`` ``[O, n]``: ``|weight|`` for a Dale readout, else ``weight``."""
        return jnp.abs(self.weight) if self.readout_spec.dale else self.weight

    def __call__(self, hs) -> jax.Array:
        """``hs`` ``[..., H]`` (any leading axes, e.g. ``[B, T, H]``) -> ``[..., O]``."""
        core.check_readout_input(self.spec.hidden_size, jnp.shape(hs))
        start, stop = self.index[0], self.index[-1] + 1
        if stop - start == len(self.index):
            read = hs[..., start:stop]
        else:
            read = jnp.take(hs, np.asarray(self.index), axis=-1)
        y = read @ self.effective_weight.T
        return y if self.bias is None else y + self.bias

    def params(self) -> dict:
        """``{"W": [O, n], "b": [O]}`` as float64 numpy copies (``b`` zero without bias)."""
        b = np.zeros(self.readout_spec.out_features) if self.bias is None else self.bias
        return {"W": np.array(self.weight, dtype=np.float64), "b": np.array(b, dtype=np.float64)}

    def add_to_checkpoint(self, checkpoint):
        """A copy of ``checkpoint`` that also holds this readout (``readout_W``, ``readout_b``).

        ``checkpoint`` must describe a network in which this readout reads the same units.
        """
        return core.checkpoint_with_readout(checkpoint, self.readout_spec, **self.params(),
                                       built_for=self.spec)


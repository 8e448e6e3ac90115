"""Equinox Modules holding a network's arrays; the dynamics are :func:`simulate`'s.

A model is a pytree: ``W_rec``, ``W_inp``, ``base_firing``, the masks, sign
matrices and ``init`` are array leaves; ``spec`` and ``dynamics`` are static.
Only ``W_rec``, ``W_inp`` and the ``learnable_bias`` entries of
``base_firing`` ever receive a gradient (the rest enter the computation
through ``jax.lax.stop_gradient``); :func:`trainable_filter` names them for
``eqx.partition``.
"""

from __future__ import annotations

import abc
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from mrnn_core import (PARAM_NAMES, Checkpoint, Connectivity, Dynamics, MRNNConfigError,
                       NetworkSpec, connectivity_from_arrays, describe, load_config)

from ._activations import get_activation
from ._functional import effective_weights
from ._regions import layout, projection, region_activity, weight_subset
from ._simulate import simulate


def _seed_from(key, seed):
    """The numpy seed of the structure and weight draws: ``seed``, or one derived from ``key``."""
    if key is not None and seed is not None:
        raise MRNNConfigError(
            "key, seed: pass one of them (seed fixes the numpy draws, key derives a seed), got both")
    if seed is not None:
        return seed
    if key is None:
        raise MRNNConfigError(
            "key: expected a PRNG key (e.g. jax.random.key(0)) or an integer seed= to draw "
            "the masks and initial weights from, got neither")
    if isinstance(key, numbers.Number) or not hasattr(key, "dtype"):
        raise MRNNConfigError(
            f"key: expected a PRNG key such as jax.random.key(0), got {key!r}; "
            f"pass an integer as seed= instead")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key, dtype=np.uint32).ravel()]


class mRNNBase(eqx.Module):
    """What the leaky :class:`mRNN` and :class:`ElmanmRNN` share: arrays, structure, helpers.

    **Fields** (the names of :data:`mrnn_core.PARAM_NAMES`):

    - `W_rec` ``[H, H]``, `W_inp` ``[H, I]``: raw weights (trained).
    - `base_firing` ``[H]``: the baseline ``b``; only regions with
      ``learnable_bias=True`` train their slice.
    - `W_rec_mask`, `W_rec_sign_matrix` ``[H, H]``, `W_inp_mask`,
      `W_inp_sign_matrix` ``[H, I]``, `init` ``[H]``: never trained.
    - `spec`, `dynamics` (static): the :class:`mrnn_core.NetworkSpec` and
      :class:`mrnn_core.Dynamics`.
    """

    W_rec: jax.Array
    W_rec_mask: jax.Array
    W_rec_sign_matrix: jax.Array
    W_inp: jax.Array
    W_inp_mask: jax.Array
    W_inp_sign_matrix: jax.Array
    base_firing: jax.Array
    init: jax.Array
    spec: NetworkSpec = eqx.field(static=True)
    dynamics: Dynamics = eqx.field(static=True)

    def __init__(self, config, dynamics: Dynamics, *, key=None, seed=None):
        """Draw a fresh network exactly as ``Checkpoint.initialise(spec, dynamics, seed)``."""
        spec = load_config(config)
        ckpt = Checkpoint.initialise(spec, dynamics, seed=_seed_from(key, seed))
        _assign(self, ckpt)

    @abc.abstractmethod
    def __call__(self, inp, *args, **kwargs):
        raise NotImplementedError

    def __repr__(self) -> str:
        """Regions, sizes, signs and non-default settings: the text a torch
        model of the same network prints (:func:`mrnn_core.describe`)."""
        return describe(self.spec, self.dynamics, name=type(self).__name__)

    def __pdoc__(self, **kwargs):
        """The same summary when the model sits inside another pytree's repr."""
        import wadler_lindig as wl

        lines = describe(self.spec, self.dynamics).split("\n")
        return wl.bracketed(begin=wl.TextDoc(f"{type(self).__name__}("),
                            docs=[wl.TextDoc(line) for line in lines], sep=wl.BreakDoc("; "),
                            end=wl.TextDoc(")"), indent=kwargs.get("indent", 2))

    # checkpoints ---------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint):
        """The model a :class:`mrnn_core.Checkpoint` describes, arrays unchanged.

        Called on ``mRNNBase`` it returns the class of the checkpoint's kind.
        In float64 (``jax_enable_x64``) the arrays are bit-identical.
        """
        if not isinstance(checkpoint, Checkpoint):
            raise MRNNConfigError(
                f"checkpoint: expected a mrnn_core.Checkpoint, got {type(checkpoint).__name__}")
        kind = checkpoint.dynamics.kind
        target = _CLASSES[kind]
        if cls is not mRNNBase and cls is not target:
            raise MRNNConfigError(
                f"checkpoint: it holds a {kind!r} model, expected {cls._kind!r} for "
                f"{cls.__name__}; use {target.__name__}.from_checkpoint")
        # Equinox rebuilds modules the same way when unflattening a pytree: the
        # constructor would draw new weights, so it is bypassed.
        self = object.__new__(target)
        _assign(self, checkpoint)
        return self

    def to_checkpoint(self) -> Checkpoint:
        """A :class:`mrnn_core.Checkpoint`: float64 numpy copies of every array (exact)."""
        params = {name: np.array(getattr(self, name), dtype=np.float64) for name in PARAM_NAMES}
        return Checkpoint(self.spec, self.dynamics, params)

    # the arrays as the dynamics see them ---------------------------------------

    def params(self) -> dict:
        """The mapping :func:`mrnn_jax.simulate` takes, with the bias of regions
        without ``learnable_bias`` behind ``stop_gradient``."""
        trainable = self._structure.bias_trainable
        b = self.base_firing
        if not trainable.all():
            b = jnp.where(trainable, b, jax.lax.stop_gradient(b))
        return {"W_rec": self.W_rec, "W_rec_mask": self.W_rec_mask,
                "W_rec_sign_matrix": self.W_rec_sign_matrix, "W_inp": self.W_inp,
                "W_inp_mask": self.W_inp_mask, "W_inp_sign_matrix": self.W_inp_sign_matrix,
                "base_firing": b}

    def effective_weights(self):
        """``(W_rec_eff [H, H], W_inp_eff [H, I])``: see :func:`mrnn_jax.effective_weights`."""
        return effective_weights(self.params(), self.dynamics)

    @property
    def connectivity(self) -> Connectivity:
        """The structure as a :class:`mrnn_core.Connectivity` (concrete arrays only, not under jit)."""
        return connectivity_from_arrays(
            self.spec, *(np.asarray(getattr(self, n)) for n in
                         ("W_rec_mask", "W_rec_sign_matrix", "W_inp_mask", "W_inp_sign_matrix")),
            np.asarray(self.base_firing), np.asarray(self.init))

    def _recurrence(self, recurrence):
        # "auto" hands simulate the spec, so the block structure is known under jit.
        return self.spec if isinstance(recurrence, str) and recurrence == "auto" else recurrence

    @property
    def _structure(self) -> Connectivity:
        return layout(self.spec)

    # mRNNTorch's helpers -------------------------------------------------------

    @property
    def hid_regions(self) -> list[str]:
        """Names of the recurrent regions, in network order."""
        return list(self.spec.recurrent_names)

    @property
    def inp_regions(self) -> list[str]:
        """Names of the input regions, in order."""
        return list(self.spec.input_names)

    @property
    def total_num_units(self) -> int:
        """``H``."""
        return self.spec.hidden_size

    @property
    def total_num_inputs(self) -> int:
        """``I``."""
        return self.spec.input_size

    @property
    def hid_noise_const(self) -> float:
        """``c_x`` (see :class:`mrnn_core.Dynamics`)."""
        return self.dynamics.hid_noise_const

    @property
    def inp_noise_const(self) -> float:
        """``c_u`` (see :class:`mrnn_core.Dynamics`)."""
        return self.dynamics.inp_noise_const

    @property
    def tonic_inp(self):
        """``base_firing`` ``[H]``, the current (possibly learned) baseline."""
        return self.base_firing

    @property
    def initial_condition(self):
        """``init`` ``[H]``: the initial pre-activation of every unit."""
        return jax.lax.stop_gradient(self.init)

    def get_region_indices(self, region: str) -> tuple[int, int]:
        """``(start, end)`` of ``region`` in the hidden (or input) vector."""
        return self._structure.region_indices(region)

    def get_region_size(self, region: str) -> int:
        """Number of units of ``region`` (a parent counts all its children)."""
        return int(self._structure.unit_indices(region, allow_input=True).size)

    def get_region_activity(self, act, *regions: str):
        """``act`` ``[..., H]`` restricted to ``regions``, in the order given (parents expanded)."""
        return region_activity(self.spec, act, *regions)

    def get_projection(self, to: str, from_: str, W=None):
        """Effective weights from ``from_`` (recurrent or input region) to ``to``.

        ``W`` replaces the effective matrix (``[H, H]``, or ``[H, I]`` when
        ``from_`` is an input region).
        """
        if W is None:
            W_rec_eff, W_inp_eff = self.effective_weights()
            W = W_inp_eff if from_ in self.spec.input_names else W_rec_eff
        return projection(self.spec, W, to, from_)

    def get_weight_subset(self, *regions: str, W=None):
        """The square block of the effective ``W_rec`` (or ``W``) among ``regions``, network order."""
        return weight_subset(self.spec, self.effective_weights()[0] if W is None else W, *regions)


def _assign(self: mRNNBase, ckpt: Checkpoint) -> None:
    for name in PARAM_NAMES:
        object.__setattr__(self, name, jnp.asarray(ckpt.params[name]))
    object.__setattr__(self, "spec", ckpt.spec)
    object.__setattr__(self, "dynamics", ckpt.dynamics)


class mRNN(mRNNBase):
    """Leaky (continuous-time, Euler) multi-regional RNN, ``alpha = dt / tau``.

        x_{t+1} = x_t + alpha (-x_t + W_rec_eff h_t + W_inp_eff (u_t + c_u eps_u)
                               + b + c_x eps_x + s_t)
        h_{t+1} = f(x_{t+1})

    **Arguments:**

    - `config`: an mRNNTorch-format JSON path, a dict or a :class:`mrnn_core.NetworkSpec`.
    - `activation`, `noise_level_act`, `noise_level_inp`, `rec_constrained`,
      `inp_constrained`, `batch_first`, `spectral_radius`, `dt`, `tau`: see
      :class:`mrnn_core.Dynamics`.
    - `key`: a PRNG key the numpy seed of the masks and weights is derived from;
      or `seed`: that seed itself (then the arrays equal
      ``Checkpoint.initialise(spec, dynamics, seed)`` and the torch model's).
    """

    _kind = "leaky"

    def __init__(self, config=None, activation="relu", noise_level_act=0.01,
                 noise_level_inp=0.01, rec_constrained=True, inp_constrained=True,
                 batch_first=True, spectral_radius=None, dt=10, tau=100, *, key=None, seed=None):
        dynamics = Dynamics(kind="leaky", activation=activation, dt=dt, tau=tau,
                            noise_level_act=noise_level_act, noise_level_inp=noise_level_inp,
                            rec_constrained=rec_constrained, inp_constrained=inp_constrained,
                            batch_first=batch_first, spectral_radius=spectral_radius)
        super().__init__(config, dynamics, key=key, seed=seed)

    def __call__(self, inp, x0, h0=None, *, stim_input=None, W_rec=None, key=None,
                 eps_x=None, eps_u=None, recurrence="auto"):
        """Run ``T`` steps; see :func:`mrnn_jax.simulate` for shapes and the noise arguments.

        **Returns:** ``(xs, hs)``, each ``[B, T, H]`` (``[T, B, H]`` if not
        ``batch_first``; ``[T, H]`` for unbatched ``inp`` ``[T, I]`` and ``x0`` ``[H]``).
        """
        return simulate(self.params(), self.dynamics, inp, x0, h0, stim_input=stim_input,
                        W_rec=W_rec, eps_x=eps_x, eps_u=eps_u, key=key,
                        recurrence=self._recurrence(recurrence))

    def batched_initial_condition(self, batch_size: int):
        """``(x0, h0)``: ``init`` repeated to ``[batch_size, H]`` and its rates ``f(x0)``."""
        x0 = jnp.broadcast_to(self.initial_condition, (batch_size, self.spec.hidden_size))
        return x0, get_activation(self.dynamics.activation)(x0)


class ElmanmRNN(mRNNBase):
    """Elman (discrete) multi-regional RNN.

        x_{t+1} = W_rec_eff h_t + W_inp_eff (u_t + sigma_u eps_u) + b + sigma_x eps_x + s_t
        h_{t+1} = f(x_{t+1})

    Arguments as :class:`mRNN`, without `dt` and `tau`.
    """

    _kind = "elman"

    def __init__(self, config=None, activation="relu", noise_level_act=0.01,
                 noise_level_inp=0.01, rec_constrained=True, inp_constrained=True,
                 batch_first=True, spectral_radius=None, *, key=None, seed=None):
        dynamics = Dynamics(kind="elman", activation=activation,
                            noise_level_act=noise_level_act, noise_level_inp=noise_level_inp,
                            rec_constrained=rec_constrained, inp_constrained=inp_constrained,
                            batch_first=batch_first, spectral_radius=spectral_radius)
        super().__init__(config, dynamics, key=key, seed=seed)

    def __call__(self, inp, h0, *, stim_input=None, W_rec=None, key=None, eps_x=None,
                 eps_u=None, recurrence="auto"):
        """Run ``T`` steps from rates ``h0``; see :func:`mrnn_jax.simulate`.

        **Returns:** ``hs`` ``[B, T, H]`` (``[T, B, H]`` if not ``batch_first``).
        """
        return simulate(self.params(), self.dynamics, inp, h0=h0, stim_input=stim_input,
                        W_rec=W_rec, eps_x=eps_x, eps_u=eps_u, key=key,
                        recurrence=self._recurrence(recurrence))

    def batched_initial_condition(self, batch_size: int):
        """``h0``: ``init`` repeated to ``[batch_size, H]`` (the Elman state is the rate)."""
        return jnp.broadcast_to(self.initial_condition, (batch_size, self.spec.hidden_size))


_CLASSES = {"leaky": mRNN, "elman": ElmanmRNN}


def trainable_filter(tree):
    """A pytree of bools over ``tree``: True for the arrays an optimiser should train.

    Inside every model: ``W_rec``, ``W_inp`` and ``base_firing`` when some
    region has ``learnable_bias`` (its other entries then get zero gradient,
    which keeps them fixed under SGD or Adam; decoupled weight decay, as in
    ``optax.adamw``, would still shrink them unless masked out of the decay);
    never masks, sign matrices or ``init``. Elsewhere in ``tree`` (a readout,
    say): every floating-point array. Use it with ``eqx.partition``::

        trainable, frozen = eqx.partition(model, mrnn_jax.trainable_filter(model))
    """
    def model_filter(model: mRNNBase):
        flags = jax.tree.map(lambda _: False, model)
        learn_bias = bool(model._structure.bias_trainable.any())
        return eqx.tree_at(lambda m: (m.W_rec, m.W_inp, m.base_firing), flags,
                           (True, True, learn_bias))

    return jax.tree.map(
        lambda x: model_filter(x) if isinstance(x, mRNNBase) else eqx.is_inexact_array(x),
        tree, is_leaf=lambda x: isinstance(x, mRNNBase))

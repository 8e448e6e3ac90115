"""One small adapter per array library, so array code is written once.

:func:`namespace` picks the adapter from the type of the arrays a caller
passed (by the name of the module that defines the type), so the core never
imports a framework: torch and JAX are taken from ``sys.modules``, where the
caller's own import put them, once it hands over one of their arrays (or a
backend asks for the adapter by name). numpy is the default: Python numbers, lists
and numpy arrays all get it.

An adapter holds only what differs between the libraries: the spelling of
an operation (``torch.Tensor.to`` versus ``.astype``), a device, or the
exact primitive each library's code has always used for an activation, so
that code moved here computes bit for bit what it computed before. Shared
logic (activations and derivatives, losses, the analysis driver) lives in
the modules that use the adapters, once.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np

from .errors import MRNNConfigError

NAMES = ("numpy", "torch", "jax")
"""The array libraries with an adapter."""


class _Adapter:
    """What every adapter offers (numpy's spelling; subclasses override)."""

    name = "numpy"

    def __reduce__(self):  # pickled by name (Ray, multiprocessing): one instance per library
        return adapter, (self.name,)

    def __repr__(self) -> str:
        return f"<array adapter {self.name!r}>"


class _Numpy(_Adapter):
    name = "numpy"

    relu = staticmethod(lambda x: np.maximum(x, 0.0))
    tanh = staticmethod(np.tanh)
    expm1 = staticmethod(np.expm1)
    sqrt = staticmethod(np.sqrt)
    isfinite = staticmethod(np.isfinite)
    where = staticmethod(np.where)
    ones_like = staticmethod(np.ones_like)
    zeros_like = staticmethod(np.zeros_like)
    broadcast_to = staticmethod(np.broadcast_to)

    @staticmethod
    def sigmoid(x):
        # In tanh form: exact at large |x| where 1 / (1 + exp(-x)) overflows.
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def as_input(x, like=None):
        """A caller's numbers as this library's array (numpy: float64)."""
        return np.asarray(x, dtype=float)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

    @staticmethod
    def clamp_min(x, low: float):
        """``max(x, low)`` elementwise, ``low`` a number."""
        return np.maximum(x, low)

    @staticmethod
    def mean(x, axis=None, keepdims=False):
        return x.mean(axis=axis, keepdims=keepdims)

    @staticmethod
    def take(x, indices, axis):
        return np.take(x, indices, axis=axis)

    @staticmethod
    def eye(n, like):
        return np.eye(n, dtype=like.dtype)

    @staticmethod
    def float_array(values, like):
        """``values`` (numbers or a tuple) as an array of ``like``'s dtype and device."""
        return np.asarray(values, dtype=like.dtype)

    @staticmethod
    def matrix_transpose(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def diagonal(x):
        return np.diagonal(x, axis1=-2, axis2=-1)

    @staticmethod
    def solve_spd(A, b):
        """``A^-1 b`` for symmetric positive definite ``A`` ``[..., n, n]``, ``b`` ``[..., n, k]``."""
        return np.linalg.solve(A, b)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)


class _Torch(_Adapter):
    name = "torch"

    def __init__(self):
        torch = _loaded("torch")
        self._torch = torch
        self.relu = torch.relu
        self.tanh = torch.tanh
        self.sigmoid = torch.sigmoid
        self.expm1 = torch.expm1
        self.sqrt = torch.sqrt
        self.isfinite = torch.isfinite
        self.where = torch.where
        self.ones_like = torch.ones_like
        self.zeros_like = torch.zeros_like

    def softplus(self, x):
        # Exactly log(1 + exp(x)) for every x: torch.nn.functional.softplus
        # switches to x above a threshold of 20, which is off by ~1e-9 there.
        return self._torch.logaddexp(x, x.new_zeros(()))

    def as_input(self, x, like=None):
        return self._torch.as_tensor(x, device=None if like is None else like.device)

    @staticmethod
    def astype(x, dtype):
        return x.to(dtype)

    @staticmethod
    def clamp_min(x, low: float):
        return x.clamp_min(low)

    @staticmethod
    def broadcast_to(x, shape):
        return x.expand(shape)

    @staticmethod
    def mean(x, axis=None, keepdims=False):
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)

    def take(self, x, indices, axis):
        return x.index_select(axis, self._torch.as_tensor(indices, dtype=self._torch.long,
                                                          device=x.device))

    def eye(self, n, like):
        return self._torch.eye(n, dtype=like.dtype, device=like.device)

    def float_array(self, values, like):
        return self._torch.tensor(values, dtype=like.dtype, device=like.device)

    @staticmethod
    def matrix_transpose(x):
        return x.transpose(-1, -2)

    @staticmethod
    def diagonal(x):
        return x.diagonal(dim1=-2, dim2=-1)

    def solve_spd(self, A, b):
        # solve_ex: a singular system gives NaN (the step is then rejected), not an error.
        return self._torch.linalg.solve_ex(A, b)[0]

    @staticmethod
    def to_numpy(x):
        return x.detach().cpu().numpy()


class _Jax(_Adapter):
    name = "jax"

    def __init__(self):
        jax = _loaded("jax")
        jnp = importlib.import_module("jax.numpy")  # parts of the JAX the caller imported
        jsl = importlib.import_module("jax.scipy.linalg")
        self._jnp, self._jsl = jnp, jsl
        self.relu = jax.nn.relu
        self.tanh = jnp.tanh
        self.sigmoid = jax.nn.sigmoid
        self.expm1 = jnp.expm1
        self.sqrt = jnp.sqrt
        self.isfinite = jnp.isfinite
        self.where = jnp.where
        self.ones_like = jnp.ones_like
        self.zeros_like = jnp.zeros_like
        self.broadcast_to = jnp.broadcast_to

    def softplus(self, x):
        # log(1 + exp(x)) for every x, with no threshold shortcut.
        return self._jnp.logaddexp(x, 0.0)

    def as_input(self, x, like=None):
        return self._jnp.asarray(x)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

    def clamp_min(self, x, low: float):
        return self._jnp.maximum(x, low)

    @staticmethod
    def mean(x, axis=None, keepdims=False):
        return x.mean(axis=axis, keepdims=keepdims)

    def take(self, x, indices, axis):
        return self._jnp.take(x, np.asarray(indices), axis=axis)

    def eye(self, n, like):
        return self._jnp.eye(n, dtype=like.dtype)

    def float_array(self, values, like):
        return self._jnp.asarray(values, dtype=like.dtype)

    def matrix_transpose(self, x):
        return self._jnp.swapaxes(x, -1, -2)

    def diagonal(self, x):
        return self._jnp.diagonal(x, axis1=-2, axis2=-1)

    def solve_spd(self, A, b):
        # Cholesky (cheaper than LU); a failed factorisation gives NaN, and
        # the caller rejects the step.
        return self._jsl.cho_solve(self._jsl.cho_factor(A, lower=True), b)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)


def _loaded(name: str):
    """The framework module ``name`` as the caller imported it: the core never imports one."""
    module = sys.modules.get(name)
    if module is None:
        raise MRNNConfigError(
            f"array library {name!r}: expected it to be imported already (its arrays, or a "
            f"backend, bring it), got a request for it before any import of {name!r}")
    return module


_CLASSES = {"numpy": _Numpy, "torch": _Torch, "jax": _Jax}
_MADE: dict = {}


def adapter(name: str) -> _Adapter:
    """The adapter of the library ``name`` (one of :data:`NAMES`), which must be imported already."""
    if name not in _MADE:
        _MADE[name] = _CLASSES[name]()
    return _MADE[name]


def library_of(x) -> str:
    """``"torch"``, ``"jax"`` or ``"numpy"``: the library that defines ``type(x)``.

    Decided from the type's module name (``torch``, ``jax``/``jaxlib``, JAX
    tracers included), never by importing a framework.
    """
    module = type(x).__module__ or ""
    top = module.split(".", 1)[0]
    if top == "torch" and "torch" in sys.modules:
        return "torch"
    if top in ("jax", "jaxlib") and "jax" in sys.modules:
        return "jax"
    return "numpy"


def to_numpy(a) -> np.ndarray:
    """``a`` as a numpy array: a torch tensor is detached and copied to the
    CPU (its ``requires_grad`` and device are left alone), a JAX array is
    fetched; anything else goes through ``numpy.asarray``."""
    name = library_of(a)
    return np.asarray(a) if name == "numpy" else adapter(name).to_numpy(a)


def namespace(*arrays) -> _Adapter:
    """The adapter for the first of ``arrays`` that belongs to torch or JAX, else numpy's."""
    for a in arrays:
        name = library_of(a)
        if name != "numpy":
            return adapter(name)
    return adapter("numpy")

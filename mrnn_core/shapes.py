"""Forward-call input checks shared by every backend, so all accept and reject alike.

Shapes are checked as tuples and dtypes by name, never on framework arrays,
so no framework is needed: each backend hands over what it sees.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .errors import MRNNConfigError


@dataclass(frozen=True)
class CallShape:
    """What a forward call's inputs imply: batch size, steps, and batchedness."""

    batch: int
    steps: int
    batched: bool


def _layout(batch_first: bool, batched: bool, last: str) -> str:
    if not batched:
        return f"[T, {last}]"
    return f"[B, T, {last}]" if batch_first else f"[T, B, {last}]"


def check_call_shapes(*, hidden_size: int, input_size: int, batch_first: bool,
                      inp=None, state=None, state_name: str = "x0", h0=None,
                      stim_input=None, W_rec=None, eps_x=None, eps_u=None) -> CallShape:
    """Check one forward call's shapes and return its :class:`CallShape`.

    **Arguments:** the shapes (tuples, or None when absent) of ``inp``
    (``[B, T, I]`` if ``batch_first`` else ``[T, B, I]``, or ``[T, I]``
    unbatched), the initial ``state`` (``[B, H]`` or ``[H]``; called
    ``state_name`` in messages), ``h0``, ``stim_input`` and ``eps_x`` (the
    output layout, feature size ``H``), ``eps_u`` (the input layout), and
    ``W_rec`` (``[H, H]``).

    Raises :class:`MRNNConfigError` saying what was expected and what was got.
    """
    H, I = hidden_size, input_size
    if inp is None and I > 0:
        raise MRNNConfigError(f"inp: expected an input of feature size I = {I}, got None")
    time_source = inp if inp is not None else stim_input
    if time_source is None:
        raise MRNNConfigError(
            "inp: this network has no input region, but the number of steps is "
            "unknown; pass inp with feature size 0 (e.g. shape [B, T, 0]) or stim_input"
        )
    source_name = "inp" if inp is not None else "stim_input"
    rank = len(time_source)
    if rank not in (2, 3):
        raise MRNNConfigError(
            f"{source_name}: expected a 3-D tensor {_layout(batch_first, True, 'I' if inp is not None else 'H')} "
            f"(or 2-D {_layout(batch_first, False, 'I' if inp is not None else 'H')} unbatched), "
            f"got {rank}-D shape {tuple(time_source)}"
        )
    batched = rank == 3
    if batched:
        B, T = (time_source[0], time_source[1]) if batch_first else (time_source[1], time_source[0])
    else:
        B, T = 1, time_source[0]

    def expect(name, shape, last, last_name):
        if shape is None:
            return
        want = ((B, T) if batch_first else (T, B)) if batched else (T,)
        want = want + (last,)
        if tuple(shape) != want:
            raise MRNNConfigError(
                f"{name}: expected shape {want} = {_layout(batch_first, batched, last_name)} "
                f"with {last_name} = {last} (batch_first={batch_first}), got {tuple(shape)}"
            )

    expect("inp", inp, I, "I")
    expect("stim_input", stim_input, H, "H")
    expect("eps_x", eps_x, H, "H")
    expect("eps_u", eps_u, I, "I")
    for name, shape in ((state_name, state), ("h0", h0)):
        if shape is None:
            continue
        want = (B, H) if batched else (H,)
        if tuple(shape) != want:
            layout = "[B, H]" if batched else "[H]"
            raise MRNNConfigError(
                f"{name}: expected shape {want} = {layout} with H = {H}, got {tuple(shape)}"
            )
    if W_rec is not None and tuple(W_rec) != (H, H):
        raise MRNNConfigError(f"W_rec: expected shape ({H}, {H}) = [H, H], got {tuple(W_rec)}")
    return CallShape(batch=B, steps=T, batched=batched)


# The input contract of every forward call -----------------------------------

_KIND_WORDS = {"b": "booleans", "i": "integers", "u": "unsigned integers",
               "c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
               "V": "raw bytes", "M": "datetimes", "m": "timedeltas"}


def dtype_name(dtype) -> str:
    """The plain name of a numpy, torch or JAX dtype: ``'float32'``, ``'int64'``, ``'<U3'``."""
    if isinstance(dtype, np.dtype):
        return dtype.name if dtype.kind in "biufc" else dtype.str
    return str(dtype).rsplit(".", 1)[-1]


def _float_bits(name: str) -> int | None:
    """Bits of a real floating dtype name (``float32`` 32, ``bfloat16`` 16,
    ``float8_e4m3fn`` 8), or None for any other kind."""
    for prefix in ("float", "bfloat"):
        if name.startswith(prefix):
            digits = name[len(prefix):].split("_")[0]
            return int(digits) if digits.isdigit() else None
    return None


def _kind(name: str) -> str:
    try:
        return np.dtype(name).kind
    except TypeError:
        return "O"


def check_input_dtype(name: str, dtype, model_dtype, *, weak: bool = False,
                      fix: str = "") -> bool:
    """Apply the forward-call dtype rule to one argument; True when it must be cast.

    The rule (the same for every backend): an input holds real floating-point
    numbers. One whose dtype converts into the model's dtype without loss
    (the same dtype, or fewer bits: float16/bfloat16 into float32, float32
    into float64) is cast to it; a wider one (float64 into a float32 model),
    integers, booleans, complex numbers and strings are refused. ``weak``
    marks Python numbers (a nested list), which have no precision of their
    own and take the model's dtype, as torch and JAX treat Python scalars.

    **Arguments:** ``name`` of the argument (``inp``, ``x0``, ...) for the
    message; ``dtype`` and ``model_dtype`` as numpy, torch or JAX dtypes (or
    their names); ``fix`` how to convert it, e.g. ``"inp.to(torch.float32)"``.

    Raises :class:`MRNNConfigError` naming the argument, the expected and
    the actual dtype, and the fix.
    """
    got, want = dtype_name(dtype), dtype_name(model_dtype)
    if got == want:
        return False
    bits, want_bits = _float_bits(got), _float_bits(want)
    if bits is not None and (weak or (want_bits is not None and bits < want_bits)):
        return True
    if bits is None:
        kind = _kind(got)
        how = f"; convert it with {fix}" if fix and kind in "biu" else ""
        if kind == "c":
            how = f"; pass its real part{' converted with ' + fix if fix else ''}"
        raise MRNNConfigError(
            f"{name}: expected real floating-point values (the model computes in {want}), "
            f"got {_KIND_WORDS.get(kind, 'values that are not real numbers')} "
            f"(dtype {got}){how}"
        )
    how = f"; convert it with {fix}" if fix else ""
    raise MRNNConfigError(
        f"{name}: expected dtype {want} (the model's) or a floating dtype of lower precision, "
        f"got {got}, which {want} cannot hold without rounding{how}, or build the model "
        f"in {got}"
    )


def numpy_input(name: str, value):
    """A non-framework input as ``(numpy array, weak)``: numpy arrays as they
    are, nested lists or tuples of numbers through ``numpy.asarray`` with
    ``weak`` True (Python numbers take the model's dtype). Anything else
    (a string, a dict, a ragged list) raises :class:`MRNNConfigError`.
    """
    if isinstance(value, np.ndarray):
        return value, False
    if isinstance(value, np.generic):
        return np.asarray(value), False
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            array = None
        if array is None or array.dtype == object:
            raise MRNNConfigError(
                f"{name}: expected a nested list of numbers with a rectangular shape, "
                f"got a ragged or mixed {type(value).__name__}"
            )
        return array, True
    raise MRNNConfigError(
        f"{name}: expected a tensor, an array or a nested list of numbers, "
        f"got {type(value).__name__}"
    )


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int >= 0, else :class:`MRNNConfigError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 0:
        raise MRNNConfigError(
            f"batch_size: expected an integer >= 0, got {batch_size!r}"
        )
    return int(batch_size)

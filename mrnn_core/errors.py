"""The one exception every layer of mrnn raises for bad input."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MRNNConfigError(ValueError):
    """A network, its settings or its inputs are not valid.

    The message names the culprit, what was expected and what was got.
    It subclasses ``ValueError`` so ``except ValueError`` keeps working.
    """


class MRNNFileError(MRNNConfigError):
    """A file cannot be read as what it claims to be.

    Raised by :meth:`mrnn_core.Checkpoint.load` for a missing, unreadable,
    non-regular, empty, truncated or corrupt file, a file of another kind
    (not an ``.npz``, a bare ``.npy``), an unknown format version, invalid
    embedded JSON, missing or unknown members, and for arrays that break the
    rules every checkpoint is held to. The message starts with the file's
    path and says what is wrong. It subclasses :class:`MRNNConfigError`, so
    ``except MRNNConfigError`` (or ``ValueError``) catches it too.
    """


class MRNNStateDictError(MRNNConfigError, RuntimeError):
    """A torch ``state_dict`` the model refuses (raised by ``load_state_dict``
    before anything is copied, so the model is left as it was).

    It is also a ``RuntimeError``, the type torch's own ``load_state_dict``
    raises, so code written for torch (or mRNNTorch) that catches that keeps
    working.
    """


def closest(name: str, valid: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` hint for a misspelt ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def known(kind: str, names: Iterable[str]) -> str:
    """``"known <kind>: 'a', 'b'"``, or a note that there are none yet."""
    names = list(names)
    if not names:
        return f"no {kind} are defined yet"
    return f"known {kind}: " + ", ".join(repr(n) for n in names)


class NonFiniteStateError(MRNNConfigError, FloatingPointError):
    """A forward call's state became inf or NaN (raised by
    :func:`mrnn_core.check_finite` and ``check_finite=True`` forward calls).

    The message names the first step and unit (and its region) that went
    non-finite. It is a :class:`MRNNConfigError` (bad weights, time
    constants or inputs cause it) and a ``FloatingPointError``.
    """

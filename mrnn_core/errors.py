"""The one exception every layer of mrnn raises for bad input."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MRNNConfigError(ValueError):
    """A network, its settings or its inputs are not valid.

    The message names the culprit, what was expected and what was got.
    It subclasses ``ValueError`` so ``except ValueError`` keeps working.
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

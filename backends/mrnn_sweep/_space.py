"""The search space of a sweep: one validated domain per swept setting.

A domain is written in the sweep file as a table with exactly one key:

    lr = { loguniform = [1e-4, 1e-2] }     # log-uniform in [low, high), low > 0
    tau = { uniform = [50.0, 200.0] }      # uniform in [low, high)
    seed = { randint = [0, 1000] }         # integer in [low, high)
    activation = { choice = ["tanh", "relu"] }   # one of the values, drawn at random
    batch_size = { grid = [8, 16] }        # every value (Ray Tune's grid_search)

A grid multiplies the number of trials (every combination of every grid,
``num_samples`` times); the random kinds are drawn once per trial.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from mrnn_core.errors import MRNNConfigError, closest

KINDS = ("grid", "choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class Domain:
    """One swept setting: its `kind` (one of :data:`KINDS`) and `values`.

    `values` is the list of candidates for ``grid`` / ``choice`` and the pair
    ``(low, high)`` for the ranges.
    """

    kind: str
    values: tuple

    @property
    def candidates(self) -> tuple:
        """Values a trial may receive that validation checks: every listed value, or a range's ends."""
        return self.values

    def to_tune(self):
        """The Ray Tune domain object (``tune.grid_search([...])``, ``tune.loguniform(lo, hi)``, ...)."""
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        return getattr(tune, self.kind)(*self.values)


def _number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def parse_domain(entry, where: str) -> Domain:
    """Read one ``{kind = values}`` table; `where` (``"search.training.lr"``) prefixes every error."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise MRNNConfigError(
            f"{where}: expected a table with exactly one of "
            + ", ".join(repr(k) for k in KINDS)
            + f" (e.g. {{ grid = [1e-3, 1e-2] }}), got {entry!r}")
    (kind, values), = entry.items()
    if kind not in KINDS:
        raise MRNNConfigError(
            f"{where}: unknown search kind {kind!r}; allowed: "
            + ", ".join(repr(k) for k in KINDS) + closest(kind, KINDS))
    if kind in ("grid", "choice"):
        if not isinstance(values, list) or not values:
            raise MRNNConfigError(
                f"{where}.{kind}: expected a non-empty list of values, got {values!r}")
        return Domain(kind, tuple(values))
    if not isinstance(values, list) or len(values) != 2:
        raise MRNNConfigError(f"{where}.{kind}: expected [low, high], got {values!r}")
    low, high = values
    if kind == "randint":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values) or low >= high:
            raise MRNNConfigError(
                f"{where}.randint: expected integers [low, high] with low < high "
                f"(high excluded), got {values!r}")
        return Domain(kind, (low, high))
    if not all(_number(v) for v in values) or not low < high:
        raise MRNNConfigError(
            f"{where}.{kind}: expected finite numbers [low, high] with low < high, got {values!r}")
    if kind == "loguniform" and low <= 0:
        raise MRNNConfigError(
            f"{where}.loguniform: expected 0 < low < high, got {values!r}")
    return Domain(kind, (float(low), float(high)))

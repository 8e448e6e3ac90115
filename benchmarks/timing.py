"""Medians of interleaved timed calls, and the memory a call needs at its peak.

The machine the benchmark runs on is small and often shared, so load comes and
goes during a run. Implementations that are compared with each other are
therefore timed in interleaved rounds (A, B, C, A, B, C, ...): a burst of
outside load slows every contender alike instead of one of them, and the
ratio of medians stays honest.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timing:
    """Seconds of every timed call of one implementation in one mode."""

    times: list[float] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)
    call_peak_mb: float | None = None
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def to_dict(self) -> dict:
        return {"times": self.times, "warmup": self.warmup, "median": self.median,
                "call_peak_mb": self.call_peak_mb, "error": self.error}


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _trim_heap() -> None:
    # Memory a previous call freed may stay in the process heap and be reused
    # unseen; handing it back first makes the next call's peak visible.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_during(call: Callable[[], object]) -> tuple[object, float, float | None]:
    """Run ``call`` once: ``(result, seconds, MB of RSS above the start it needed at peak)``."""
    _trim_heap()
    can_reset = _reset_peak()
    start = _status_kb("VmRSS")
    t0 = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    extra = (peak - start) / 1024 if can_reset and peak is not None and start is not None else None
    return out, seconds, extra


def process_peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Fast calls get more timed calls (see ``min_time_s``), at most this many.
MAX_REPEATS = 100


def measure(calls: dict[str, Callable[[], object]], *, repeats: int, warmup: int,
            budget_s: float, min_time_s: float = 0.0) -> dict[str, Timing]:
    """Median-ready timings of every call, interleaved round by round.

    **Arguments:**

    - `calls`: name -> a function doing one complete call *and* waiting for
      its result (``block_until_ready``, CUDA synchronisation).
    - `repeats`: timed calls per implementation.
    - `warmup`: untimed calls first (JIT profiling, allocator growth); the
      first one also measures the call's peak memory.
    - `budget_s`: an implementation whose first call shows that ``repeats``
      calls would exceed this many seconds gets fewer (at least one) and no
      extra warm-up: the count is reported with the median.
    - `min_time_s`: an implementation whose ``repeats`` calls would take less
      than this gets more timed calls (up to ``MAX_REPEATS``), so that the
      median of a millisecond call is not the median of five noisy samples;
      the others then get as many, within their budget.

    A call that raises is recorded as an error and dropped from later rounds.
    """
    timings = {name: Timing() for name in calls}
    wanted = {}
    for name, call in calls.items():
        t = timings[name]
        try:
            _, first, t.call_peak_mb = peak_during(call)
            t.warmup.append(first)
            for _ in range(warmup - 1):
                if first * (repeats + warmup) > budget_s:
                    break
                t0 = time.perf_counter()
                call()
                t.warmup.append(time.perf_counter() - t0)
        except Exception as err:  # noqa: BLE001 - reported in the table, never hidden
            t.error = f"{type(err).__name__}: {err}"
            continue
        cap = max(1, int(budget_s // max(first, 1e-9)))
        n = min(repeats, cap)
        typical = min(t.warmup)
        if n * typical < min_time_s:
            n = min(MAX_REPEATS, cap, max(n, int(min_time_s // max(typical, 1e-9))))
        wanted[name] = (n, cap)
    # Every contender runs as many rounds as the one that needs most, unless its
    # budget forbids: the rounds stay interleaved to the end. (A contender that
    # dropped out early would change what the others run after: on this VM the
    # allocator then hands a torch call fresh pages it reused before.)
    rounds = max((n for n, _ in wanted.values()), default=0)
    wanted = {name: min(cap, rounds) for name, (_, cap) in wanted.items()}
    for round_ in range(max(wanted.values(), default=0)):
        for name, n in wanted.items():
            t = timings[name]
            if round_ >= n or t.error:
                continue
            try:
                t0 = time.perf_counter()
                calls[name]()
                t.times.append(time.perf_counter() - t0)
            except Exception as err:  # noqa: BLE001
                t.error = f"{type(err).__name__}: {err}"
    return timings


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None

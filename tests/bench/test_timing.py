"""How many timed calls each contender gets, and that they stay interleaved.

A fake clock (each call advances it by that contender's made-up duration)
replaces ``time.perf_counter``, so nothing here depends on this machine.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
_SPEC = importlib.util.spec_from_file_location("bench_timing", _DIR / "timing.py")
timing = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_timing"] = timing
_SPEC.loader.exec_module(timing)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.log = []

    def perf_counter(self):
        return self.now

    def call(self, name, seconds):
        def run():
            self.now += seconds
            self.log.append(name)
        return run


def _measure(monkeypatch, durations, **kwargs):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)

    def peak_during(call):
        t0 = clock.now
        out = call()
        return out, clock.now - t0, None

    monkeypatch.setattr(timing, "peak_during", peak_during)
    calls = {name: clock.call(name, s) for name, s in durations.items()}
    result = timing.measure(calls, **kwargs)
    return result, clock.log


def test_fast_calls_get_more_rounds_and_the_rest_follow_within_their_budget(monkeypatch):
    # Durations are binary fractions, so the fake clock's sums are exact.
    fast, slow, slowest = 2.0**-10, 2.0**-4, 0.75
    result, log = _measure(monkeypatch, {"fast": fast, "slow": slow, "slowest": slowest},
                           repeats=5, warmup=2, budget_s=1.0, min_time_s=0.5)
    # fast: 5 calls take 5 ms < 0.5 s, so 0.5 / 2^-10 = 512, capped at MAX_REPEATS.
    assert len(result["fast"].times) == timing.MAX_REPEATS == 100
    # slow: its budget allows 1.0 / 2^-4 = 16 calls; it follows fast up to that.
    assert len(result["slow"].times) == 16
    # slowest: its budget allows one call (and no second warm-up call).
    assert len(result["slowest"].times) == 1 and len(result["slowest"].warmup) == 1
    timed = log[2 + 2 + 1:]  # after the warm-up calls (2, 2 and 1)
    assert timed[:3] == ["fast", "slow", "slowest"]
    assert timed[3:3 + 30] == ["fast", "slow"] * 15  # interleaved while both run
    assert timed[33:] == ["fast"] * 84
    assert result["fast"].median == fast and result["slow"].median == slow


def test_without_min_time_every_contender_gets_repeats(monkeypatch):
    result, _ = _measure(monkeypatch, {"a": 0.001, "b": 0.01},
                         repeats=5, warmup=1, budget_s=30.0)
    assert [len(result[n].times) for n in ("a", "b")] == [5, 5]


def test_a_failing_call_is_recorded_and_dropped(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(timing, "peak_during", lambda call: (call(), 0.001, None))

    def broken():
        raise RuntimeError("out of memory")

    result = timing.measure({"ok": clock.call("ok", 0.001), "broken": broken},
                            repeats=3, warmup=1, budget_s=1.0)
    assert result["broken"].error == "RuntimeError: out of memory"
    assert len(result["ok"].times) == 3 and result["broken"].times == []

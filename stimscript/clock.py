"""Clocks: the same runtime (and the loopback emulator) runs in real time or in virtual time.

Times are integer µs. ``VirtualClock`` only moves when told to (``advance``/``sleep_until``), so a
30-minute session is simulated without a single real sleep; ``RealClock`` follows ``time.monotonic_ns``.
A contract module (docs/architecture.md): the runtime and the device emulators share it without importing each
other; ``stimscript.runtime.clock`` re-exports the same names.
"""
from __future__ import annotations

import threading
import time


class Clock:
    """Interface: ``now_us()``, ``sleep_until(t_us, wake=None)``; ``realtime`` tells which kind."""

    realtime = True

    def now_us(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def sleep_until(self, t_us: int, wake: threading.Event | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def sleep(self, dt_us: int, wake: threading.Event | None = None) -> None:
        self.sleep_until(self.now_us() + int(dt_us), wake)


class RealClock(Clock):
    """Monotonic wall time. ``sleep_until`` returns early when ``wake`` is set (controls, emergency stop)."""

    realtime = True

    def now_us(self) -> int:
        return time.monotonic_ns() // 1000

    def sleep_until(self, t_us: int, wake: threading.Event | None = None) -> None:
        dt = (t_us - self.now_us()) / 1e6
        if dt <= 0:
            return
        if wake is not None:
            wake.wait(dt)
        else:
            time.sleep(dt)


class VirtualClock(Clock):
    """Simulated time: jumps instantly. Thread-safe; never sleeps."""

    realtime = False

    def __init__(self, start_us: int = 0):
        self._now = int(start_us)
        self._lock = threading.Lock()

    def now_us(self) -> int:
        return self._now

    def advance(self, dt_us: int) -> int:
        if dt_us < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += int(dt_us)
            return self._now

    def sleep_until(self, t_us: int, wake: threading.Event | None = None) -> None:
        with self._lock:
            if t_us > self._now:
                self._now = int(t_us)

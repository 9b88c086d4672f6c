"""Test doubles shared by the suite (never shipped)."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that only moves when told to: ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._mono = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            self._mono += seconds

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        if wake is not None and wake.is_set():
            wake.clear()
            return True
        self.advance(max(0.0, seconds))
        return False

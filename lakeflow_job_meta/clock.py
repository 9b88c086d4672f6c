"""Injectable time (owns ``Clock`` and the real ``SystemClock``), so the monitor's sleeps, lease
expiry, backoff and debounce are testable without real waiting. A leaf module: the engine and
the adapters both use it; the test double lives in ``tests/fakes.py``."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Sleep up to ``seconds``; return True if ``wake`` was set (woken early)."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is None:
            time.sleep(max(0.0, seconds))
            return False
        woke = wake.wait(max(0.0, seconds))
        wake.clear()
        return woke


def utc_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)

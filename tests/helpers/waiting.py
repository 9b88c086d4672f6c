"""The suite's one wait on the real clock: poll a condition until it holds.

Tests never sleep to order events and never assert how long something took. What a test waits
for is an event (a ``threading.Event``, a line a child process wrote, a request the emulator
saw); when that event can only be observed by looking (a file, a table, a log), ``wait_for``
looks every few milliseconds. Its deadline is a safety net for a broken build, never the
assertion: it is generous (a minute by default) so that a loaded machine only makes the wait
longer, and a test that reaches it has failed on the condition, not on the time.
``tests/test_no_timing.py`` keeps every other test module off the real clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SAFETY_NET_SECONDS = 60.0
_POLL_SECONDS = 0.02


def wait_for(condition: Callable[[], T], what: str, *, timeout: float = SAFETY_NET_SECONDS) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming
    ``what`` if it never does within ``timeout`` seconds (the safety net)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(_POLL_SECONDS)

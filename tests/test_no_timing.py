"""No test depends on the real clock: nothing sleeps to order events, nothing asserts how long
something took, no test data is stamped with the time of the run. Tests wait on events and on
the injectable clock (``lakeflow_job_meta/clock.py``, the fakes in ``tests/fakes.py``); what truly
needs real time is a benchmark (``benchmarks/``).

This is the grep of issue 19 as a test: every line under ``tests/`` that reads or waits on the
real clock is in one of the few files allowed below, each with its reason."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent

REAL_CLOCK = re.compile(
    r"time\.sleep|sleep\(|time\.time\(|monotonic\(|perf_counter"
    r"|datetime\.now\(|\.utcnow\(|date\.today\("
    r"|^\s*import time\b|^\s*from time import"
)

ALLOWED = {
    "helpers/waiting.py": "the one wait for a condition, its deadline a safety net and never the assertion",
    "fakes.py": "the fake clocks themselves: their sleep and monotonic methods never touch the real clock",
    "emulator/server.py": "the emulated service's own time: the created_time it stamps on jobs and runs, "
    "and how long it holds a stalled reply at most",
    "emulator/workspace_store.py": "the emulated service's created_at of workspace objects",
    "emulator/faults.py": "the rate limit's one-second window on the real clock by default (tests inject one)",
}


def _real_clock_lines() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        name = path.relative_to(TESTS).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if REAL_CLOCK.search(line):
                found.setdefault(name, []).append(f"{name}:{number}: {line.strip()}")
    return found


def test_only_the_allowed_files_touch_the_real_clock() -> None:
    found = _real_clock_lines()
    outside = [line for name, lines in found.items() if name not in ALLOWED for line in lines]
    assert outside == [], "\n".join(
        ["wait on an event or the injectable clock instead (or move it to benchmarks/):", *outside]
    )


def test_every_allowed_file_still_needs_its_place() -> None:
    assert sorted(set(ALLOWED) - set(_real_clock_lines())) == []

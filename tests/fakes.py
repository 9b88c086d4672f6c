"""Test doubles shared by the suite (never shipped)."""

from __future__ import annotations

import threading
from collections.abc import Callable

# A start for fake clocks that must read later than the real clock's stamps around them (the
# audit columns tables write, a lease another process took): 2100-01-01T00:00:00Z.
AFTER_ANY_REAL_CLOCK = 4_102_444_800.0


class FakeClock:
    """A clock that only moves when told to: ``sleep`` advances it instantly. ``on_sleep(seconds)``,
    when given, runs at every sleep before the clock moves: what "meanwhile" happens."""

    def __init__(self, start: float = 1_700_000_000.0, on_sleep: Callable[[float], None] | None = None):
        self._now = start
        self._mono = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep
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
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        if wake is not None and wake.is_set():
            wake.clear()
            return True
        self.advance(max(0.0, seconds))
        return False


class TickingClock(FakeClock):
    """A FakeClock that moves on by ``tick`` seconds at every reading: durations measured on it
    are positive and its timestamps strictly increase, without waiting."""

    def __init__(self, start: float = 1_700_000_000.0, tick: float = 0.001):
        super().__init__(start)
        self.tick = tick

    def now(self) -> float:
        self.advance(self.tick)
        return super().now()

    def monotonic(self) -> float:
        self.advance(self.tick)
        return super().monotonic()


class InstantSdkClock:
    """The SDK's retry clock (``time``, ``sleep``) without waiting: a sleep moves the clock (so the
    SDK's retry deadline still holds) and is recorded in ``sleeps``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds


class RecordingSleep:
    """A ``sleep(seconds)`` that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float, *args: object) -> None:
        self.waits.append(seconds)


class RecordingTarget:
    """A ``Target`` that keeps jobs in memory and records what the orchestrator hands it: the
    seam the orchestrator plans and applies through, without HTTP or files."""

    kind = "recording"
    key = "recording:memory"
    prune = "delete"

    def __init__(self) -> None:
        self.applied: list[tuple[str, set[str]]] = []  # (run id, compiled modules)
        self.jobs: dict[str, dict] = {}

    def describe(self) -> str:
        return "target: in memory"

    def owner_identity(self):
        return None

    def check_owner(self):
        pass

    def managed_jobs(self, desired):
        return len(self.jobs)

    def scope(self, modules):
        return modules

    def prefetch(self, scope, check_drift):
        pass

    def _changes(self, desired):
        from lakeflow_job_meta.planning.plan import PlannedChange

        changes = []
        for name, job in sorted(desired.compiled.items()):
            action = (
                "noop"
                if self.jobs.get(name) == job.settings
                else "create"
                if name not in self.jobs
                else "update"
            )
            changes.append(PlannedChange(module=name, action=action, job_name=job.job_name, compiled=job))
        changes += [
            PlannedChange(module=name, action="delete")
            for name in sorted(set(self.jobs) - set(desired.compiled))
        ]
        return changes

    def plan(self, desired, *, scope, check_drift):
        from lakeflow_job_meta.planning.plan import Plan

        return Plan(changes=self._changes(desired))

    def apply(self, desired, run, *, scope):
        from lakeflow_job_meta.engine.results import ModuleResult

        self.applied.append((run.run_id, set(desired.compiled)))
        results = []
        for change in self._changes(desired):
            refused = run.guard(change)
            if refused is not None:
                results.append(refused)
                continue
            if change.action == "delete":
                self.jobs.pop(change.module)
            elif change.compiled is not None:
                self.jobs[change.module] = change.compiled.settings
            results.append(
                ModuleResult(change.module, change.action, job_writes=int(change.action != "noop"))
            )
        return results


class WakeOnlyClock(FakeClock):
    """A FakeClock whose interruptible sleeps never run out: ``sleep(seconds, wake)`` returns only
    once ``wake`` is set. A monitor loop on it moves on its events (a file event, ``stop()``),
    never on its interval; a sleep without ``wake`` still advances the clock at once."""

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is None:
            return super().sleep(seconds)
        self.sleeps.append(seconds)
        wake.wait()
        wake.clear()
        return True

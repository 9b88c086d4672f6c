"""Run health of one module, from its recent runs: pure, so ``status --runs``, the monitor's
alerts and the status page all judge a job by the same rules.

A module is judged by its newest runs only, so a good run is its recovery:

- **failing**: the newest finished run failed (``FAILED``, ``TIMEDOUT``, ``INTERNAL_ERROR``, ...),
  with the count of consecutive failures before it;
- **too long**: a run (running, or the newest finished one) took longer than the module's
  ``health`` rule (``RUN_DURATION_SECONDS`` ``GREATER_THAN``) or than ``median_factor`` times the
  median of its recent successful runs;
- **queued too long**: a run still waiting (``QUEUED``/``PENDING``/``BLOCKED``) longer than
  ``queue_limit_seconds``;
- **skipped**: the newest finished run was skipped (concurrency limit, upstream failure).

The runs come as :class:`RunFacts`; turning API replies or table rows into them is the caller's.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakeflow_job_meta.vocabulary import StrEnum

# The service's result states that mean "the job did not do its work".
FAILED_RESULTS = frozenset(
    {"FAILED", "TIMEDOUT", "INTERNAL_ERROR", "MAXIMUM_CONCURRENT_RUNS_REACHED", "UPSTREAM_FAILED"}
)
SKIPPED_RESULTS = frozenset({"SKIPPED", "EXCLUDED", "UPSTREAM_CANCELED"})
WAITING_STATES = frozenset({"QUEUED", "PENDING", "BLOCKED", "WAITING_FOR_RETRY"})
# A run in one of these life cycle states is over, whatever its result says.
TERMINAL_STATES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})


class HealthState(StrEnum):
    """The worst problem of a module's runs (declared worst first)."""

    FAILING = "failing"
    TOO_LONG = "too_long"
    QUEUED_TOO_LONG = "queued_too_long"
    SKIPPED = "skipped"
    HEALTHY = "healthy"
    NO_RUNS = "no_runs"


UNHEALTHY_STATES = frozenset(
    {HealthState.FAILING, HealthState.TOO_LONG, HealthState.QUEUED_TOO_LONG, HealthState.SKIPPED}
)


@dataclass(frozen=True)
class HealthRules:
    """Thresholds beyond the module's own ``health`` rule (the monitor's settings)."""

    median_factor: float = 3.0
    """A run longer than this multiple of the recent successful runs' median is too long."""
    median_runs: int = 10
    """How many recent successful runs make the median."""
    min_runs_for_median: int = 3
    """Fewer successful runs than this: no median rule (one fast run would flag every other)."""
    queue_limit_seconds: float = 1800.0


@dataclass(frozen=True)
class RunFacts:
    """One run, reduced to what health needs. Times in epoch seconds."""

    run_id: int
    started: float | None
    ended: float | None = None
    life_cycle_state: str | None = None
    result_state: str | None = None
    queued_seconds: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return (
            self.ended is not None
            or self.result_state is not None
            or self.life_cycle_state in TERMINAL_STATES
        )

    @property
    def outcome(self) -> str | None:
        """The result of a finished run (a skipped run has a life cycle state and no result)."""
        if not self.finished:
            return None
        return self.result_state or self.life_cycle_state

    def duration(self, now: float) -> float | None:
        """Seconds the run has been executing: queued time excluded, up to ``now`` if active."""
        if self.started is None:
            return None
        end = self.ended if self.ended is not None else now
        return max(0.0, end - self.started - (self.queued_seconds or 0.0))

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> RunFacts:
        """From a row of the runs table (timestamps as datetimes or epoch seconds)."""
        return RunFacts(
            run_id=int(row.get("run_id") or 0),
            started=_epoch(row.get("started_at")),
            ended=_epoch(row.get("ended_at")),
            life_cycle_state=row.get("life_cycle_state"),
            result_state=row.get("result_state"),
            queued_seconds=row.get("queued_seconds"),
            error=row.get("error"),
        )


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class ModuleHealth:
    """What ``status --runs``, the status page and the alerts say about one module's runs."""

    module: str
    state: HealthState
    last_result: str | None = None
    last_run_id: int | None = None
    last_started: float | None = None
    consecutive_failures: int = 0
    median_seconds: float | None = None
    limit_seconds: float | None = None
    problems: tuple[tuple[HealthState, str], ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return self.state not in UNHEALTHY_STATES

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "state": str(self.state),
            "healthy": self.healthy,
            "last_result": self.last_result,
            "last_run_id": self.last_run_id,
            "last_started": self.last_started,
            "consecutive_failures": self.consecutive_failures,
            "median_seconds": self.median_seconds,
            "limit_seconds": self.limit_seconds,
            "problems": [{"state": str(state), "message": message} for state, message in self.problems],
        }


def duration_limit(settings: Mapping[str, Any] | None) -> float | None:
    """The module's ``health`` rule ``RUN_DURATION_SECONDS GREATER_THAN value``, if any."""
    rules = ((settings or {}).get("health") or {}).get("rules") or []
    limits = [
        float(rule["value"])
        for rule in rules
        if isinstance(rule, Mapping)
        and rule.get("metric") == "RUN_DURATION_SECONDS"
        and rule.get("op", "GREATER_THAN") == "GREATER_THAN"
        and isinstance(rule.get("value"), int | float)
    ]
    return min(limits) if limits else None


def module_health(
    module: str,
    runs: Iterable[RunFacts],
    *,
    now: float,
    limit_seconds: float | None = None,
    rules: HealthRules = HealthRules(),
) -> ModuleHealth:
    """Judge one module by its runs (any order); see the module docstring for the rules."""
    newest_first = sorted(runs, key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    if not newest_first:
        return ModuleHealth(module=module, state=HealthState.NO_RUNS, limit_seconds=limit_seconds)
    finished = [r for r in newest_first if r.finished]
    active = [r for r in newest_first if not r.finished]
    failures = 0
    for run in finished:
        if run.outcome not in FAILED_RESULTS:
            break
        failures += 1
    successes = [r for r in finished if r.outcome == "SUCCESS"]
    median = _median([r.duration(now) for r in successes[: rules.median_runs]], rules)
    limit = _effective_limit(limit_seconds, median, rules)
    problems: list[tuple[HealthState, str]] = []
    last = finished[0] if finished else None
    if last is not None and failures:
        detail = f": {last.error}" if last.error else ""
        problems.append(
            (
                HealthState.FAILING,
                f"run {last.run_id} {last.outcome}{detail} ({failures} consecutive failure"
                f"{'s' if failures != 1 else ''})",
            )
        )
    for run in [*active, *([last] if last is not None else [])]:
        took = run.duration(now)
        waiting = run.life_cycle_state in WAITING_STATES and not run.finished
        if waiting and run.started is not None and now - run.started > rules.queue_limit_seconds:
            problems.append(
                (
                    HealthState.QUEUED_TOO_LONG,
                    f"run {run.run_id} queued for {now - run.started:.0f} s "
                    f"(limit {rules.queue_limit_seconds:.0f} s)",
                )
            )
        elif not waiting and limit is not None and took is not None and took > limit:
            verb = "took" if run.finished else "running for"
            problems.append(
                (HealthState.TOO_LONG, f"run {run.run_id} {verb} {took:.0f} s (limit {limit:.0f} s)")
            )
    if last is not None and last.outcome in SKIPPED_RESULTS:
        problems.append((HealthState.SKIPPED, f"run {last.run_id} {last.outcome}"))
    order = list(HealthState)
    problems.sort(key=lambda p: order.index(p[0]))
    return ModuleHealth(
        module=module,
        state=problems[0][0] if problems else HealthState.HEALTHY,
        last_result=(last.outcome if last else None) if not active else active[0].life_cycle_state,
        last_run_id=newest_first[0].run_id,
        last_started=newest_first[0].started,
        consecutive_failures=failures,
        median_seconds=median,
        limit_seconds=limit,
        problems=tuple(problems),
    )


def _median(durations: Sequence[float | None], rules: HealthRules) -> float | None:
    known = [d for d in durations if d is not None]
    return statistics.median(known) if len(known) >= rules.min_runs_for_median else None


def _effective_limit(limit: float | None, median: float | None, rules: HealthRules) -> float | None:
    """The tighter of the module's own rule and the median rule."""
    candidates = [x for x in (limit, median * rules.median_factor if median else None) if x is not None]
    return min(candidates) if candidates else None


def fleet_health(
    runs_by_module: Mapping[str, Iterable[RunFacts]],
    *,
    now: float,
    limits: Mapping[str, float | None],
    rules: HealthRules = HealthRules(),
) -> dict[str, ModuleHealth]:
    """:func:`module_health` of every module named in ``runs_by_module`` or ``limits``."""
    modules = sorted(set(runs_by_module) | set(limits))
    return {
        m: module_health(m, runs_by_module.get(m, ()), now=now, limit_seconds=limits.get(m), rules=rules)
        for m in modules
    }

"""What a monitor that runs for a year writes to its log.

At 5 s a cycle, one INFO line per cycle is 17,280 lines a day of "nothing happened". So:

- a cycle that changed nothing logs at DEBUG;
- every HEARTBEAT_SECONDS one INFO heartbeat says the monitor is alive (cycles since the last
  heartbeat, table versions, modules, lag);
- a change, an apply, a rejected file, a failing module or a cycle error is logged once, at INFO
  or WARNING, and again only when it changes (a file rejected for the same reasons on every full
  resync, or a module failing the same way on every retry, is not repeated);
- the first cycle (the monitor is up) and ``--once`` (a triggered run's only output) always log
  their cycle at INFO.

The clock is injected, so tests drive 100 cycles or 10 minutes without sleeping.
"""

from __future__ import annotations

import logging
from typing import Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.logs import EVENT
from lakeflow_job_meta.vocabulary import PlanAction

# The monitor's CycleReport (not imported: the monitor imports this module).
CycleReport = Any

HEARTBEAT_SECONDS = 600.0


class CycleLogger:
    """Decides the level of each cycle's lines and remembers what it already said."""

    def __init__(self, logger: logging.Logger, clock: Clock, *, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.log = logger
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds
        self._last_heartbeat = clock.monotonic()
        self._cycles = 0
        self._modules: int | None = None
        self._rejected: dict[str, tuple[str, ...]] = {}
        self._module_errors: dict[str, str] = {}
        self._cycle_error: str | None = None
        self._last: CycleReport | None = None
        self._first = True

    def record(self, report: CycleReport, *, lag: int | None = None, always: bool = False) -> None:
        """Log one cycle. ``lag``: control-table versions seen but not yet applied."""
        self._cycles += 1
        self._last = report
        if report.run is not None and report.full:
            self._modules = len(report.run)
        event = {"cycle": report.as_dict()}
        eventful = self._report_problems(report, event)
        for line in report.held:  # every cycle until allowed or undone: nothing is lost unseen
            self.log.warning("held: %s", line, extra={EVENT: event})
            eventful = True
        changed = bool(
            report.files_added
            or report.files_modified
            or report.files_deleted
            or (report.run is not None and any(r.action != PlanAction.NOOP or r.error for r in report.run))
        )
        if always or changed or self._first:
            self._first = False
            self.log.info(report.summary(), extra={EVENT: event})
        elif not eventful:
            self.log.debug(report.summary(), extra={EVENT: event})
        self._heartbeat(lag)

    def _report_problems(self, report: CycleReport, event: dict[str, Any]) -> bool:
        """WARNING lines for problems that are new or different; True when any was written."""
        wrote = False
        if report.error != self._cycle_error:
            if report.error is not None:
                self.log.warning(
                    "cycle %d failed: error: %s", report.iteration, report.error, extra={EVENT: event}
                )
                wrote = True
            else:
                self.log.info("cycle %d: recovered", report.iteration, extra={EVENT: event})
            self._cycle_error = report.error
        for path in [*report.files_added, *report.files_modified, *report.files_deleted]:
            if path not in report.files_rejected:
                self._rejected.pop(path, None)
        for path, issues in sorted(report.files_rejected.items()):
            if self._rejected.get(path) != tuple(issues):
                self._rejected[path] = tuple(issues)
                for issue in issues:
                    self.log.warning(
                        "rejected %s: %s", path, issue, extra={EVENT: {"file": path, "issue": issue}}
                    )
                wrote = True
        for result in report.run or []:
            if result.error and self._module_errors.get(result.module) != result.error:
                self._module_errors[result.module] = result.error
                self.log.warning(
                    "module %s: %s", result.module, result.error, extra={EVENT: {"module": result.module}}
                )
                wrote = True
            elif not result.error and result.ok:
                self._module_errors.pop(result.module, None)
        return wrote

    def _heartbeat(self, lag: int | None) -> None:
        now = self.clock.monotonic()
        if now - self._last_heartbeat < self.heartbeat_seconds or self._last is None:
            return
        report = self._last
        parts = [
            f"heartbeat: {self._cycles} cycle(s) in {int(now - self._last_heartbeat)} s",
            f"control v{report.control_version} modules v{report.modules_version}",
        ]
        if self._modules is not None:
            parts.append(f"{self._modules} module(s)")
        if lag is not None:
            parts.append(f"lag {lag} version(s)")
        if self._rejected:
            parts.append(f"{len(self._rejected)} file(s) rejected")
        if self._module_errors:
            parts.append(f"{len(self._module_errors)} module(s) failing")
        event = {
            "heartbeat": {
                "cycles": self._cycles,
                "control_version": report.control_version,
                "modules_version": report.modules_version,
                "modules": self._modules,
                "lag": lag,
                "files_rejected": sorted(self._rejected),
                "modules_failing": sorted(self._module_errors),
            }
        }
        self.log.info(", ".join(parts), extra={EVENT: event})
        self._last_heartbeat = now
        self._cycles = 0

"""The monitor's alerts: conditions from each cycle, one alert per state change (the tracker in
:mod:`lakeflow_job_meta.planning.alerts`), recorded in ``history``, delivered off the loop.

Why a queue and a worker thread: a slow or dead webhook must never hold up reconciling jobs.
The queue is bounded (a full queue drops the alert and counts it); each webhook is
rate-limited on the injected clock (``max_per_minute``; the excess is dropped and counted, and
the next delivered alert says how many were dropped). Tests inject the sender and call
:meth:`AlertDispatcher.drain` to wait for delivery instead of sleeping.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lakeflow_job_meta.adapters.webhooks import Sender, alert_body
from lakeflow_job_meta.clock import Clock, utc_datetime
from lakeflow_job_meta.engine.results import RunResult
from lakeflow_job_meta.metadata.policy import AlertPolicy, Webhook
from lakeflow_job_meta.planning.alerts import ALL, Alert, AlertTracker, Condition, health_conditions
from lakeflow_job_meta.planning.health import ModuleHealth
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.rows import HistoryRow
from lakeflow_job_meta.storage.state_store import StateStore
from lakeflow_job_meta.vocabulary import AlertEvent, Outcome


class CycleFacts(Protocol):
    """What the alerts read of a monitor cycle's report (``engine.monitor.CycleReport``, which
    imports this module)."""

    @property
    def lease_held(self) -> bool: ...
    @property
    def run(self) -> RunResult | None: ...
    @property
    def held(self) -> list[str]: ...
    @property
    def files_added(self) -> list[str]: ...
    @property
    def files_modified(self) -> list[str]: ...
    @property
    def files_deleted(self) -> list[str]: ...
    @property
    def files_rejected(self) -> dict[str, list[str]]: ...


log = logging.getLogger("lakeflow_job_meta.alerts")

ALERTS_TARGET = "alerts"  # the history rows of alerts carry this target
ALERTS_STATE_KEY = "alerts"
QUEUE_SIZE = 200
FLEET_SUBJECT = "control table"
_STOP = object()


@dataclass
class Delivery:
    """Counts, for the report and for tests."""

    sent: int = 0
    failed: int = 0
    rate_limited: int = 0
    queue_full: int = 0


class AlertDispatcher:
    """Delivers alerts to the webhooks that want them, on its own thread."""

    def __init__(
        self,
        policy: AlertPolicy,
        *,
        sender: Sender,
        resolve: Callable[[Webhook], str],
        clock: Clock,
        control_table: str,
        queue_size: int = QUEUE_SIZE,
    ):
        self.policy = policy
        self.sender = sender
        self.resolve = resolve
        self.clock = clock
        self.control_table = control_table
        self.delivery = Delivery()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._sent_at: dict[int, deque[float]] = {i: deque() for i in range(len(policy.webhooks))}
        self._dropped: dict[int, int] = dict.fromkeys(range(len(policy.webhooks)), 0)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, alert: Alert) -> None:
        """Queue ``alert`` (never blocks: a full queue drops it)."""
        if not self.policy.webhooks:
            return
        self._start()
        try:
            self._queue.put_nowait((alert, self.clock.now()))
        except queue.Full:
            self.delivery.queue_full += 1
            log.warning("alert queue full; dropped %s", alert.title)

    def drain(self) -> None:
        """Wait until every queued alert was handled (tests, and ``close``)."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="ljm-alerts", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                alert, at = item
                for index, webhook in enumerate(self.policy.webhooks):
                    if webhook.wants(alert.event):
                        self._deliver(index, webhook, alert, at)
            except Exception:  # a bug here must not kill the worker
                log.exception("alert delivery failed")
            finally:
                self._queue.task_done()

    def _deliver(self, index: int, webhook: Webhook, alert: Alert, at: float) -> None:
        now = self.clock.monotonic()
        window = self._sent_at[index]
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.policy.max_per_minute:
            self._dropped[index] += 1
            self.delivery.rate_limited += 1
            return
        if self._dropped[index]:
            alert = replace(
                alert, message=f"{alert.message} ({self._dropped[index]} earlier alert(s) dropped)"
            )
            self._dropped[index] = 0
        window.append(now)
        body = alert_body(alert, webhook, control_table=self.control_table, at=utc_datetime(at).isoformat())
        try:
            self.sender(self.resolve(webhook), body)
            self.delivery.sent += 1
        except Exception as error:  # WebhookError and resolution errors never hold the URL
            self.delivery.failed += 1
            log.warning("alert %s to %s failed: %s", alert.title, webhook.label, error)


class MonitorAlerts:
    """Turns cycles into conditions, alerts once per change, records each alert in ``history``
    and keeps the active conditions in the state table (a restart does not alert again)."""

    def __init__(
        self,
        dispatcher: AlertDispatcher,
        *,
        history: Table,
        state: StateStore,
        clock: Clock,
        lag_versions: int,
    ):
        self.dispatcher = dispatcher
        self.history = history
        self.state = state
        self.clock = clock
        self.lag_versions = lag_versions
        self._tracker: AlertTracker | None = None
        self._held_lease = False

    def _loaded(self) -> AlertTracker:
        if self._tracker is None:
            saved = self.state.get(ALERTS_STATE_KEY) or {}
            known = {e.value for e in AlertEvent}
            self._tracker = AlertTracker(
                {k: str(v) for k, v in saved.items() if str(k).split("|", 1)[0] in known}
            )
        return self._tracker

    def observe_cycle(
        self, report: CycleFacts, *, lag: int | None, health: Mapping[str, ModuleHealth] | None
    ) -> list[Alert]:
        """Alerts of one monitor cycle (a ``CycleReport``); ``health`` when runs were read."""
        conditions, checked, one_shot = _cycle_conditions(report, lag=lag, lag_limit=self.lag_versions)
        if report.lease_held:
            self._held_lease = True
        elif self._held_lease:
            conditions.append(
                Condition(AlertEvent.LEASE_LOST, FLEET_SUBJECT, "the monitor lost the writer lease")
            )
        checked[AlertEvent.LEASE_LOST] = ALL
        if health is not None:
            conditions += health_conditions(health)
            for event in (
                AlertEvent.RUN_FAILED,
                AlertEvent.RUN_TOO_LONG,
                AlertEvent.RUN_QUEUED_TOO_LONG,
                AlertEvent.RUN_SKIPPED,
            ):
                checked[event] = ALL
        tracker = self._loaded()
        before = dict(tracker.active)
        alerts = tracker.observe(conditions, checked, one_shot)
        if alerts:
            self._record(alerts)
            for alert in alerts:
                log.warning("%s: %s", alert.title, alert.message)
                self.dispatcher.submit(alert)
        if tracker.active != before:
            self.state.put(ALERTS_STATE_KEY, tracker.active)
        return alerts

    def _record(self, alerts: Iterable[Alert]) -> None:
        run_id = f"alerts-{uuid.uuid4().hex[:12]}"
        started = utc_datetime(self.clock.now())
        self.history.append(
            [
                HistoryRow(
                    run_id=run_id,
                    target=ALERTS_TARGET,
                    module_name=alert.subject,
                    action=("recovered:" if alert.recovered else "alert:") + str(alert.event),
                    outcome=Outcome.OK,
                    error=None if alert.recovered else alert.message,
                    started_at=started,
                ).as_row()
                for alert in alerts
            ]
        )

    def close(self) -> None:
        self.dispatcher.close()


def _cycle_conditions(
    report: CycleFacts, *, lag: int | None, lag_limit: int
) -> tuple[list[Condition], dict[AlertEvent, set[str] | None], list[Condition]]:
    """What a cycle report says: conditions that hold, what was examined, one-shot events."""
    conditions: list[Condition] = []
    checked: dict[AlertEvent, set[str] | None] = {}
    one_shot: list[Condition] = []
    run = report.run
    if run is not None:
        checked[AlertEvent.APPLY_FAILED] = {r.module for r in run}
        conditions += [
            Condition(AlertEvent.APPLY_FAILED, r.module, r.error or str(r.outcome))
            for r in run
            if r.outcome == Outcome.ERROR
        ]
        one_shot += [
            Condition(
                AlertEvent.DRIFT_RESTORED, r.module, f"job {r.job_id} edited outside the tool was restored"
            )
            for r in run
            if r.drift
        ]
    if run is not None or report.held:
        checked[AlertEvent.MASS_CHANGE_HELD] = ALL
        if report.held:
            conditions.append(Condition(AlertEvent.MASS_CHANGE_HELD, FLEET_SUBJECT, "; ".join(report.held)))
    touched = {*report.files_added, *report.files_modified, *report.files_deleted, *report.files_rejected}
    if touched:
        checked[AlertEvent.REJECTED] = touched
        conditions += [
            Condition(AlertEvent.REJECTED, path, "; ".join(issues))
            for path, issues in report.files_rejected.items()
        ]
    if lag is not None:
        checked[AlertEvent.LAG] = ALL
        if lag > lag_limit:
            conditions.append(
                Condition(AlertEvent.LAG, FLEET_SUBJECT, f"the jobs are {lag} control-table versions behind")
            )
    return conditions, checked, one_shot

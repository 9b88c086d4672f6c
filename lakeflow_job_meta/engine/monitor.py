"""``Monitor``: the long-running task that keeps jobs equal to the metadata.

One cycle, cheapest first:

1. Renew the writer lease only when a third of its TTL has passed (no table write otherwise).
2. YAML volume: scan only when a file event woke us, when polling a FUSE mount, or when the
   periodic full scan is due; load changed files (a bad file is rejected alone).
3. Read the Delta *versions* of the control and modules tables (no scan). Same as last processed,
   or only maintenance commits since (OPTIMIZE, VACUUM, ANALYZE: read from the history):
   done - no table scan, no write, no API call. New versions: read the Change Data Feed since the
   last processed versions, reconcile only the modules it names; fall back to a full reconcile
   when the feed cannot answer.
4. The first cycle after start and every ``full_resync_seconds`` reconcile everything with a
   drift check.
5. Runs (when a :class:`RunRecorder` is given): at most one ``jobs/runs/list`` per runs interval,
   recorded in the runs table and judged; then alerts (when given) for every state change of
   this cycle, queued to a worker thread so delivery never holds up the loop.

Processed versions live in the state table, so a restart resumes. All time goes through the
injectable clock.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from lakeflow_job_meta.adapters.yaml_volume import VolumeScanner, VolumeWatcher
from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.alerts import MonitorAlerts
from lakeflow_job_meta.engine.cycle_log import HEARTBEAT_SECONDS, CycleLogger
from lakeflow_job_meta.engine.lease import Lease, LeaseInfo, monitor_holder_id
from lakeflow_job_meta.engine.metadata_manager import MetadataStore
from lakeflow_job_meta.engine.orchestrator import Orchestrator, process_id
from lakeflow_job_meta.engine.results import RunResult
from lakeflow_job_meta.engine.runs import RunRecorder
from lakeflow_job_meta.engine.targets.base import refuse_auto_run
from lakeflow_job_meta.errors import LakeflowJobMetaError
from lakeflow_job_meta.logs import ensure_handler
from lakeflow_job_meta.planning.blast_radius import emptied_volume_message, volume_emptied
from lakeflow_job_meta.planning.health import ModuleHealth
from lakeflow_job_meta.storage.state_store import StateKey, StateStore
from lakeflow_job_meta.vocabulary import Outcome, PlanAction

log = logging.getLogger("lakeflow_job_meta.monitor")

PROGRESS_KEY = StateKey.PROGRESS
VOLUME_KEY = StateKey.VOLUME_SNAPSHOT
MAX_BACKOFF_SECONDS = 300.0


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    iteration: int
    full: bool = False
    lease_held: bool = True
    control_version: int | None = None
    modules_version: int | None = None
    table_changed: bool = False
    files_added: list[str] = field(default_factory=list)
    files_modified: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    files_rejected: dict[str, list[str]] = field(default_factory=dict)
    files_unstable: list[str] = field(default_factory=list)
    modules_reconciled: list[str] | None = None
    run: RunResult | None = None
    # Changes applied while a full resync's bulk read ran, before the resync itself.
    applied_meanwhile: list[RunResult] = field(default_factory=list)
    # Changes held back by the blast-radius limit this cycle (logged every cycle until allowed).
    held: list[str] = field(default_factory=list)
    error: str | None = None
    duration_ms: int = 0
    # Run health when the runs were read this cycle (at most once per runs interval).
    health: dict[str, ModuleHealth] | None = None
    runs_written: int = 0
    runs_error: str | None = None
    alerts: list[str] = field(default_factory=list)

    @property
    def unhealthy(self) -> dict[str, str]:
        return {m: str(h.state) for m, h in (self.health or {}).items() if not h.healthy}

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.files_rejected
            and not self.held
            and (self.run is None or self.run.ok)
        )

    @property
    def idle(self) -> bool:
        return self.run is None and not (self.files_added or self.files_modified or self.files_deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "full": self.full,
            "lease_held": self.lease_held,
            "control_version": self.control_version,
            "modules_version": self.modules_version,
            "table_changed": self.table_changed,
            "files": {
                "added": self.files_added,
                "modified": self.files_modified,
                "deleted": self.files_deleted,
                "rejected": self.files_rejected,
                "unstable": self.files_unstable,
            },
            "modules_reconciled": self.modules_reconciled,
            "actions": {r.module: r.action for r in self.run} if self.run else {},
            "job_writes": self.run.job_writes if self.run else 0,
            "errors": {r.module: r.error for r in self.run if r.error} if self.run else {},
            "held": self.held,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "runs": None
            if self.health is None and self.runs_error is None
            else {"written": self.runs_written, "unhealthy": self.unhealthy, "error": self.runs_error},
            "alerts": self.alerts,
        }

    def summary(self) -> str:
        parts = [f"cycle {self.iteration}"]
        if not self.lease_held:
            return f"cycle {self.iteration}: waiting for the writer lease"
        parts.append(f"control v{self.control_version} modules v{self.modules_version}")
        if self.full:
            parts.append("full resync")
        files = (len(self.files_added), len(self.files_modified), len(self.files_deleted))
        if any(files) or self.files_rejected:
            parts.append(f"files +{files[0]} ~{files[1]} -{files[2]} rejected {len(self.files_rejected)}")
        if self.run is not None:
            actions = [
                f"{r.module}={r.action}"
                + ("(pending: sync manual)" if r.outcome == Outcome.PENDING else "(error)" if r.error else "")
                for r in self.run
                if r.action != PlanAction.NOOP or r.error
            ]
            parts.append(f"{len(self.run)} module(s) checked, {self.run.writes_text()}")
            if actions:
                parts.append("; ".join(actions))
        elif self.error is None and not self.files_rejected:
            parts.append("idle")
        if self.error:
            parts.append(f"error: {self.error}")
        if self.unhealthy:
            parts.append(
                "unhealthy runs: " + ", ".join(f"{m}={h}" for m, h in sorted(self.unhealthy.items()))
            )
        parts += [f"held: {line}" for line in self.held]
        return ", ".join(parts) + f" ({self.duration_ms} ms)"


def default_holder_id() -> str:
    return monitor_holder_id(process_id())


@dataclass(frozen=True)
class MonitorOptions:
    """How the monitor cycles: from the run settings (CLI flags, wheel parameters)."""

    check_interval_seconds: float = 60.0
    volume_path: str | None = None
    auto_update_jobs: bool = True
    auto_run: bool = False
    wait_for_lease: bool = True
    full_resync_seconds: float = 600.0
    log_format: str = "human"
    # An INFO heartbeat this often; idle cycles log at DEBUG.
    heartbeat_seconds: float = HEARTBEAT_SECONDS


class Monitor:
    """Watches the control table (by Delta version) and a YAML folder (by content) and drives
    the orchestrator. ``auto_update_jobs=False`` only loads YAML and reports; it never triggers
    runs unless ``auto_run`` is set. ``lakeflow_job_meta.MetadataMonitor`` is its public name,
    built by :mod:`lakeflow_job_meta.wiring`; this class takes its parts ready-made."""

    def __init__(
        self,
        *,
        orchestrator: Orchestrator,
        manager: MetadataStore,
        lease: Lease,
        state: StateStore,
        clock: Clock,
        options: MonitorOptions,
        scanner: VolumeScanner | None = None,
        watcher: VolumeWatcher | None = None,
        wake: threading.Event | None = None,
        runs: RunRecorder | None = None,
        alerts: MonitorAlerts | None = None,
    ):
        self.control_table = orchestrator.control_table
        self.check_interval_seconds = float(options.check_interval_seconds)
        self.volume_path = options.volume_path
        self.auto_update_jobs = options.auto_update_jobs
        if options.auto_run:  # refused at start, not on every cycle
            refuse_auto_run(orchestrator.target.kind)
        self.auto_run = options.auto_run
        self.wait_for_lease = options.wait_for_lease
        self.full_resync_seconds = float(options.full_resync_seconds)
        self.log_format = options.log_format
        self.clock = clock
        self.orchestrator = orchestrator
        self.tables = orchestrator.tables
        self.scope = orchestrator.table_id
        self.manager = manager
        self.state = state
        self.lease = lease
        self.orchestrator.lease = lease
        self.wake = wake or threading.Event()
        self.stop_event = threading.Event()
        self.scanner = scanner
        self.watcher = watcher
        self.runs = runs
        self.alerts = alerts
        self.cycle_log = CycleLogger(log, self.clock, heartbeat_seconds=options.heartbeat_seconds)
        self.iteration = 0
        self._processed: tuple[int, int] | None = None
        self._last_full: float | None = None
        self._failures = 0
        self._started = False
        self._was_waiting = False
        # module -> (failed attempts, monotonic time of the next retry)
        self._retry: dict[str, tuple[int, float]] = {}
        self._applied_version: int | None = None
        self._lease_generation: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Create tables, restore persisted progress, start the file watcher; first refuse a
        target that belongs to another control table."""
        if self._started:
            return
        self.orchestrator.target.check_owner()
        self.tables.ensure_exists()
        progress = self._read_state(PROGRESS_KEY)
        if progress:
            self._processed = (int(progress["control_version"]), int(progress["modules_version"]))
            self._applied_version = progress.get("applied_control_version")
        if self.scanner is not None:
            self.scanner.check_root()
            self.scanner.restore(self._read_state(VOLUME_KEY))
        if self.watcher is not None:
            self.watcher.start()
        self._started = True

    def stop(self) -> None:
        """Ask the loop to stop after the module in flight (signal-safe)."""
        self.stop_event.set()
        self.orchestrator.stop_requested.set()
        self.wake.set()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.alerts is not None:
            self.alerts.close()  # delivers what is queued, then stops the worker
        if self.lease.held:
            self.lease.release()

    # -- state -------------------------------------------------------------------------------
    def _read_state(self, key: str) -> Any:
        return self.state.get(key)

    def _write_state(self, key: str, value: dict[str, Any]) -> None:
        self.state.put(key, value)

    # -- one cycle ---------------------------------------------------------------------------
    def check_and_update(self, *, force_full: bool = False, log_always: bool = False) -> CycleReport:
        """One cycle. Returns what it saw and did; never raises for a module's failure."""
        self.iteration += 1
        started = self.clock.monotonic()
        report = CycleReport(iteration=self.iteration)
        try:
            self._cycle(report, force_full)
            self._failures = 0
        except Exception as error:  # a table or API outage: reported, backed off, retried
            self._failures += 1
            report.error = f"{error.__class__.__name__}: {error}"
            # The first failure of a streak keeps its whole story; the retries that follow
            # (backed off, each reported in the cycle line) keep it at DEBUG.
            log.log(logging.ERROR if self._failures == 1 else logging.DEBUG, "cycle failed", exc_info=True)
        self._watch_runs(report, force=force_full)
        self._raise_alerts(report)
        report.duration_ms = int((self.clock.monotonic() - started) * 1000)
        self._log(report, always=log_always)
        return report

    def run_once(self) -> CycleReport:
        """One full cycle (``monitor --once``): for triggered deployments."""
        ensure_handler()
        self.start()
        try:
            if not self.lease.held:
                self.lease.acquire(wait=self.wait_for_lease, stop=self.stop_event, on_wait=self._on_wait)
            return self.check_and_update(force_full=True, log_always=True)
        finally:
            self.close()

    def _watch_runs(self, report: CycleReport, *, force: bool) -> None:
        """Read the runs when due (a failure is reported, never fails the cycle: run health
        is a view, reconciling the jobs is the job)."""
        if self.runs is None or not report.lease_held or not self.lease.held:
            return
        try:
            poll = self.runs.poll(force=force)
        except Exception as error:
            report.runs_error = f"{error.__class__.__name__}: {error}"
            log.warning("cannot read the runs: %s", report.runs_error)
            return
        if poll is not None:
            report.health = poll.health
            report.runs_written = poll.written

    def _raise_alerts(self, report: CycleReport) -> None:
        if self.alerts is None:
            return
        try:
            alerts = self.alerts.observe_cycle(report, lag=self._lag(report), health=report.health)
        except Exception as error:  # alerting must never stop reconciling
            log.warning("cannot raise alerts: %s: %s", error.__class__.__name__, error)
            return
        report.alerts = [alert.title for alert in alerts]

    def _lag(self, report: CycleReport) -> int | None:
        if report.control_version is None or self._applied_version is None:
            return None
        return max(0, report.control_version - int(self._applied_version))

    def _on_wait(self, holder: LeaseInfo | None) -> None:
        if not self._was_waiting:
            log.warning("another monitor holds the writer lease (%s); waiting to take over", holder)
            self._was_waiting = True

    def _cycle(self, report: CycleReport, force_full: bool) -> None:
        self.start()
        if not self._hold_lease(report):
            return
        now = self.clock.monotonic()
        full = force_full or self._last_full is None or now - self._last_full >= self.full_resync_seconds
        report.full = full
        if self.scanner is not None:
            self._sync_volume(report, full)
        versions = self._read_versions(report)
        retry_due = self._retry_due(now)
        if not full and not report.table_changed and not retry_due:
            return  # idle: two version reads, nothing else
        if not self.auto_update_jobs:
            self._processed = versions
            return
        modules: set[str] | None = None
        if not full and self._processed is not None:
            changed = self._changed_modules(self._processed, versions) if report.table_changed else set()
            modules = None if changed is None else changed | retry_due
        if modules is None:
            versions = self._apply_changes_while_reading(report, versions, now)
            if self.stop_event.is_set():
                return  # stopped while the resync read: it did not run, nothing is processed
        report.modules_reconciled = sorted(modules) if modules is not None else None
        if modules is None or modules:
            report.run = self.orchestrator.reconcile(
                modules=modules, auto_run=self.auto_run, check_drift=True if full else None
            )
        run = report.run
        if run is not None:
            report.held += run.warnings
        if self.stop_event.is_set() and run is not None and any(r.outcome == Outcome.SKIPPED for r in run):
            return  # stopped mid-run: do not mark these versions processed
        self._schedule_retries(run, modules, now)
        self._processed = versions
        if full:
            self._last_full = now
        if run is None or run.ok:
            self._applied_version = versions[0]
        self._save_progress(versions, run)

    def _apply_changes_while_reading(
        self, report: CycleReport, versions: tuple[int, int], now: float
    ) -> tuple[int, int]:
        """Start the full resync's bulk read (a minute or more on a large workspace) and, while
        it runs, apply the changes that arrive one check interval apart, as an idle monitor
        would: a resync never delays a change. The resync that follows reads its desired state
        after them, and the target reads the jobs written meanwhile again (see
        ``WorkspaceTarget.prefetch``), so they cost it no second write. Returns the versions the
        changes applied here reach."""
        reading = self.orchestrator.target.prefetch(None, True)
        if reading is None:
            return versions
        # The end of the read cuts the sleep short, as a stop or a file event does.
        reading.add_done_callback(lambda _: self.wake.set())
        while not reading.done() and not self.stop_event.is_set():
            self.clock.sleep(self.check_interval_seconds, self.wake)
            if reading.done() or self.stop_event.is_set() or not self.lease.renew_if_due():
                break
            if self.scanner is not None:
                self._sync_volume(report, False)
            current = (self.tables.control.version(), self.tables.modules.version())
            if current == versions:
                continue
            changed = self._changed_modules(versions, current)
            if changed is None:  # the feed cannot say which: the resync covers them
                continue
            if changed:
                run = self.orchestrator.reconcile(modules=changed, auto_run=self.auto_run)
                report.applied_meanwhile.append(run)
                self._schedule_retries(run, changed, now)
            versions = current
        return versions

    def _hold_lease(self, report: CycleReport) -> bool:
        """Take the lease (a new holder starts from a full reconcile) or renew it when due."""
        if self.lease.held:
            report.lease_held = self.lease.renew_if_due()
            return report.lease_held
        if not self.lease.try_acquire():
            report.lease_held = False
            self._on_wait(self.lease.holder_info())
            return False
        if self._was_waiting:
            log.warning("took over the writer lease for %s", self.control_table)
            self._was_waiting = False
        info = self.lease.info
        generation = info.generation if info is not None else None
        if generation is None or generation != self._lease_generation:
            # The previous holder may have died mid-apply. Taking back our own lapsed lease that
            # nobody else wrote in between (same generation) needs no full reconcile.
            self._last_full = None
        self._lease_generation = generation
        return True

    def _read_versions(self, report: CycleReport) -> tuple[int, int]:
        """The two tables' Delta versions; maintenance-only commits (OPTIMIZE, VACUUM, ANALYZE)
        change no row, so they count as processed at once: no feed read, no state write."""
        versions = (self.tables.control.version(), self.tables.modules.version())
        report.control_version, report.modules_version = versions
        report.table_changed = versions != self._processed
        if report.table_changed and self._maintenance_only(versions):
            self._processed = versions
            report.table_changed = False
        return versions

    def _save_progress(self, versions: tuple[int, int], run: RunResult | None) -> None:
        self._write_state(
            PROGRESS_KEY,
            {
                "control_version": versions[0],
                "modules_version": versions[1],
                # The lag: versions seen but with a module whose apply failed (being retried).
                "applied_control_version": self._applied_version,
                "last_good_cycle_at": self.clock.now(),
                "holder": self.lease.holder_id,
                "ok": run.ok if run else True,
                "retrying": sorted(self._retry),
            },
        )

    def _retry_due(self, now: float) -> set[str]:
        return {module for module, (_, due) in self._retry.items() if due <= now}

    def _schedule_retries(self, run: RunResult | None, scope: set[str] | None, now: float) -> None:
        """A module whose apply failed *transiently* (5xx, 429, timeouts, connection errors) is
        retried on later cycles with exponential backoff, capped, even though its Delta versions
        count as processed. Invalid metadata and permanent API errors (a 4xx other than 429)
        are not: sending the same request again would fail the same way, so they wait for the
        module's metadata to change (the change feed names it) or the next full resync."""
        if run is None:
            return
        failed = {r.module for r in run if r.outcome == Outcome.ERROR and r.transient}
        held = {r.module for r in run if r.outcome == Outcome.HELD}
        reconciled = {r.module for r in run}
        for module in reconciled if scope is None else reconciled | scope:
            if module not in failed:
                self._retry.pop(module, None)
        for module in held:  # planned again every cycle, until allowed or undone
            self._retry[module] = (0, now)
        for module in failed:
            attempts = self._retry.get(module, (0, 0.0))[0] + 1
            cap = min(self.full_resync_seconds, MAX_BACKOFF_SECONDS)
            delay = min(cap, self.check_interval_seconds * 2 ** min(attempts - 1, 16))
            self._retry[module] = (attempts, now + delay)

    def _maintenance_only(self, current: tuple[int, int]) -> bool:
        """Every new version of both tables since the processed ones is a maintenance commit."""
        if self._processed is None:
            return False
        tables = (self.tables.control, self.tables.modules)
        return all(
            since == now_at or table.maintenance_only(since, now_at)
            for table, since, now_at in zip(tables, self._processed, current, strict=True)
        )

    def _changed_modules(self, processed: tuple[int, int], current: tuple[int, int]) -> set[str] | None:
        """Modules named by the Change Data Feed between ``processed`` and ``current`` versions;
        None means "read all"."""
        modules: set[str] = set()
        tables = (self.tables.control, self.tables.modules)
        for table, since, now_at in zip(tables, processed, current, strict=True):
            if now_at == since:
                continue
            changes = table.changes_since(since)
            if changes is None:
                log.info("change data feed of %s cannot answer since v%d; full reconcile", table.name, since)
                return None
            modules |= {
                str(row["module_name"])
                for row in changes
                if row.get("module_name") and int(row.get("_commit_version", now_at)) <= now_at
            }
        return modules

    def _sync_volume(self, report: CycleReport, full: bool) -> None:
        assert self.scanner is not None
        # File events only make the wait shorter (they can be dropped, and stop if the folder
        # is re-created), so a quick stat-only scan still runs every cycle.
        if self.watcher is not None and self.watcher.mode == "events" and not self.watcher.running:
            self.watcher.stop()
            try:
                self.watcher.start()
            except Exception as error:
                log.warning("cannot watch %s again yet: %s", self.volume_path, error)
        changes = self.scanner.scan(full=full)
        report.files_unstable = list(changes.unstable)
        if not changes.has_changes:
            return
        root = self.scanner.root
        known = len(self.scanner.known_paths)
        new_unstable = [rel for rel in changes.unstable if rel not in self.scanner.known_paths]
        listed = known - len(changes.deleted) + len(changes.added) + len(new_unstable)
        if volume_emptied(known, listed) and not self.orchestrator.allow_mass_change:
            # Not committed: the next cycle sees the same deletions and says so again.
            report.held.append(emptied_volume_message(root, known))
            return
        changed: dict[str, bytes] = {}
        too_large: dict[str, str] = {}
        for rel, content in {**changes.added, **changes.modified}.items():
            if content.data is not None:
                changed[os.path.join(root, rel)] = content.data
            else:
                too_large[rel] = f"{content.error} {content.detail}".strip()
        deleted = [os.path.join(root, rel) for rel in changes.deleted]
        result = self.manager.apply_file_changes(changed, deleted, display_root=os.path.dirname(root))
        report.files_added = sorted(changes.added)
        report.files_modified = sorted(changes.modified)
        report.files_deleted = sorted(changes.deleted)
        report.files_rejected = {
            os.path.relpath(path, root): [str(i) for i in issues] for path, issues in result.rejected.items()
        }
        for rel, reason in too_large.items():
            report.files_rejected[rel] = [f"{rel}: cannot load: {reason}"]
        # Rejected files are acknowledged too: they are re-read when they change again, and
        # their previously loaded rows stay as they were.
        self.scanner.commit(changes)
        self._write_state(VOLUME_KEY, self.scanner.snapshot())
        self._remember_rejections(report)

    def _remember_rejections(self, report: CycleReport) -> None:
        """Keep the set of rejected files in the state table (``status`` lists them); written
        only when it changes."""
        rejected = self._read_state(StateKey.REJECTED_FILES) or {}
        updated = {
            path: issues
            for path, issues in rejected.items()
            if path not in report.files_added
            and path not in report.files_modified
            and path not in report.files_deleted
        }
        updated.update(report.files_rejected)
        if updated != rejected:
            self._write_state(StateKey.REJECTED_FILES, updated)

    # -- loop --------------------------------------------------------------------------------
    def run_continuous(self, max_iterations: int | None = None) -> None:
        """Cycle until stopped (SIGTERM/SIGINT) or ``max_iterations`` cycles ran."""
        ensure_handler()  # from a notebook: the log goes to the cell's output
        self.start()
        try:
            while not self.stop_event.is_set():
                self._drain_wake()  # every cycle scans the volume; a wake only cut the sleep short
                report = self.check_and_update()
                if max_iterations is not None and self.iteration >= max_iterations:
                    break
                if self.stop_event.is_set():
                    break
                delay = self._next_delay(report)
                self.clock.sleep(delay, self.wake)
        finally:
            self.close()

    def _drain_wake(self) -> bool:
        if self.wake.is_set():
            self.wake.clear()
            return True
        return False

    def _changed_during(self, report: CycleReport) -> bool:
        """Whether the metadata moved while a full resync ran (its rows were read at the start):
        the next cycle then starts at once, so a resync never delays a change by a whole
        interval. Two version reads; a file event sets ``wake`` by itself."""
        if not report.full or report.error is not None or not report.lease_held:
            return False
        try:
            now = (self.tables.control.version(), self.tables.modules.version())
        except (LakeflowJobMetaError, OSError):  # the next cycle reads them again and reports it
            return False
        return now != (report.control_version, report.modules_version)

    def _next_delay(self, report: CycleReport) -> float:
        if self._changed_during(report):
            return 0.0
        if report.error is not None:
            # Back off on a table or API outage; recover by itself.
            factor: int = 2 ** min(self._failures - 1, 8)  # typeshed: int ** int may be a float
            return min(MAX_BACKOFF_SECONDS, self.check_interval_seconds * factor)
        if not report.lease_held:
            return min(self.check_interval_seconds, self.lease.renew_every)
        # Wake in time to renew the lease (every TTL/3): sleeping a whole check interval longer
        # than the TTL would let it lapse, and another monitor could take over between cycles.
        until_renewal = self.lease.seconds_until_renewal()
        if until_renewal is not None:
            return min(self.check_interval_seconds, until_renewal)
        return self.check_interval_seconds

    def _log(self, report: CycleReport, *, always: bool = False) -> None:
        self.cycle_log.record(report, lag=self._lag(report), always=always)


def install_signal_handlers(monitor: Monitor) -> None:
    """SIGTERM/SIGINT finish the module in flight, persist state and exit 0."""

    def handler(signum: int, frame: Any) -> None:
        # A stop asked for (Ctrl-C, the job being cancelled) is the normal end, not a problem.
        log.info("received %s; finishing the module in flight, then stopping", signal.Signals(signum).name)
        monitor.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

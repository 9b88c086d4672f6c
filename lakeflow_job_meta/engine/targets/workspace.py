"""``WorkspaceTarget``: the jobs in a Databricks workspace, through the Jobs API.

Owns the actual state of the workspace target: the jobs-tracking rows under its key and the live
jobs they name. Plans module by module (the spec hash says whether the metadata changed; the live
settings, when read, say whether someone edited the job) and applies with a bounded worker pool in
waves: a module named by another's ``run_job`` task goes first, so its job id is known. The
per-module writes are :class:`~lakeflow_job_meta.engine.targets.workspace_apply.WorkspaceApplier`'s.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from lakeflow_job_meta.adapters.gateway import JobsGateway, LiveJob
from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.results import ModuleResult, held_result
from lakeflow_job_meta.engine.targets.base import ApplyRun, DesiredJobs, issue_text
from lakeflow_job_meta.engine.targets.workspace_apply import TrackingWriter, WorkspaceApplier, name_conflict
from lakeflow_job_meta.errors import JobsApiError
from lakeflow_job_meta.planning.acl import RunIdentity, acl_drift, effective_acl
from lakeflow_job_meta.planning.canonical import HASH_VERSION
from lakeflow_job_meta.planning.compiler import DEFAULT_PRIORITY, CompiledJob
from lakeflow_job_meta.planning.ownership import is_owned_by_us
from lakeflow_job_meta.planning.plan import Plan, PlannedChange, TrackedJob, plan_module, take_over_renames
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.rows import TrackingRow
from lakeflow_job_meta.vocabulary import (
    DEFAULT_MAX_WORKERS,
    Outcome,
    PlanAction,
    PrunePolicy,
    TargetKind,
    tracking_status,
)

log = logging.getLogger(__name__)

# A prefetched read that waited longer than this (after it finished) for the run that takes it
# is read again: a run aborted before its apply must not leave the next one an old view.
PREFETCH_MAX_AGE_SECONDS = 120.0

# A plan of more modules than this reads the whole jobs listing (100 jobs a page, namesakes
# included) instead of one jobs/get per job and one name lookup per create.
LIST_INSTEAD_OF_GET_THRESHOLD = 20

# An ACL as the Permissions API returns it, or None: the job is gone.
Acl = list[dict[str, Any]] | None
T = TypeVar("T")
R = TypeVar("R")


def overlapped(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``fn`` over ``items`` with at most ``workers`` in flight, results in order. ``fn`` keeps
    its own errors: reads are independent, and one failed read must not lose the others."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="ljm-read") as pool:
        return list(pool.map(fn, items))


def resolve_run_job_refs(compiled: CompiledJob, job_ids: Mapping[str, int]) -> tuple[CompiledJob, list[str]]:
    """Fill ``run_job_task.job_id`` for tasks naming another module. Returns the missing modules."""
    if not compiled.run_job_refs:
        return compiled, []
    settings = json.loads(json.dumps(compiled.settings))
    missing = []

    def visit(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            module = compiled.run_job_refs.get(task.get("task_key", ""))
            if module is not None and "run_job_task" in task:
                if module in job_ids:
                    task["run_job_task"]["job_id"] = int(job_ids[module])
                else:
                    missing.append(module)
            nested = (task.get("for_each_task") or {}).get("task")
            if nested:
                visit([nested])

    visit(settings.get("tasks", []))
    return replace(compiled, settings=settings), sorted(set(missing))


def apply_waves(compiled: Mapping[str, CompiledJob], modules: Iterable[str]) -> list[list[str]]:
    """Order modules so a module referenced by ``run_job`` is applied in an earlier wave."""
    remaining = set(modules)
    waves: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = []
        for module in remaining:
            refs = set(compiled[module].run_job_refs.values()) if module in compiled else set()
            if not (refs & remaining - {module}) or refs <= done:
                ready.append(module)
        if not ready:  # a reference cycle between modules: apply what is left together
            ready = list(remaining)
        waves.append(sorted(ready))
        done |= set(ready)
        remaining -= set(ready)
    return waves


def _result_of(future: Future[ModuleResult]) -> ModuleResult:
    """Wait for one module in short slices. A SIGTERM may be taken by a worker or a Rust thread;
    its Python handler (which tells modules not yet started to stop) then runs only when the main
    thread runs bytecode again. Blocked on the first module until it finished, the main thread let
    a freed worker start the next module before the stop was seen."""
    while True:
        try:
            return future.result(timeout=0.05)
        except FutureTimeout:
            continue


def _job_name(change: PlannedChange, actual: _Actual) -> str | None:
    """The name the module's job has or will have: the metadata's, else the live job's."""
    if change.job_name:
        return change.job_name
    live = actual.live.get(change.module)
    return live.name if live is not None else None


def _tracked_job(row: TrackingRow) -> TrackedJob:
    return TrackedJob(
        module_name=row.module_name,
        job_id=row.job_id or 0,
        spec_hash=row.spec_hash,
        paused_by_tool=row.paused_by_tool,
        managed_files=row.managed_files,
        status=tracking_status(row.status),
    )


@dataclass(frozen=True)
class WorkspaceOptions:
    """How the workspace target applies: from the run settings, never from the metadata."""

    control_table_id: str
    prune: PrunePolicy = PrunePolicy.PAUSE
    default_pause_status: str | None = None
    check_drift: bool = True
    # Module applies in flight at once (each may send several requests).
    max_workers: int = DEFAULT_MAX_WORKERS
    # Reads in flight at once: jobs/get of jobs the listing gave in part, permission reads.
    max_reads: int = 4 * DEFAULT_MAX_WORKERS


@dataclass
class _Actual:
    """What the workspace holds for the modules of one plan."""

    tracked: dict[str, TrackedJob]
    live: dict[str, LiveJob]
    read_errors: dict[str, str]
    # Modules whose read failed for good (a 4xx other than 429): retrying cannot help.
    permanent: set[str] = field(default_factory=set)
    # Every listed job by exact name, when the plan read the whole listing (None when it read
    # job by job): name conflicts and leftover copies are found here without a call per module.
    by_name: dict[str, list[LiveJob]] | None = None
    # Job id -> its ACL (None: the job is gone), read while the listing was paged.
    acls: dict[int, list[dict[str, Any]] | None] = field(default_factory=dict)

    def same_name(self, name: str | None) -> list[LiveJob] | None:
        """The listed jobs named ``name``, or None when the listing was not read."""
        if self.by_name is None or name is None:
            return None
        return list(self.by_name.get(name, []))


@dataclass
class _LiveSnapshot:
    """What one bulk read found, by job id: the listing and the ACLs of the tracked jobs."""

    # The job ids whose ACLs (and whole settings, when listed in part) were read.
    requested: set[int]
    jobs: dict[int, LiveJob] = field(default_factory=dict)
    by_name: dict[str, list[LiveJob]] | None = None
    acls: dict[int, list[dict[str, Any]] | None] = field(default_factory=dict)
    # A job listed in part whose jobs/get failed.
    errors: dict[int, JobsApiError] = field(default_factory=dict)
    listing_error: JobsApiError | None = None
    # What the tracking rows said of each job when the read began (see :func:`_written`).
    written: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    # When a prefetched read finished (the clock's monotonic seconds).
    read_at: float = 0.0


def _written(tracked: TrackedJob) -> tuple[Any, ...]:
    """What changes in a job's tracking row when the tool writes the job or its ACL."""
    return (tracked.spec_hash, tracked.paused_by_tool, json.dumps(tracked.managed_files, sort_keys=True))


class WorkspaceTarget:
    """Jobs in a workspace; the jobs-tracking table remembers which ones are ours."""

    kind = TargetKind.WORKSPACE

    def __init__(
        self,
        gateway: Callable[[], JobsGateway],
        tracking_table: Table,
        options: WorkspaceOptions,
        clock: Clock,
    ):
        self._connect = gateway
        self._gateway: JobsGateway | None = None
        self.tracking_table = tracking_table
        self.options = options
        self.clock = clock
        self._tracking_lock = threading.Lock()
        # The bulk read :meth:`prefetch` started, taken by the next run that reads everything.
        self._prefetched: Future[_LiveSnapshot] | None = None

    @property
    def gateway(self) -> JobsGateway:
        """Connected on first use: building the target needs no credentials."""
        if self._gateway is None:
            self._gateway = self._connect()
        return self._gateway

    @property
    def key(self) -> str:
        return f"workspace:{self.gateway.host}"

    @property
    def prune(self) -> PrunePolicy:
        return self.options.prune

    def describe(self) -> str:
        return f"target: workspace {self.gateway.host}"

    def scope(self, modules: set[str] | None) -> set[str] | None:
        return modules

    def owner_identity(self) -> RunIdentity | None:
        return self.gateway.current_identity()

    def check_owner(self) -> None:
        """Nothing to check as a whole: each job's ownership tags are checked before it is touched."""

    def managed_jobs(self, desired: DesiredJobs) -> int:
        return sum(1 for t in self.tracked(desired.tracking_key).values() if t.job_id)

    # -- actual state --------------------------------------------------------------------------
    def tracked(self, tracking_key: str) -> dict[str, TrackedJob]:
        rows = (TrackingRow.from_row(row) for row in self.tracking_table.read_all())
        return {row.module_name: _tracked_job(row) for row in rows if row.target == tracking_key}

    def _tracked_view(self, desired: DesiredJobs) -> dict[str, TrackedJob]:
        """The tracked jobs with renames taken over (see :func:`take_over_renames`)."""
        return take_over_renames(self.tracked(desired.tracking_key), desired.compiled, desired.known)

    def prefetch(self, scope: set[str] | None, check_drift: bool | None) -> Future[Any] | None:
        """Start the bulk read of a full run (the listing and every tracked job's ACL) in the
        background while the desired state is read and compiled: the two do not depend on each
        other, and the read is mostly waiting on the network. Returns the read under way (one at
        a time: a read already under way is returned, not started again), or None when the next
        run reads job by job. The client (and its preflight) is built here, on the caller's
        thread, so a bad host or refused credentials fail as before.

        A job the tool writes between this read and the run that takes it (the monitor applies
        changes while a full resync's read runs) is read again then, by itself."""
        drift = self.options.check_drift if check_drift is None else check_drift
        if scope is not None or not drift:
            return None
        if self._prefetched is not None:
            return self._prefetched
        rows = self._tracked_rows()
        if len(rows) <= LIST_INSTEAD_OF_GET_THRESHOLD:
            return None
        gateway = self.gateway
        gateway.start_run()
        future: Future[_LiveSnapshot] = Future()
        written = {job_id: _written(row) for job_id, row in rows.items()}

        def read() -> None:
            try:
                snapshot = self._read_snapshot(set(rows), written)
                snapshot.read_at = self.clock.monotonic()
                future.set_result(snapshot)
            except BaseException as error:  # handed to the run that takes the snapshot
                future.set_exception(error)

        threading.Thread(target=read, name="ljm-prefetch", daemon=True).start()
        self._prefetched = future
        return future

    def _tracked_rows(self) -> dict[int, TrackedJob]:
        """Every job this workspace's tracking rows name, whatever their environment."""
        key = self.key
        rows = (TrackingRow.from_row(row) for row in self.tracking_table.read_all())
        return {
            row.job_id: _tracked_job(row)
            for row in rows
            if row.job_id and (row.target == key or row.target.startswith(f"{key}#"))
        }

    def _read_actual(self, tracked: dict[str, TrackedJob], names: set[str], drift: bool) -> _Actual:
        """Live jobs of tracked modules; a module whose job cannot be read goes to ``read_errors``
        (one failed read never aborts the run). A plan of many modules reads the jobs listing
        once (or takes what :meth:`prefetch` read); a few modules (the monitor applying one
        change) are read job by job."""
        actual = _Actual(tracked, {}, {})
        wanted = {m: t for m, t in tracked.items() if m in names and t.job_id}
        if not drift:
            return actual
        if len(names) <= LIST_INSTEAD_OF_GET_THRESHOLD:
            self._read_each(actual, wanted)
            return actual
        prefetched, self._prefetched = self._prefetched, None
        ids = {t.job_id for t in wanted.values()}
        snapshot = prefetched.result() if prefetched is not None else None
        if snapshot is not None and self.clock.monotonic() - snapshot.read_at > PREFETCH_MAX_AGE_SECONDS:
            snapshot = None
        if snapshot is None:
            snapshot = self._read_snapshot(ids, {})
        else:
            # Tracked after the read began, or written by the tool since: read those again.
            moved = {t.job_id for t in wanted.values() if snapshot.written.get(t.job_id) != _written(t)}
            stale = (ids - snapshot.requested) | (moved & ids)
            if stale:
                self._complete(snapshot, stale)
        self._assemble(actual, wanted, snapshot)
        return actual

    def _read_snapshot(self, job_ids: set[int], written: dict[int, tuple[Any, ...]]) -> _LiveSnapshot:
        """The listing, with the ACLs of ``job_ids`` read while it pages (permissions have no
        bulk read) and a whole ``jobs/get`` of each of them the listing gave in part."""
        snapshot = _LiveSnapshot(requested=set(job_ids), written=written)
        with ThreadPoolExecutor(max_workers=self.options.max_reads, thread_name_prefix="ljm-acl") as pool:
            acls = {job_id: pool.submit(self._read_acl, job_id) for job_id in sorted(job_ids)}
            self._read_listing(snapshot)
            snapshot.acls = {
                job_id: acl for job_id, future in acls.items() for read, acl in [future.result()] if read
            }
        self._read_partial(snapshot, job_ids)
        return snapshot

    def _complete(self, snapshot: _LiveSnapshot, job_ids: set[int]) -> None:
        """Read the ACLs and whole settings of ``job_ids`` again, into the snapshot."""
        snapshot.requested |= job_ids
        for job_id in job_ids:
            snapshot.acls.pop(job_id, None)
            snapshot.errors.pop(job_id, None)
        if snapshot.listing_error is None:
            fresh = overlapped(self._get_or_error, sorted(job_ids), self.options.max_reads)
            for job_id, job, error in fresh:
                snapshot.jobs.pop(job_id, None)
                if error is not None:
                    snapshot.errors[job_id] = error
                elif job is not None:
                    snapshot.jobs[job_id] = job
        acls = overlapped(self._read_acl, sorted(job_ids), self.options.max_reads)
        snapshot.acls.update(
            {job_id: acl for job_id, (read, acl) in zip(sorted(job_ids), acls, strict=True) if read}
        )
        self._read_partial(snapshot, job_ids)

    def _read_listing(self, snapshot: _LiveSnapshot) -> None:
        """Every job of the workspace, 100 a page with their first 100 tasks, by id and by name.
        A page that fails is retried by itself (the gateway); a listing that still fails is
        the snapshot's error, and every module is left for the next run."""
        by_id: dict[int, LiveJob] = {}
        by_name: dict[str, list[LiveJob]] = {}
        token: str | None = None
        try:
            while True:
                page = self.gateway.list_page(token)
                for job in page.jobs:
                    by_id[job.job_id] = job
                    by_name.setdefault(job.name, []).append(job)
                token = page.next_page_token
                if not token:
                    break
        except JobsApiError as error:
            snapshot.listing_error = error
            return
        snapshot.jobs, snapshot.by_name = by_id, by_name

    def _read_partial(self, snapshot: _LiveSnapshot, job_ids: set[int]) -> None:
        """A job of ``job_ids`` whose tasks continue past the listing's first page
        (``has_more``) is read whole with ``jobs/get``, overlapped."""
        partial = sorted(i for i in job_ids if i in snapshot.jobs and snapshot.jobs[i].partial)
        for job_id, job, error in overlapped(self._get_or_error, partial, self.options.max_reads):
            if error is not None:
                snapshot.errors[job_id] = error
                del snapshot.jobs[job_id]
            elif job is None:
                del snapshot.jobs[job_id]
            else:
                snapshot.jobs[job_id] = job

    def _get_or_error(self, job_id: int) -> tuple[int, LiveJob | None, JobsApiError | None]:
        """``jobs/get`` keeping its error: reads are independent, one failure loses no other."""
        try:
            return job_id, self.gateway.get(job_id), None
        except JobsApiError as error:
            return job_id, None, error

    @staticmethod
    def _assemble(actual: _Actual, wanted: dict[str, TrackedJob], snapshot: _LiveSnapshot) -> None:
        """The snapshot's jobs and ACLs under the module names of this run."""
        if snapshot.listing_error is not None:
            error = snapshot.listing_error
            actual.read_errors = dict.fromkeys(wanted, f"could not list the live jobs: {error}")
            if error.permanent:
                actual.permanent.update(wanted)
            return
        actual.by_name = snapshot.by_name
        for module, t in wanted.items():
            if t.job_id in snapshot.errors:
                error = snapshot.errors[t.job_id]
                actual.read_errors[module] = f"could not read job {t.job_id}: {error}"
                if error.permanent:
                    actual.permanent.add(module)
            elif t.job_id in snapshot.jobs:
                actual.live[module] = snapshot.jobs[t.job_id]
        actual.acls = {
            t.job_id: snapshot.acls[t.job_id] for t in wanted.values() if t.job_id in snapshot.acls
        }

    def _read_each(self, actual: _Actual, wanted: dict[str, TrackedJob]) -> None:
        """One ``jobs/get`` per job, overlapped under ``max_reads``."""

        def read(item: tuple[str, TrackedJob]) -> tuple[str, LiveJob | None, JobsApiError | None]:
            module, t = item
            try:
                return module, self.gateway.get(t.job_id), None
            except JobsApiError as error:
                return module, None, error

        for module, job, error in overlapped(read, sorted(wanted.items()), self.options.max_reads):
            if error is not None:
                actual.read_errors[module] = f"could not read job {wanted[module].job_id}: {error}"
                if error.permanent:
                    actual.permanent.add(module)
            elif job is not None:
                actual.live[module] = job

    # -- plan ----------------------------------------------------------------------------------
    def plan(self, desired: DesiredJobs, *, scope: set[str] | None, check_drift: bool | None) -> Plan:
        self.gateway.start_run()  # the retry budget is per run
        changes, actual = self._plan(desired, self._tracked_view(desired), scope, check_drift, {})
        return Plan(changes=[self._with_name_conflict(change, actual) for change in changes])

    def _with_name_conflict(self, change: PlannedChange, actual: _Actual) -> PlannedChange:
        """A create whose name a job we do not own already has is shown as the error apply
        would report: from the listing when the plan read it, else one jobs/list by name (a
        plan never writes)."""
        if change.action != PlanAction.CREATE or change.compiled is None:
            return change
        same_name = actual.same_name(change.compiled.job_name)
        if same_name is None:
            try:
                same_name = self.gateway.list_by_name(change.compiled.job_name)
            except JobsApiError as error:
                return replace(
                    change, action=PlanAction.ERROR, reason=f"could not list jobs by name: {error}"
                )
        table_id = self.options.control_table_id
        others = [j for j in same_name if not is_owned_by_us(j.tags, table_id, change.module)]
        adoptable, conflict = name_conflict(change.compiled, change.module, others)
        if conflict is not None:
            return replace(change, action=PlanAction.ERROR, reason=conflict)
        if adoptable is not None:
            reason = f"adopt_existing: take over job {adoptable.job_id}"
            return replace(change, job_id=adoptable.job_id, reason=reason)
        return change

    def _plan(
        self,
        desired: DesiredJobs,
        tracked: dict[str, TrackedJob],
        scope: set[str] | None,
        check_drift: bool | None,
        job_ids: Mapping[str, int],
        read: _Actual | None = None,
    ) -> tuple[list[PlannedChange], _Actual]:
        """Plan the modules in ``scope``. ``read``: the live state an apply read once for all its
        waves (a later wave's jobs are untouched by the earlier ones), else read here."""
        drift = self.options.check_drift if check_drift is None else check_drift
        names = set(desired.compiled) | set(tracked) | set(desired.issues)
        if scope is not None:
            names &= scope
        actual = (
            replace(read, tracked=tracked) if read is not None else self._read_actual(tracked, names, drift)
        )
        ids = {m: t.job_id for m, t in tracked.items() if t.job_id}
        ids.update(job_ids)
        changes = [self._plan_one(name, desired, actual, ids, drift) for name in sorted(names)]
        if drift:
            kept = [change for change in changes if change.module in actual.live]
            overlapped(
                lambda change: self._check_acl_drift(change, actual.acls), kept, self.options.max_reads
            )
        return changes, actual

    def _read_acl(self, job_id: int) -> tuple[bool, Acl]:
        """Whether a job's ACL could be read, and the ACL (a plan leaves an unread one alone)."""
        try:
            return True, self.gateway.get_permissions(job_id)
        except JobsApiError as error:
            log.warning("could not read the permissions of job %s: %s", job_id, error)
            return False, None

    def _check_acl_drift(self, change: PlannedChange, acls: Mapping[int, Acl] | None = None) -> None:
        """Compare the live ACL of a job we keep with the one we send: every managed job's, as
        one with no declared grants is sent owner-only. Inherited grants are not drift, and
        neither is the live owner when the metadata names none (the tool never moves it). An ACL
        that cannot be read is left alone: the next full resync looks again."""
        compiled = change.compiled
        if (
            change.action not in (PlanAction.NOOP, PlanAction.UPDATE)
            or compiled is None
            or not compiled.permissions
            or not change.job_id
        ):
            return
        if acls is not None and change.job_id in acls:
            live = acls[change.job_id]
        else:
            read, live = self._read_acl(change.job_id)
            if not read:
                return
        if isinstance(live, list):
            change.live_acl = live
            acl = effective_acl(compiled.permissions, compiled.declared_permissions or [], live)
            change.acl_drift = acl_drift(acl, live)
            change.drift = change.drift or bool(change.acl_drift)

    def _plan_one(
        self, name: str, desired: DesiredJobs, actual: _Actual, job_ids: Mapping[str, int], drift: bool
    ) -> PlannedChange:
        t = actual.tracked.get(name)
        known_id = t.job_id if t is not None else None
        if name in actual.read_errors:  # this module's job could not be read: leave it for next run
            return PlannedChange(
                name,
                PlanAction.ERROR,
                job_id=known_id,
                reason=actual.read_errors[name],
                transient=name not in actual.permanent,
            )
        if name in desired.issues:
            return PlannedChange(
                name, PlanAction.ERROR, job_id=known_id, reason=issue_text(desired.issues, name)
            )
        job = desired.compiled.get(name)
        if job is not None:
            job, missing = resolve_run_job_refs(job, job_ids)
            # A module the apply creates first is fine (should its create fail, the applier
            # refuses to send the placeholder job id 0); one that will get no job is an error now.
            missing = [m for m in missing if m not in desired.compiled]
            if missing:
                reason = f"run_job task names module {', '.join(missing)}, which has no job"
                return PlannedChange(
                    name, PlanAction.ERROR, job_id=known_id, job_name=job.job_name, reason=reason
                )
        live = actual.live.get(name)
        if t is not None and drift and t.job_id and live is None and job is not None:
            t = None  # tracked but gone from the workspace: create it again
        return plan_module(
            job,
            t,
            live.settings if live is not None else None,
            prune=self.options.prune,
            check_drift=drift and live is not None,
        )

    # -- apply ---------------------------------------------------------------------------------
    def apply(self, desired: DesiredJobs, run: ApplyRun, *, scope: set[str] | None) -> list[ModuleResult]:
        self.gateway.start_run()  # the retry budget is per run
        tracked = self._tracked_view(desired)
        names = self._apply_names(desired, tracked, scope)
        run.progress.start(len(names))
        applier = self._applier(desired, run)
        results: list[ModuleResult] = []
        job_ids: dict[str, int] = {}
        drift = self.options.check_drift if run.check_drift is None else run.check_drift
        read = self._read_actual(tracked, names, drift)  # once: one listing for every wave
        for wave in apply_waves(desired.compiled, names):
            tracked = self._tracked_view(desired) if job_ids else tracked
            changes, actual = self._plan(desired, tracked, set(wave), run.check_drift, job_ids, read)
            changes, held = run.mass_change.screen(changes)
            results += [held_result(change) for change in held]
            for result in self._apply_wave(desired, changes, actual, applier, run):
                results.append(result)
                if result.job_id:
                    job_ids[result.module] = result.job_id
        return results

    @staticmethod
    def _apply_names(
        desired: DesiredJobs, tracked: Mapping[str, TrackedJob], scope: set[str] | None
    ) -> set[str]:
        names = set(desired.compiled) | set(tracked) | set(desired.issues)
        if scope is None:
            return names
        # A module referenced by run_job from a module in scope must exist first.
        refs = {
            ref for m in scope if m in desired.compiled for ref in desired.compiled[m].run_job_refs.values()
        }
        return names & (scope | refs)

    def _applier(self, desired: DesiredJobs, run: ApplyRun) -> WorkspaceApplier:
        return WorkspaceApplier(
            self.gateway,
            TrackingWriter(self.tracking_table, desired.tracking_key, self._tracking_lock),
            control_table_id=self.options.control_table_id,
            default_pause_status=self.options.default_pause_status,
            applied_version=run.applied_version,
            hash_version=HASH_VERSION,
            auto_run=run.auto_run,
            run_token=run.run_id,
            clock_monotonic=self.clock.monotonic,
            clock_now=self.clock.now,
        )

    def _apply_wave(
        self,
        desired: DesiredJobs,
        changes: list[PlannedChange],
        actual: _Actual,
        applier: WorkspaceApplier,
        run: ApplyRun,
    ) -> list[ModuleResult]:
        def one(change: PlannedChange) -> ModuleResult:
            result = apply_one(change)
            run.progress.advance(result)
            return result

        def apply_one(change: PlannedChange) -> ModuleResult:
            refused = run.guard(change)
            if refused is not None:
                return refused
            try:
                return applier.apply(
                    change,
                    actual.tracked.get(change.module),
                    actual.live.get(change.module),
                    same_name=actual.same_name(_job_name(change, actual)),
                )
            except Exception as error:  # one module's bug never aborts the run
                log.exception("module %s failed", change.module)
                return ModuleResult(change.module, change.action, outcome=Outcome.ERROR, error=repr(error))

        compiled = desired.compiled
        priority = {
            c.module: compiled[c.module].priority if c.module in compiled else DEFAULT_PRIORITY
            for c in changes
        }
        ordered = sorted(changes, key=lambda c: (priority[c.module], c.module))
        with ThreadPoolExecutor(max_workers=self.options.max_workers, thread_name_prefix="ljm-apply") as pool:
            return [_result_of(future) for future in [pool.submit(one, change) for change in ordered]]

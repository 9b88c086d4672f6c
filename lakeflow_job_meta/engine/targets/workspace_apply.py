"""``WorkspaceApplier``: one module's planned change applied to a workspace, idempotently and
without ever touching foreign jobs.

Invariants this module keeps:

- The jobs-tracking table is authoritative and is written right after each ``jobs/create``.
- Before creating, jobs with the exact name are listed and one carrying our tags is adopted, so a
  crash between create and recording never yields a second job.
- A create whose reply was lost may have landed, once or more: the SDK resends it after a reset
  connection (and, before 0.167, after a read timeout), so after every create the name is listed
  again and extra copies carrying our tags are deleted; when no reply came back at all
  (:class:`ReplyLostError`, or any failed create) the job is looked up by name and ownership tags
  and adopted in the same run.
- A job without our ownership tags is never reset, updated, paused or deleted.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lakeflow_job_meta.adapters.gateway import JobsGateway, LiveJob
from lakeflow_job_meta.engine.results import ModuleResult
from lakeflow_job_meta.errors import (
    JobsApiError,
    NameConflictError,
    NotOwnedError,
    PermanentApiError,
    TransientApiError,
)
from lakeflow_job_meta.metadata.tags import MAX_JOB_TAGS, REMOVED_TAG
from lakeflow_job_meta.planning.acl import (
    acl_drift,
    effective_acl,
    live_owner,
    owners,
    principal_of,
)
from lakeflow_job_meta.planning.canonical import PAUSABLE_BLOCKS
from lakeflow_job_meta.planning.compiler import CompiledJob, file_sha256
from lakeflow_job_meta.planning.ignore_drift import with_live_values
from lakeflow_job_meta.planning.normalize import compare_settings
from lakeflow_job_meta.planning.ownership import (
    REMOVED_TAG_VALUE,
    describe_owner,
    is_managed_by_tool,
    is_owned_by_us,
)
from lakeflow_job_meta.planning.plan import PlannedChange, TrackedJob
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.rows import TrackingRow
from lakeflow_job_meta.vocabulary import PENDING_STATUSES, Outcome, PlanAction, TrackingStatus

PERMISSIONS_KEY = "permissions:"  # reserved key in managed_files: hash of the applied ACL


def acl_digest(acl: list[dict[str, Any]] | None) -> str | None:
    if not acl:
        return None
    canonical = json.dumps(sorted(acl, key=lambda e: json.dumps(e, sort_keys=True)), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_pause_status(
    settings: Mapping[str, Any],
    *,
    explicit_pause: bool,
    live: Mapping[str, Any] | None,
    paused_by_tool: bool,
    default_pause_status: str | None,
) -> dict[str, Any]:
    """Settings to send: metadata's explicit pause wins; else an operator's live pause is kept;
    else a pause the tool made for pruning is undone; a new job gets ``default_pause_status``."""
    result: dict[str, Any] = json.loads(json.dumps(settings))
    if explicit_pause:
        return result
    for block in PAUSABLE_BLOCKS:
        if block not in result or "pause_status" in result[block]:
            continue
        if paused_by_tool:
            result[block]["pause_status"] = "UNPAUSED"
        elif live is not None:
            live_status = (live.get(block) or {}).get("pause_status")
            if live_status:
                result[block]["pause_status"] = live_status
        elif default_pause_status:
            result[block]["pause_status"] = default_pause_status
    return result


# How one planned action is applied: (change, tracked job, live job, result to fill in).
_Handler = Callable[[PlannedChange, TrackedJob | None, LiveJob | None, ModuleResult], None]


@dataclass
class _Write:
    """One worker's tracking write waiting for its group's commit."""

    key: str
    row: dict[str, Any] | None  # None: forget the module
    done: bool = False
    error: BaseException | None = None


@dataclass
class TrackingWriter:
    """Writes to the jobs-tracking table from concurrent workers, a group commit at a time: a
    worker whose write arrives while another commit is running waits and goes into the next one,
    together with every other write that arrived meanwhile. Each ``record`` still returns only
    once its row is committed (a job id is never lost), but eight workers cost one Delta commit
    where they cost eight (a full resync that settles 150 modules: about 20 commits, not 150)."""

    table: Table
    target: str
    lock: threading.Lock
    _pending: list[_Write] = field(default_factory=list, init=False, repr=False)
    _committing: bool = field(default=False, init=False, repr=False)
    _turn: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    def record(
        self,
        tracked: TrackedJob,
        *,
        status: TrackingStatus,
        last_error: str | None,
        applied_version: int | None,
        job_name: str | None,
        hash_version: int,
    ) -> None:
        row = TrackingRow(
            target=self.target,
            module_name=tracked.module_name,
            job_id=tracked.job_id,
            job_name=job_name,
            spec_hash=tracked.spec_hash,
            hash_version=hash_version,
            applied_version=applied_version,
            status=status,
            last_error=last_error,
            paused_by_tool=tracked.paused_by_tool,
            managed_files=tracked.managed_files,
        ).as_row()
        self._commit(_Write(tracked.module_name, row))

    def forget(self, module_name: str) -> None:
        self._commit(_Write(module_name, None))

    def _commit(self, write: _Write) -> None:
        with self._turn:
            self._pending.append(write)
            self._turn.notify_all()  # lets an observer (a test) see the queue grow
            while not write.done and self._committing:
                self._turn.wait()
            if write.done:
                if write.error is not None:
                    raise write.error
                return
            self._committing = True  # this worker commits the group
            group, self._pending = self._pending, []
        error: BaseException | None = None
        try:
            latest = {w.key: w.row for w in group}  # a module's last write in the group wins
            upserts = [row for row in latest.values() if row is not None]
            deletes = [{"target": self.target, "module_name": k} for k, row in latest.items() if row is None]
            with self.lock:
                self.table.merge(upserts, deletes)
        except BaseException as failure:  # every writer of the group learns it, then it is raised
            error = failure
        with self._turn:
            for w in group:
                w.done, w.error = True, error
            self._committing = False
            self._turn.notify_all()
        if error is not None:
            raise error


class WorkspaceApplier:
    """Executes one module's planned change against the workspace."""

    def __init__(
        self,
        gateway: JobsGateway,
        tracking: TrackingWriter,
        *,
        control_table_id: str,
        default_pause_status: str | None,
        applied_version: int | None,
        hash_version: int,
        auto_run: bool,
        run_token: str,
        clock_monotonic: Callable[[], float] = time.monotonic,
        clock_now: Callable[[], float] = time.time,
    ):
        self.gateway = gateway
        self.tracking = tracking
        self.control_table_id = control_table_id
        self.default_pause_status = default_pause_status
        self.applied_version = applied_version
        self.hash_version = hash_version
        self.auto_run = auto_run
        self.run_token = run_token
        self.monotonic = clock_monotonic
        self.now = clock_now
        self._latest: TrackedJob | None = None
        self._same_name: list[LiveJob] | None = None

    # -- helpers -----------------------------------------------------------------------------
    def _owned(self, job: LiveJob, module: str) -> bool:
        return is_owned_by_us(job.tags, self.control_table_id, module)

    def _require_owned(self, job: LiveJob, module: str) -> None:
        if not self._owned(job, module):
            raise NotOwnedError(
                f"job {job.job_id} ({job.name!r}) does not carry this tool's ownership tags for module "
                f"{module!r}; it is left untouched"
            )

    def _record(
        self,
        tracked: TrackedJob,
        change: PlannedChange,
        status: TrackingStatus = TrackingStatus.OK,
        error: str | None = None,
    ) -> None:
        self.tracking.record(
            tracked,
            status=status,
            last_error=error,
            applied_version=self.applied_version,
            job_name=change.job_name,
            hash_version=self.hash_version,
        )
        self._latest = replace(tracked, status=status)

    def _sync_files(self, change: PlannedChange, files: dict[str, str]) -> int:
        writes = 0
        for path, text in sorted(change.file_writes.items()):
            self.gateway.write_file(path, text)
            files[path] = file_sha256(text)
            writes += 1
        for path in sorted(change.file_deletes):
            self.gateway.delete_file(path)
            files.pop(path, None)
            writes += 1
        return writes

    def _sync_permissions(
        self,
        job_id: int,
        change: PlannedChange,
        files: dict[str, str],
        *,
        created: bool = False,
    ) -> int:
        """Send the ACL when it changed since we last sent it, or when the live one drifted.
        Every managed job has one (owner-only when the metadata grants nothing), so a grant the
        metadata dropped is revoked. The live owner is kept unless the metadata names another;
        the live ACL (read by the plan, else here) decides whether a PUT is needed at all, and
        a job this run ``created`` is known to hold its creator as sole owner."""
        compiled = change.compiled
        acl = compiled.permissions if compiled is not None else None
        digest = acl_digest(acl)
        if compiled is None or acl is None or digest is None:
            return 0
        if files.get(PERMISSIONS_KEY) == digest and not change.acl_drift:
            return 0
        declared = compiled.declared_permissions or []
        live: list[dict[str, Any]] | None = None
        if created:
            # The creator owns it: the compiled owner unless the metadata names another (then the
            # PUT is needed anyway, and a refusal reads the live ACL to say why).
            if not owners(declared):
                live = [_direct_grant(entry) for entry in owners(acl)]
        else:
            live = change.live_acl if change.live_acl is not None else self.gateway.get_permissions(job_id)
        send = effective_acl(acl, declared, live)
        if live is not None and not acl_drift(send, live):
            files[PERMISSIONS_KEY] = digest  # already as we want it: nothing to write
            return 0
        try:
            self.gateway.set_permissions(job_id, send)
        except JobsApiError as error:
            if error.sdk_error == "PermissionDenied" and live is None:
                live = self.gateway.get_permissions(job_id)
            raise _owner_change_error(job_id, send, live, error) from error
        files[PERMISSIONS_KEY] = digest
        return 1

    def _maybe_run(self, job_id: int, result: ModuleResult) -> None:
        if not self.auto_run:
            return
        if self.gateway.has_active_run(job_id):
            return
        result.run_id = self.gateway.run_now(job_id, idempotency_token=f"ljm-{self.run_token}-{job_id}"[:64])

    @staticmethod
    def _require_resolved(compiled: CompiledJob) -> None:
        """Refuse settings whose run_job task still holds the placeholder job id 0 (the module it
        names got no job, e.g. its create failed earlier in this run)."""
        unresolved: list[str] = []

        def visit(tasks: list[dict[str, Any]]) -> None:
            for task in tasks:
                module = compiled.run_job_refs.get(task.get("task_key", ""))
                if module is not None and not (task.get("run_job_task") or {}).get("job_id"):
                    unresolved.append(module)
                nested = (task.get("for_each_task") or {}).get("task")
                if nested:
                    visit([nested])

        visit(compiled.settings.get("tasks") or [])
        if unresolved:
            raise TransientApiError(
                f"run_job task names module {', '.join(sorted(set(unresolved)))}, which has no job yet"
            )

    # -- actions -----------------------------------------------------------------------------
    def apply(
        self,
        change: PlannedChange,
        tracked: TrackedJob | None,
        live: LiveJob | None,
        *,
        same_name: list[LiveJob] | None = None,
    ) -> ModuleResult:
        """Apply one module's change with its own write counter (workers run concurrently).
        ``same_name``: the listed jobs of the module's job name, when the plan read the listing
        (a pending create is then settled without a lookup)."""
        scoped = copy.copy(self)
        scoped.gateway = self.gateway.scoped()
        scoped._latest = None  # the tracking row this module last wrote, in this run
        scoped._same_name = same_name
        return scoped._apply(change, tracked, live)

    def _apply(self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None) -> ModuleResult:
        started = self.monotonic()
        result = ModuleResult(
            started_at=self.now(),
            module=change.module,
            action=change.action,
            job_id=change.job_id,
            job_name=change.job_name,
            drift=change.drift,
            diff=[*(str(d) for d in change.diff), *change.acl_drift],
            old_hash=change.old_hash,
            new_hash=change.new_hash,
        )
        try:
            if (
                tracked is not None
                and tracked.status in PENDING_STATUSES
                and tracked.job_id
                and change.action != PlanAction.CREATE  # a create looks for copies by itself
            ):
                tracked = self._settle_pending(change, tracked, live)
            self._handler(change.action)(change, tracked, live, result)
        except JobsApiError as error:
            result.outcome = Outcome.ERROR
            # API errors already name the call and the SDK error; a refusal of our own
            # (NotOwnedError, NameConflictError) is named here.
            named = not isinstance(error, NotOwnedError)
            result.error = str(error) if named else f"{type(error).__name__}: {error}"
            result.transient = not error.permanent
            # Mark the row this module last recorded (not the one read before the run: a failure
            # after a successful reset must not bring back the old hash and cost another reset).
            latest = self._latest or tracked
            if latest is not None and latest.renamed_from is not None and self._latest is None:
                # A rename that wrote nothing (a conflict, a failed read): the error belongs to
                # the old name's row; a row under the new name would claim a job not yet renamed.
                latest = replace(latest, module_name=latest.renamed_from, renamed_from=None)
            if latest is not None:
                # A create or adopt still pending keeps that status, so the next run settles it.
                status = latest.status if latest.status in PENDING_STATUSES else TrackingStatus.ERROR
                try:
                    self._record(latest, change, status=status, error=str(error))
                except Exception as record_error:  # keep the first error; the run goes on
                    result.error += f" (and recording it failed: {record_error})"
        result.job_writes = self.gateway.writes.job_writes
        result.other_writes = self.gateway.writes.other_writes
        result.duration_ms = int((self.monotonic() - started) * 1000)
        return result

    def _handler(self, action: PlanAction) -> _Handler:
        """The method that applies a planned change of ``action`` (a plan holds no other)."""
        handlers: dict[PlanAction, _Handler] = {
            PlanAction.CREATE: self._do_create,
            PlanAction.UPDATE: self._do_update,
            PlanAction.PAUSE: self._do_pause,
            PlanAction.DELETE: self._do_delete,
            PlanAction.ORPHANED: self._do_orphaned,
            PlanAction.NOOP: self._do_noop,
            PlanAction.ERROR: self._do_error,
        }
        return handlers[action]

    def _do_noop(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        if tracked is None:
            return
        files = dict(tracked.managed_files)
        other = self._sync_files(change, files)
        if tracked.job_id:
            other += self._sync_permissions(tracked.job_id, change, files)
        changed = other or files != dict(tracked.managed_files)
        if changed or (change.compiled is not None and tracked.status != TrackingStatus.OK):
            # also clears a stale "error"/"paused" once the module is back in shape
            self._record(replace(tracked, managed_files=files), change)

    def _do_error(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        result.outcome = Outcome.ERROR
        result.error = change.reason
        result.transient = change.transient

    def _find_ours_by_name(self, name: str, module: str, *, listed: bool = False) -> list[LiveJob]:
        """Our jobs of that name: from the plan's listing when ``listed`` allows it and the plan
        read one, else one ``jobs/list`` by name."""
        same_name = self._same_name if listed and self._same_name is not None else None
        if same_name is None:
            same_name = self.gateway.list_by_name(name)
        return [job for job in same_name if job.name == name and self._owned(job, module)]

    def _name_conflict(self, compiled: CompiledJob, module: str, same_name: list[LiveJob]) -> LiveJob | None:
        adoptable, conflict = name_conflict(compiled, module, same_name)
        if conflict is not None:
            raise NameConflictError(conflict)
        return adoptable

    def _remove_duplicates(self, keep: int, candidates: list[LiveJob]) -> None:
        for job in candidates:
            if job.job_id != keep:
                self.gateway.delete(job.job_id)

    def _settle_pending(self, change: PlannedChange, tracked: TrackedJob, live: LiveJob | None) -> TrackedJob:
        """Finish a create or adopt that stopped before its duplicates were removed (a failed
        list, a crash): delete the other copies carrying our tags, then mark the row ok."""
        name = change.job_name or (live.name if live is not None else None)
        if name is None:
            live = self.gateway.get(tracked.job_id)
            name = live.name if live is not None else None
        if name is not None:
            ours = self._find_ours_by_name(name, change.module, listed=True)
            self._remove_duplicates(tracked.job_id, ours)
        settled = replace(tracked, status=TrackingStatus.OK)
        if change.action == PlanAction.NOOP:  # other actions record their own outcome
            self._record(settled, change)
        return settled

    def _do_create(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        compiled = change.compiled
        assert compiled is not None
        self._require_resolved(compiled)
        same_name = self.gateway.list_by_name(compiled.job_name)
        ours = [job for job in same_name if self._owned(job, change.module)]
        if not ours:
            adoptable = self._name_conflict(compiled, change.module, same_name)
            if adoptable is not None:
                # The one hand-made job a module with adopt_existing: true takes over.
                ours = [adoptable]
                result.action = PlanAction.ADOPT_EXISTING
        if ours:
            # A job we created earlier but never recorded (crash, lost reply): adopt it.
            if result.action != PlanAction.ADOPT_EXISTING:
                result.action = PlanAction.ADOPT
            job_id = self._adopt(change, compiled, ours)
        else:
            job_id = self._create_new(change, compiled)
        files: dict[str, str] = {}
        self._sync_files(change, files)
        self._sync_permissions(job_id, change, files, created=result.action == PlanAction.CREATE)
        final = TrackedJob(
            module_name=change.module,
            job_id=job_id,
            spec_hash=change.new_hash or "",
            paused_by_tool=False,
            managed_files=files,
            status=TrackingStatus.CREATED,
        )
        self._record(final, change, status=TrackingStatus.CREATED)
        result.job_id = job_id
        self._maybe_run(job_id, result)

    def _adopt(self, change: PlannedChange, compiled: CompiledJob, ours: list[LiveJob]) -> int:
        """Keep the first of our copies, delete the others, and reset it only if it differs."""
        keep = ours[0]
        self._remove_duplicates(keep.job_id, ours)
        adopted = TrackedJob(
            module_name=change.module,
            job_id=keep.job_id,
            spec_hash="",
            paused_by_tool=False,
            managed_files={},
            status=TrackingStatus.ADOPTING,
        )
        self._record(adopted, change, status=TrackingStatus.ADOPTING)
        # jobs/list carries no tasks or job clusters: compare with the whole job.
        full = self.gateway.get(keep.job_id)
        if full is None:
            raise TransientApiError(f"job {keep.job_id} disappeared while being adopted")
        settings = with_pause_status(
            compiled.settings,
            explicit_pause=compiled.explicit_pause,
            live=full.settings,
            paused_by_tool=False,
            default_pause_status=None,
        )
        settings = with_live_values(settings, full.settings, compiled.ignore_drift)
        if _differs(settings, full.settings, explicit_pause=compiled.explicit_pause):
            self.gateway.reset(keep.job_id, settings)
        return keep.job_id

    def _create_new(self, change: PlannedChange, compiled: CompiledJob) -> int:
        """Create the job, record its id at once, then delete copies a resent create made."""
        settings = with_pause_status(
            compiled.settings,
            explicit_pause=compiled.explicit_pause,
            live=None,
            paused_by_tool=False,
            default_pause_status=self.default_pause_status,
        )
        resent = True
        try:
            created_job = self.gateway.create(settings)
            job_id, resent = created_job.job_id, created_job.resent
        except JobsApiError:
            # The create may have landed although the reply never came back (ReplyLostError:
            # a timeout or a reset connection; a 5xx): adopt it now rather than next run.
            ours = self._find_ours_by_name(compiled.job_name, change.module)
            if not ours:
                raise
            job_id = ours[0].job_id
        created = TrackedJob(
            module_name=change.module,
            job_id=job_id,
            spec_hash=change.new_hash or "",
            paused_by_tool=False,
            managed_files={},
            status=TrackingStatus.CREATING,
        )
        # Immediately: the id must never be lost. "creating" until duplicates are gone.
        self._record(created, change, status=TrackingStatus.CREATING)
        if resent:
            # More than one request went out, or the reply was lost: a copy may exist already.
            self._remove_duplicates(job_id, self._find_ours_by_name(compiled.job_name, change.module))
        return job_id

    def _do_update(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        compiled = change.compiled
        assert compiled is not None and tracked is not None
        self._require_resolved(compiled)
        if live is None:
            live = self.gateway.get(tracked.job_id)
        if live is None:
            # The job was deleted outside the tool: create it again (adopting if one exists).
            result.action = PlanAction.CREATE
            self._do_create(change, None, None, result)
            return
        self._require_owned_for(live, change, tracked)
        if tracked.renamed_from is not None:
            self._require_free_name(compiled, change.module, tracked)
        settings = with_pause_status(
            compiled.settings,
            explicit_pause=compiled.explicit_pause,
            live=live.settings,
            paused_by_tool=tracked.paused_by_tool,
            default_pause_status=None,
        )
        # Fields the module hands to the UI keep their live value (ignore_drift).
        settings = with_live_values(settings, live.settings, compiled.ignore_drift)
        self.gateway.reset(tracked.job_id, settings)
        # The job now holds the new spec: should a file or permission write fail next, the error
        # is recorded against the new hash, so the next run retries only what is left.
        self._latest = replace(
            tracked, spec_hash=change.new_hash or "", paused_by_tool=False, status=TrackingStatus.OK
        )
        files = dict(tracked.managed_files)
        self._sync_files(change, files)
        self._sync_permissions(tracked.job_id, change, files)
        self._record(
            replace(
                tracked,
                spec_hash=change.new_hash or "",
                paused_by_tool=False,
                managed_files=files,
                status=TrackingStatus.OK,
            ),
            change,
        )
        if tracked.renamed_from is not None:
            # Recorded under the new name first: a stop before this leaves a stale old row that
            # the next plan drops (its job is held by the new module), never a pruned job.
            self.tracking.forget(tracked.renamed_from)
            result.action = PlanAction.RENAME
            result.renamed_from = tracked.renamed_from
        result.job_id = tracked.job_id
        self._maybe_run(tracked.job_id, result)

    def _require_owned_for(self, live: LiveJob, change: PlannedChange, tracked: TrackedJob) -> None:
        """The job must carry our tags for the module (for a rename: for its old name). A rename
        whose old job is not ours is a conflict: nothing is written, and it is never adopted."""
        if tracked.renamed_from is None:
            self._require_owned(live, change.module)
        elif not (self._owned(live, tracked.renamed_from) or self._owned(live, change.module)):
            raise NotOwnedError(
                f"rename conflict: job {live.job_id} ({live.name!r}), tracked under the old name "
                f"{tracked.renamed_from!r}, does not carry this tool's ownership tags for it "
                f"({describe_owner(live.tags)}); it is not taken over by {change.module!r}"
            )

    def _require_free_name(self, compiled: CompiledJob, module: str, tracked: TrackedJob) -> None:
        """A rename never gives our job a name another job (not ours) already has: the same rule
        as a create, so two jobs never share a name because of the tool."""
        taken = [
            job
            for job in self.gateway.list_by_name(compiled.job_name)
            if job.job_id != tracked.job_id and job.name == compiled.job_name and not self._owned(job, module)
        ]
        if taken:
            described = ", ".join(f"job {job.job_id} ({describe_owner(job.tags)})" for job in taken)
            raise NameConflictError(
                f"rename conflict: {compiled.job_name!r} is already the name of {described}; job "
                f"{tracked.job_id} of {tracked.renamed_from!r} is not renamed; rename one of them"
            )

    def _do_pause(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        assert tracked is not None
        if live is None:
            live = self.gateway.get(tracked.job_id)
        if live is None:
            self.tracking.forget(change.module)
            result.action = PlanAction.NOOP
            return
        self._require_owned(live, change.module)
        if not any(isinstance(live.settings.get(block), Mapping) for block in PAUSABLE_BLOCKS):
            self._do_orphaned(change, tracked, live, result)
            return
        partial: dict[str, Any] = {}
        for block in PAUSABLE_BLOCKS:
            current = live.settings.get(block)
            if isinstance(current, Mapping) and current.get("pause_status") != "PAUSED":
                partial[block] = {**current, "pause_status": "PAUSED"}
        if partial:
            # Marked in the UI too; the reset that brings the module back drops the tag. Metadata
            # leaves room for it (MAX_USER_TAGS); a job tagged before that rule, already at the
            # service's limit, is paused without it rather than not at all.
            if REMOVED_TAG in live.tags or len(live.tags) < MAX_JOB_TAGS:
                partial["tags"] = {**live.tags, REMOVED_TAG: REMOVED_TAG_VALUE}
            self.gateway.update(tracked.job_id, partial)
        self._record(
            replace(
                tracked, paused_by_tool=bool(partial) or tracked.paused_by_tool, status=TrackingStatus.PAUSED
            ),
            change,
            status=TrackingStatus.PAUSED,
        )

    def _do_orphaned(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        """A removed module's job with nothing to pause: left as it is, marked in tracking so
        plan, apply and status keep showing it."""
        assert tracked is not None
        result.action = PlanAction.ORPHANED
        result.error = None
        if tracked.status != TrackingStatus.ORPHANED:
            self._record(
                replace(tracked, status=TrackingStatus.ORPHANED), change, status=TrackingStatus.ORPHANED
            )

    def _do_delete(
        self, change: PlannedChange, tracked: TrackedJob | None, live: LiveJob | None, result: ModuleResult
    ) -> None:
        assert tracked is not None
        if live is None:
            live = self.gateway.get(tracked.job_id)
        if live is not None:
            self._require_owned(live, change.module)
            self.gateway.delete(tracked.job_id)
        for path in sorted(p for p in tracked.managed_files if not p.startswith(PERMISSIONS_KEY)):
            self.gateway.delete_file(path)
        self.tracking.forget(change.module)


def name_conflict(
    compiled: CompiledJob, module: str, same_name: list[LiveJob]
) -> tuple[LiveJob | None, str | None]:
    """A module must not create a second job of a name that a job we do not own already has
    (``same_name``: the jobs listed by name, none of them ours). Returns ``(job to adopt, None)``
    when ``adopt_existing`` allows taking over the one job without any ownership tags, else
    ``(None, error naming the jobs and their owners)``; a job of another control table is never
    adopted. ``(None, None)``: the name is free."""
    taken = [job for job in same_name if job.name == compiled.job_name]
    if not taken:
        return None, None
    untagged = [job for job in taken if not is_managed_by_tool(job.tags)]
    if compiled.adopt_existing and len(untagged) == 1 and len(taken) == 1:
        return untagged[0], None
    described = ", ".join(f"job {job.job_id} ({describe_owner(job.tags)})" for job in taken)
    if untagged and not compiled.adopt_existing:
        hint = f"set adopt_existing: true on module {module!r} to manage it, or rename one"
    elif untagged:
        hint = "adopt_existing takes over exactly one job without ownership tags; rename or remove the others"
    else:
        hint = "a job of another control table is never adopted; rename one of the modules"
    return (
        None,
        f"name conflict: {compiled.job_name!r} is already the name of {described}; no job is created; {hint}",
    )


def _direct_grant(entry: Mapping[str, str]) -> dict[str, Any]:
    """An ACL entry in the Permissions API GET form (``all_permissions``), granted directly."""
    principal = {k: v for k, v in entry.items() if k != "permission_level"}
    return {
        **principal,
        "all_permissions": [{"permission_level": entry["permission_level"], "inherited": False}],
    }


def _owner_change_error(
    job_id: int, sent: list[dict[str, str]], live: list[dict[str, Any]] | None, error: JobsApiError
) -> JobsApiError:
    """A refused PUT that would have moved the job's owner says so in one line: only a workspace
    admin may change a job's owner. Any other failure is returned as it is."""
    new = owners(sent)
    old = live_owner(live or [])
    new_owner = principal_of(new[0]) if new else None
    if error.sdk_error != "PermissionDenied" or new_owner is None or old is None:
        return error
    if new_owner == (old.kind, old.name):
        return error
    wrapped = PermanentApiError(
        f"changing the owner of job {job_id} to {new_owner[1]} needs a workspace admin; the job "
        f"stays owned by {old.name} (name the current owner in the module's permissions, or run "
        f"the tool as a workspace admin): {error}"
    )
    wrapped.sdk_error = error.sdk_error
    return wrapped


def _differs(desired: Mapping[str, Any], live: Mapping[str, Any], *, explicit_pause: bool) -> bool:
    """Whether an adopted job needs a reset: the drift comparison, so values the service filled
    in by itself (empty notification blocks, run_if, timeouts ...) do not count."""
    return bool(compare_settings(desired, live, explicit_pause=explicit_pause))

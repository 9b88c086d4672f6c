"""The plan: per module, what an apply would do, and why.

Desired state (a :class:`CompiledJob` or ``None``), what the tool recorded last time
(:class:`TrackedJob`) and, optionally, the live settings go in; one :class:`PlannedChange` comes
out. The spec hash answers "did the metadata change?" without an API call; the live settings,
when the caller fetched them, answer "did someone change the job?" (drift).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lakeflow_job_meta.planning.canonical import PAUSABLE_BLOCKS
from lakeflow_job_meta.planning.compiler import DEFAULT_PRIORITY, CompiledJob
from lakeflow_job_meta.planning.graph import task_graph, task_lines
from lakeflow_job_meta.planning.ignore_drift import settings_digest, with_live_values
from lakeflow_job_meta.planning.normalize import FieldChange, compare_settings
from lakeflow_job_meta.vocabulary import PLAN_ACTIONS, PlanAction, PrunePolicy, TrackingStatus

_SYMBOLS = {
    PlanAction.CREATE: "+",
    PlanAction.UPDATE: "~",
    PlanAction.DELETE: "-",
    PlanAction.PAUSE: "!",
    PlanAction.ORPHANED: "!",
    PlanAction.ERROR: "x",
    PlanAction.NOOP: "=",
}
# A removed module's job with no schedule, trigger or continuous block cannot be paused: it stays
# runnable, so every plan and apply says so (never "No changes") until it is deleted or returns.
ORPHANED_REASON = "orphaned, no schedule to pause; --prune delete removes it"
# Tracking status of such a job.
ORPHANED_STATUS = TrackingStatus.ORPHANED


@dataclass(frozen=True)
class TrackedJob:
    """What the jobs-tracking table remembers about a module's job."""

    module_name: str
    job_id: int
    spec_hash: str
    paused_by_tool: bool = False
    # Workspace path -> sha256 of the text last written there (inline SQL files).
    managed_files: dict[str, str] = field(default_factory=dict)
    # None: the row holds no status this version knows (see vocabulary.tracking_status).
    status: TrackingStatus | None = TrackingStatus.OK
    # Set when this is the job of an earlier name (``renamed_from``) taken over by the module:
    # the old name, whose ownership tags the live job still carries until the rename's reset.
    renamed_from: str | None = None


@dataclass
class PlannedChange:
    module: str
    action: PlanAction
    job_id: int | None = None
    job_name: str | None = None
    diff: list[FieldChange] = field(default_factory=list)
    reason: str = ""
    new_hash: str | None = None
    old_hash: str | None = None
    drift: bool = False
    # Inline-SQL files to write (path -> text) and to delete; independent of the job action.
    file_writes: dict[str, str] = field(default_factory=dict)
    file_deletes: list[str] = field(default_factory=list)
    compiled: CompiledJob | None = None
    # An "error" that is not the metadata's fault (the live job could not be read this time).
    transient: bool = False
    # The job the text plan draws for a new module when ``compiled`` is not carried (bundle
    # plans, whose JSON keeps the default priority); never part of the JSON.
    shown: CompiledJob | None = None
    # Direct ACL entries that differ from what we send (see planning.acl.acl_drift): re-sent.
    acl_drift: list[str] = field(default_factory=list)
    # The live ACL (Permissions API GET form) when the plan read it: the applier keeps its owner.
    live_acl: list[dict[str, Any]] | None = None
    # Digest of the live settings the plan compared with (None: not read); ``apply --plan``
    # refuses when the job moved since. Never part of the JSON (the plan file carries it).
    live_hash: str | None = None
    # What ``apply --plan`` compares for the metadata where there is no spec hash (a bundle:
    # the compiled job's digest). Never part of the JSON.
    desired_digest: str | None = None
    # The earlier module name whose job this change renames (``renamed_from``).
    renamed_from: str | None = None

    @property
    def priority(self) -> int:
        return self.compiled.priority if self.compiled is not None else DEFAULT_PRIORITY

    @property
    def has_file_changes(self) -> bool:
        return bool(self.file_writes or self.file_deletes)

    @property
    def writes_outside_the_job(self) -> bool:
        """Files or permissions to write although the job settings may be unchanged."""
        return self.has_file_changes or bool(self.acl_drift)

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "action": self.action,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "priority": self.priority,
            "reason": self.reason,
            "drift": self.drift,
            "old_hash": self.old_hash,
            "new_hash": self.new_hash,
            "diff": [change.as_dict() for change in self.diff],
            "file_writes": sorted(self.file_writes),
            "file_deletes": sorted(self.file_deletes),
            "acl_drift": list(self.acl_drift),
        }


@dataclass
class Plan:
    """All planned changes, in apply order: priority, then module name."""

    changes: list[PlannedChange] = field(default_factory=list)
    # Plan-level lines an operator must read (e.g. a mass change that apply would hold back).
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.changes = sorted(self.changes, key=lambda c: (c.priority, c.module))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {action.value: 0 for action in PLAN_ACTIONS}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        counts["file_writes"] = sum(len(c.file_writes) for c in self.changes)
        counts["file_deletes"] = sum(len(c.file_deletes) for c in self.changes)
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "changes": [c.as_dict() for c in self.changes],
            "summary": self.counts(),
            "warnings": self.warnings,
        }

    def render_text(self) -> str:
        """A Terraform-like plan: one block per change, noops only when they write files."""
        lines: list[str] = []
        for change in self.changes:
            if change.action == PlanAction.NOOP and not change.writes_outside_the_job:
                continue
            if change.action == PlanAction.ORPHANED:
                lines.append(f"  ! {change.module}: {ORPHANED_REASON}")
                continue
            job = f" (job {change.job_id})" if change.job_id else ""
            name = f" {json.dumps(change.job_name, ensure_ascii=False)}" if change.job_name else ""
            label = (
                ("files" if change.has_file_changes else "permissions")
                if change.action == PlanAction.NOOP
                else change.action
            )
            head = f"  {_SYMBOLS.get(change.action, '?')} {label} {change.module}{name}{job}"
            if change.drift:
                head += "  [drift]"
            lines.append(head)
            if change.reason:
                lines.append(f"      # {change.reason}")
            compiled = change.compiled or change.shown
            if change.action == PlanAction.CREATE and compiled is not None:
                graph = task_graph(compiled.job_name, compiled.settings, compiled.managed_files)
                lines += [f"      {line}" for line in task_lines(graph)]
            lines += [f"      {item}" for item in change.diff]
            lines += [f"      + file {path}" for path in sorted(change.file_writes)]
            lines += [f"      - file {path}" for path in sorted(change.file_deletes)]
            lines += [f"      ~ {item}" for item in change.acl_drift]
        counts = self.counts()
        summary = (
            f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete'] + counts['pause']} to delete/pause, {counts['noop']} unchanged."
        )
        if counts[PlanAction.ORPHANED]:
            summary += f" {counts['orphaned']} orphaned."
        if counts["error"]:
            summary += f" {counts['error']} with errors."
        if counts["file_writes"] or counts["file_deletes"]:
            summary += f" Files: {counts['file_writes']} to write, {counts['file_deletes']} to delete."
        if not lines:
            lines.append("  No changes. The jobs match the metadata.")
        return "\n".join([*lines, "", summary, *(f"warning: {w}" for w in self.warnings)])


def plan_module(
    desired: CompiledJob | None,
    tracked: TrackedJob | None,
    live_settings: Mapping[str, Any] | None,
    *,
    prune: PrunePolicy = PrunePolicy.PAUSE,
    check_drift: bool = False,
) -> PlannedChange:
    """One module's change.

    ``desired`` None means the module is gone or has no active source. ``live_settings`` is what
    ``jobs/get`` returned for the tracked job (None when not fetched); run_job placeholders in
    ``desired`` must already be resolved to job ids when drift is checked.
    """
    if desired is None:
        if tracked is None:
            raise ValueError("plan_module needs a desired job or a tracked job")
        change = _plan_removed(tracked, live_settings, prune)
    else:
        change = _plan_desired(desired, tracked, live_settings, check_drift)
    if live_settings is not None:
        change.live_hash = settings_digest(live_settings)
    return change


def _plan_desired(
    desired: CompiledJob,
    tracked: TrackedJob | None,
    live_settings: Mapping[str, Any] | None,
    check_drift: bool,
) -> PlannedChange:
    new_hash = desired.spec_hash
    if tracked is None or not tracked.job_id:
        return PlannedChange(
            module=desired.module_name,
            action=PlanAction.CREATE,
            job_name=desired.job_name,
            reason="new module",
            new_hash=new_hash,
            file_writes=dict(desired.managed_files),
            compiled=desired,
        )
    writes, deletes = _file_changes(desired, tracked)
    change = PlannedChange(
        module=desired.module_name,
        action=PlanAction.NOOP,
        job_id=tracked.job_id,
        job_name=desired.job_name,
        new_hash=new_hash,
        old_hash=tracked.spec_hash,
        file_writes=writes,
        file_deletes=deletes,
        compiled=desired,
    )
    if tracked.renamed_from is not None:
        # Always one reset: the job takes the new name and ownership tags, keeping its id.
        change.action = PlanAction.UPDATE
        change.renamed_from = tracked.renamed_from
        change.reason = f"renamed from {tracked.renamed_from}: same job, renamed with one reset"
        if live_settings is not None:
            change.diff = diff_against_live(desired, live_settings)
        return change
    if tracked.spec_hash != new_hash:
        change.action = PlanAction.UPDATE
        change.reason = "metadata changed"
        if live_settings is not None:
            change.diff = diff_against_live(desired, live_settings)
        return change
    if tracked.paused_by_tool:
        change.action = PlanAction.UPDATE
        change.reason = "module is back: unpause the job the tool paused"
        return change
    if check_drift and live_settings is not None:
        diff = diff_against_live(desired, live_settings)
        if diff:
            change.action = PlanAction.UPDATE
            change.drift = True
            change.reason = "the job was changed outside the metadata"
            change.diff = diff
            return change
    if change.has_file_changes:
        change.reason = "inline SQL changed"
    return change


def diff_against_live(desired: CompiledJob, live: Mapping[str, Any]) -> list[FieldChange]:
    """Live against desired; fields the module hands to the UI (``ignore_drift``) never differ."""
    settings = with_live_values(desired.settings, live, desired.ignore_drift)
    return compare_settings(settings, live, explicit_pause=desired.explicit_pause)


def _file_changes(desired: CompiledJob, tracked: TrackedJob) -> tuple[dict[str, str], list[str]]:
    """Files whose content differs from what was written, and tracked files no longer wanted.

    Only workspace paths (starting with ``/``) are ours to delete: the tracking map may hold
    other bookkeeping keys.
    """
    hashes = desired.managed_file_hashes
    writes = {
        path: desired.managed_files[path]
        for path in hashes
        if tracked.managed_files.get(path) != hashes[path]
    }
    deletes = sorted(path for path in tracked.managed_files if path.startswith("/") and path not in hashes)
    return writes, deletes


def _plan_removed(tracked: TrackedJob, live: Mapping[str, Any] | None, prune: PrunePolicy) -> PlannedChange:
    change = PlannedChange(
        module=tracked.module_name,
        action=PlanAction.NOOP,
        job_id=tracked.job_id or None,
        old_hash=tracked.spec_hash,
    )
    if not tracked.job_id:
        change.reason = "module removed; it has no job"
    elif prune == PrunePolicy.KEEP:
        change.reason = "module removed; prune=keep leaves its job as it is"
    elif prune == PrunePolicy.DELETE:
        change.action = PlanAction.DELETE
        change.reason = "module removed (prune=delete)"
        change.file_deletes = sorted(path for path in tracked.managed_files if path.startswith("/"))
    elif prune == PrunePolicy.PAUSE:
        # Without live settings the applier reads them; only a pause we already made is skipped.
        if live is not None and not any(isinstance(live.get(b), Mapping) for b in PAUSABLE_BLOCKS):
            orphaned = True
        else:
            orphaned = live is None and tracked.status == ORPHANED_STATUS
        needs_pause = _has_unpaused_trigger(live) if live is not None else not tracked.paused_by_tool
        if orphaned:
            change.action = PlanAction.ORPHANED
            change.reason = ORPHANED_REASON
        elif needs_pause:
            change.action = PlanAction.PAUSE
            change.reason = "module removed (prune=pause)"
        else:
            change.reason = "module removed; its job has nothing left to pause"
    else:
        raise ValueError(f"unknown prune policy {prune!r}")
    return change


def _has_unpaused_trigger(settings: Mapping[str, Any]) -> bool:
    return any(
        isinstance(settings.get(block), Mapping) and settings[block].get("pause_status") != "PAUSED"
        for block in PAUSABLE_BLOCKS
    )


def take_over_renames(
    tracked: Mapping[str, TrackedJob], compiled: Mapping[str, CompiledJob], known: set[str]
) -> dict[str, TrackedJob]:
    """The tracked jobs as a renamed module sees them: the job tracked under an earlier name it
    lists (``renamed_from``) becomes its own, marked with that name, so the plan renames it with
    one reset instead of creating a new job and pruning the old one (which would lose its run
    history). Only a name the metadata no longer knows is taken over, and only by a module that
    has no job of its own yet. A row of an old name whose job a module already holds (a run that
    stopped between recording the new row and forgetting the old, or failed after recording it)
    is never pruned: that module finishes the rename (its job may still carry the old name's
    ownership tags)."""
    orphans = {name: t for name, t in tracked.items() if name not in known and t.job_id}
    if not orphans:
        return dict(tracked)
    result = dict(tracked)
    holders = {t.job_id: name for name, t in tracked.items() if name in known and t.job_id}
    for name, t in orphans.items():
        holder = holders.get(t.job_id)
        if holder is not None:
            result.pop(name, None)
            result[holder] = replace(result[holder], renamed_from=name)
    # Only modules without a job read their compiled job (a cached desired state loads lazily).
    for name in sorted(n for n in compiled if not (n in tracked and tracked[n].job_id)):
        for old in compiled[name].renamed_from:
            found = result.get(old)
            if old in orphans and found is not None:
                result[name] = replace(found, module_name=name, renamed_from=old)
                del result[old]
                break
    return result

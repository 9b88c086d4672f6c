"""Typed rows of the tool's own tables (jobs tracking, history, state), one dataclass each.

The fields mirror the table specs in :mod:`lakeflow_job_meta.storage.tables` (a test holds them
equal), so a renamed column fails at once instead of reading as None. ``as_row`` gives the dict a
``Table`` writes; ``from_row`` reads one back, tolerating the NULLs of older rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class TrackingRow:
    """One module's job on one target: what the tool created and last applied."""

    target: str
    """Tracking key of the target (``workspace:<host>[#env=<name>]``, ``bundle:<dir>``)."""
    module_name: str
    job_id: int | None = None
    job_name: str | None = None
    spec_hash: str = ""
    """Hash of the settings last applied: equal means the metadata did not change."""
    hash_version: int | None = None
    applied_version: int | None = None
    """Delta version of the control table the apply read."""
    status: str = ""
    """A :class:`~lakeflow_job_meta.vocabulary.TrackingStatus` as stored (``''``: none); read
    back with :func:`~lakeflow_job_meta.vocabulary.tracking_status`."""
    last_error: str | None = None
    paused_by_tool: bool = False
    """The tool paused the job when its module left (undone when the module comes back)."""
    managed_files: dict[str, str] = field(default_factory=dict)
    """Workspace path -> sha256 of the text written there, plus the ACL digest."""
    updated_at: datetime | None = None
    """Filled by the table adapter on write."""

    @staticmethod
    def from_row(row: dict[str, Any]) -> TrackingRow:
        return TrackingRow(
            target=row["target"],
            module_name=row["module_name"],
            job_id=int(row["job_id"]) if row.get("job_id") is not None else None,
            job_name=row.get("job_name"),
            spec_hash=row.get("spec_hash") or "",
            hash_version=row.get("hash_version"),
            applied_version=row.get("applied_version"),
            status=row.get("status") or "",
            last_error=row.get("last_error"),
            paused_by_tool=bool(row.get("paused_by_tool")),
            managed_files=json.loads(row.get("managed_files") or "{}"),
            updated_at=row.get("updated_at"),
        )

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["paused_by_tool"] = bool(self.paused_by_tool)
        row["managed_files"] = json.dumps(self.managed_files, sort_keys=True)
        del row["updated_at"]
        return row


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """One module's action in one run (the audit trail; appended, never updated)."""

    run_id: str
    target: str
    module_name: str
    action: str
    """A :class:`~lakeflow_job_meta.vocabulary.PlanAction`, or an alert's ``alert:EVENT`` /
    ``recovered:EVENT`` (target ``alerts``)."""
    job_id: int | None = None
    old_hash: str | None = None
    new_hash: str | None = None
    outcome: str = "ok"
    """An :class:`~lakeflow_job_meta.vocabulary.Outcome`."""
    error: str | None = None
    duration_ms: int = 0
    started_at: datetime | None = None
    """When the module's apply began."""
    writes: int = 0
    """API and file writes the action made."""

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class StateRow:
    """One small JSON document of the tool's own state (progress, volume snapshot, lease, ...)."""

    scope: str
    """The control table's id: several control tables may share one state table name."""
    key: str
    value: str
    """JSON."""
    updated_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RunRow:
    """One run of a managed job, as ``jobs/runs/list`` last reported it (upserted by run id
    while the run is active, then kept for the retention period)."""

    run_id: int
    job_id: int
    module_name: str
    target: str
    """Tracking key of the workspace the job lives in."""
    trigger: str | None = None
    """PERIODIC, ONE_TIME, FILE_ARRIVAL, RETRY, ...: why the run started."""
    life_cycle_state: str | None = None
    """QUEUED, PENDING, RUNNING, TERMINATED, SKIPPED, INTERNAL_ERROR, ..."""
    result_state: str | None = None
    """SUCCESS, FAILED, TIMEDOUT, CANCELED, ...; None while the run is active."""
    queued_seconds: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None
    """The service's state message of a run that did not succeed."""
    run_page_url: str | None = None
    updated_at: datetime | None = None

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        del row["updated_at"]
        return row

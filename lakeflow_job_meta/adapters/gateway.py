"""The one gateway to the Jobs, Permissions and Workspace APIs, as the engine sees it.

In the style of httpx's transport: :class:`JobsGateway` is the typed protocol the engine depends
on; :class:`~lakeflow_job_meta.adapters.databricks_jobs.WorkspaceJobs` puts the SDK behind it
and maps every SDK and transport failure, once and by type, into the tree of
:class:`~lakeflow_job_meta.errors.JobsApiError`. Engine tests may pass an in-memory gateway; the
emulator and the fake workspace keep the contract tests of the real one.

This module imports no SDK, so the engine can name the protocol without paying for the import.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakeflow_job_meta.planning.acl import RunIdentity

JOB_WRITE_OPERATIONS = ("create", "reset", "update", "delete")
# The most jobs one jobs/list page carries (the API's own cap).
JOBS_PAGE_SIZE = 100


@dataclass(frozen=True)
class LiveJob:
    """A job as the service reports it: id, settings (API JSON form) and tags. ``partial`` marks
    a listing entry whose tasks or job clusters continue on further pages (``has_more``): its
    settings must not be compared before ``jobs/get`` fills them in."""

    job_id: int
    settings: dict[str, Any]
    partial: bool = False

    @property
    def name(self) -> str:
        return str(self.settings.get("name", ""))

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.settings.get("tags") or {})


@dataclass(frozen=True)
class Created:
    """A job ``jobs/create`` made. ``resent``: the request went out more than once (the client
    resent it after a dropped connection or a timeout) or the gateway cannot tell, so a copy of
    the job may exist; the caller then looks for one right away."""

    job_id: int
    resent: bool


@dataclass(frozen=True)
class JobsPage:
    """One page of ``jobs/list``: its jobs and the token of the next page (None on the last)."""

    jobs: list[LiveJob]
    next_page_token: str | None


@dataclass
class WriteCounter:
    """Counts Jobs API writes and other writes (files, permissions) per operation. A child
    counter (one per module being applied) also counts into its parent (the whole run)."""

    counts: Counter[str] = field(default_factory=Counter)
    parent: WriteCounter | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, operation: str) -> None:
        with self._lock:
            self.counts[operation] += 1
        if self.parent is not None:
            self.parent.add(operation)

    @property
    def job_writes(self) -> int:
        return sum(self.counts[op] for op in JOB_WRITE_OPERATIONS)

    @property
    def other_writes(self) -> int:
        return sum(n for op, n in self.counts.items() if op not in JOB_WRITE_OPERATIONS)


class JobsGateway(Protocol):
    """What the engine asks of a workspace. Every method raises only
    :class:`~lakeflow_job_meta.errors.JobsApiError` subclasses for service and transport
    failures; reads of a missing object return None instead."""

    writes: WriteCounter

    @property
    def host(self) -> str: ...

    def start_run(self) -> None:
        """A new run: the retry budget is per run."""

    def scoped(self) -> JobsGateway:
        """The same connection with its own write counter, counting into this one's."""

    def current_identity(self) -> RunIdentity: ...

    def get(self, job_id: int) -> LiveJob | None: ...

    def list_by_name(self, name: str) -> list[LiveJob]: ...

    def list_page(self, page_token: str | None) -> JobsPage:
        """One page of every job with its first 100 tasks (``expand_tasks``), retried alone."""

    def get_permissions(self, job_id: int) -> list[dict[str, Any]] | None: ...

    def has_active_run(self, job_id: int) -> bool: ...

    def list_runs(
        self, *, start_time_from: int | None = None, active_only: bool = False, max_runs: int | None = None
    ) -> list[dict[str, Any]]:
        """Runs of every job started since ``start_time_from`` (epoch ms), newest first, paged."""

    def create(self, settings: dict[str, Any]) -> Created: ...

    def reset(self, job_id: int, settings: dict[str, Any]) -> None: ...

    def update(self, job_id: int, partial_settings: dict[str, Any]) -> None: ...

    def delete(self, job_id: int) -> None: ...

    def run_now(self, job_id: int, idempotency_token: str) -> int: ...

    def set_permissions(self, job_id: int, access_control_list: list[dict[str, Any]]) -> None: ...

    def write_file(self, path: str, content: str) -> None: ...

    def delete_file(self, path: str) -> None: ...

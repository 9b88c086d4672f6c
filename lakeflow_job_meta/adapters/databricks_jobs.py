"""The Databricks side, through the SDK only: jobs, managed workspace files and permissions.

The SDK already retries 429/503, connection errors and some transient 500s. This layer adds what
the SDK cannot: idempotent calls are retried on any transient failure (a plain 500 included)
through :class:`RetryPolicy` (``jobs/create`` only after the job rate limit's definite 400), SDK
errors become :class:`JobsApiError` marked permanent or not, transport failures (no reply: a
timeout, a reset connection) become :class:`ReplyLostError`, and writes are counted so the
engine can report (and tests can assert) "exactly one write per changed job".
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.service import jobs as sdk_jobs
from databricks.sdk.service import workspace as sdk_workspace

from lakeflow_job_meta.adapters.retrying import RetryPolicy, is_permanent, is_rate_limited
from lakeflow_job_meta.errors import JobsApiError, ReplyLostError
from lakeflow_job_meta.planning.acl import RunIdentity

JOB_WRITE_OPERATIONS = ("create", "reset", "update", "delete")


@dataclass(frozen=True)
class LiveJob:
    """A job as the service reports it: id, settings (API JSON form) and tags."""

    job_id: int
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.settings.get("name", ""))

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.settings.get("tags") or {})


@dataclass
class WriteCounter:
    """Counts Jobs API writes and other writes (files, permissions) per operation. A child
    counter (one per module being applied) also counts into its parent (the whole run)."""

    counts: Counter = field(default_factory=Counter)
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


def _job_settings(settings: dict[str, Any]) -> sdk_jobs.JobSettings:
    """Typed settings, refusing anything the SDK would drop without a word (unknown keys,
    unknown enum values, empty lists): sending less than we meant would be silent drift."""
    typed = sdk_jobs.JobSettings.from_dict(settings)
    if typed.as_dict() != settings:
        lost = sorted(set(settings) - set(typed.as_dict())) or ["a nested field"]
        raise JobsApiError(f"job settings carry fields the SDK would drop: {', '.join(lost)}")
    return typed


@contextlib.contextmanager
def sdk_errors(action: str, *, missing_ok: bool = False) -> Iterator[None]:
    """The one place SDK exceptions become the package's: a ``JobsApiError`` naming the call and
    the SDK error. With ``missing_ok`` a 404 (the object is already gone) is swallowed.

    A transport failure (``requests.ConnectionError``/``Timeout``, the SDK's ``TimeoutError``
    once its retries ran out, any other ``OSError``) becomes a :class:`ReplyLostError`: the
    request may have been applied, so a write's outcome is unknown. Releases of the SDK from
    0.167 raise a read timeout of a POST at once instead of resending it (docs/API_FACTS.md)."""
    try:
        yield
    except NotFound as error:
        if not missing_ok:
            raise _api_error(action, error) from error
    except DatabricksError as error:
        raise _api_error(action, error) from error
    except OSError as error:  # requests' exceptions and TimeoutError are OSErrors
        raise ReplyLostError(
            f"{action}: reply lost, outcome unknown: {error.__class__.__name__}: {error}"
        ) from error


def _api_error(action: str, error: DatabricksError) -> JobsApiError:
    wrapped = JobsApiError(f"{action}: {error.__class__.__name__}: {error}")
    wrapped.permanent = is_permanent(error)  # a 4xx other than 429: the monitor does not retry it
    wrapped.sdk_error = error.__class__.__name__
    return wrapped


class WorkspaceJobs:
    """Jobs API 2.2 and workspace-file calls for one workspace."""

    def __init__(self, client: WorkspaceClient, retry: RetryPolicy | None = None):
        self.client = client
        self.writes = WriteCounter()
        # Shared by scoped copies: the retry budget is per run, not per module.
        self.retry = retry if retry is not None else RetryPolicy()
        # current_user.me() is read once per client (scoped copies share the cache).
        self._identity: list[RunIdentity] = []
        self._identity_lock = threading.Lock()

    def scoped(self) -> WorkspaceJobs:
        """The same client with its own write counter (counting into this one's), so
        concurrent workers can each report exactly the writes they made."""
        child = copy.copy(self)
        child.writes = WriteCounter(parent=self.writes)
        return child

    @property
    def host(self) -> str:
        return str(self.client.config.host or "").rstrip("/")

    # -- reads -------------------------------------------------------------------------------
    def current_identity(self) -> RunIdentity:
        """Who this client acts as (``current_user.me()``), read once: the owner of every ACL
        whose metadata names none."""
        with self._identity_lock:
            if not self._identity:
                with sdk_errors("scim/v2/Me"):
                    me = self.retry.call(self.client.current_user.me)
                if not me.user_name:
                    raise JobsApiError("scim/v2/Me: the reply names no user_name")
                self._identity.append(RunIdentity.from_user_name(me.user_name))
            return self._identity[0]

    def get(self, job_id: int) -> LiveJob | None:
        """The live job with every page of tasks merged (the SDK pages), or None if it is gone."""
        job = None
        with sdk_errors(f"jobs/get {job_id}", missing_ok=True):
            job = self.retry.call(lambda: self.client.jobs.get(job_id=job_id))
        if job is None:
            return None
        settings = job.settings.as_dict() if job.settings else {}
        return LiveJob(job_id=int(job.job_id or job_id), settings=settings)

    def list_by_name(self, name: str) -> list[LiveJob]:
        """Jobs whose name equals ``name`` exactly (the API matches case-insensitively)."""
        with sdk_errors(f"jobs/list name={name!r}"):
            found = self.retry.call(lambda: list(self.client.jobs.list(name=name)))
        result = []
        for job in found:
            settings = job.settings.as_dict() if job.settings else {}
            if settings.get("name") == name:
                result.append(LiveJob(job_id=int(job.job_id or 0), settings=settings))
        return sorted(result, key=lambda j: j.job_id)

    def list_all(self) -> Iterable[LiveJob]:
        """Every job with its full task list (``expand_tasks``; the SDK fetches pages > 100)."""
        with sdk_errors("jobs/list"):
            # Whole list per attempt: resuming a half-read listing could skip or repeat jobs.
            jobs = self.retry.call(lambda: list(self.client.jobs.list(expand_tasks=True)))
        for job in jobs:
            settings = job.settings.as_dict() if job.settings else {}
            yield LiveJob(job_id=int(job.job_id or 0), settings=settings)

    def get_permissions(self, job_id: int) -> list[dict[str, Any]] | None:
        """The job's ACL as the Permissions API returns it (``all_permissions`` form, inherited
        entries included), or None if the job is gone."""
        reply = None
        with sdk_errors(f"permissions/jobs/{job_id}", missing_ok=True):
            reply = self.retry.call(lambda: self.client.jobs.get_permissions(job_id=str(job_id)))
        if reply is None:
            return None
        return [entry.as_dict() for entry in reply.access_control_list or []]

    def has_active_run(self, job_id: int) -> bool:
        with sdk_errors(f"jobs/runs/list {job_id}"):
            return self.retry.call(
                lambda: any(
                    True for _ in self.client.jobs.list_runs(job_id=job_id, active_only=True, limit=1)
                )
            )

    # -- job writes --------------------------------------------------------------------------
    def create(self, settings: dict[str, Any]) -> int:
        """Retried only after the job rate limit's 400 (a definite rejection: nothing landed),
        with backoff within the run's retry budget. Never after a lost reply or a 5xx: the job
        may have landed (the caller adopts it by name and ownership tags)."""
        js = _job_settings(settings)
        kwargs = {name: getattr(js, name) for name in js.as_dict()}
        self.writes.add("create")
        with sdk_errors("jobs/create"):
            created = self.retry.call(lambda: self.client.jobs.create(**kwargs), retryable=is_rate_limited)
        return int(created.job_id or 0)

    def reset(self, job_id: int, settings: dict[str, Any]) -> None:
        self.writes.add("reset")
        typed = _job_settings(settings)
        with sdk_errors(f"jobs/reset {job_id}"):  # the same body again: idempotent
            self.retry.call(lambda: self.client.jobs.reset(job_id=job_id, new_settings=typed))

    def update(self, job_id: int, partial_settings: dict[str, Any]) -> None:
        self.writes.add("update")
        typed = _job_settings(partial_settings)
        with sdk_errors(f"jobs/update {job_id}"):
            self.retry.call(lambda: self.client.jobs.update(job_id=job_id, new_settings=typed))

    def delete(self, job_id: int) -> None:
        self.writes.add("delete")
        with sdk_errors(f"jobs/delete {job_id}", missing_ok=True):
            # a 404 after a lost reply means an earlier attempt deleted it
            self.retry.call(lambda: self.client.jobs.delete(job_id=job_id))

    def run_now(self, job_id: int, idempotency_token: str) -> int:
        """Trigger a run; the token makes a resent request start no second run."""
        self.writes.add("run_now")
        with sdk_errors(f"jobs/run-now {job_id}"):
            waiter = self.client.jobs.run_now(job_id=job_id, idempotency_token=idempotency_token)
        return int(getattr(waiter.response, "run_id", 0) or 0)

    # -- other writes ------------------------------------------------------------------------
    def set_permissions(self, job_id: int, access_control_list: list[dict[str, Any]]) -> None:
        acl = [sdk_jobs.JobAccessControlRequest.from_dict(entry) for entry in access_control_list]
        self.writes.add("permissions")
        with sdk_errors(f"permissions/jobs/{job_id}"):
            self.retry.call(
                lambda: self.client.jobs.set_permissions(job_id=str(job_id), access_control_list=acl)
            )

    def write_file(self, path: str, content: str) -> None:
        """Write a workspace file (not a notebook), creating its folder."""
        folder = path.rsplit("/", 1)[0]
        self.writes.add("file_write")
        with sdk_errors(f"workspace/import {path}"):
            if folder:
                self.retry.call(lambda: self.client.workspace.mkdirs(folder))
            encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")
            self.retry.call(  # overwrite: idempotent
                lambda: self.client.workspace.import_(
                    path, content=encoded, format=sdk_workspace.ImportFormat.RAW, overwrite=True
                )
            )

    def delete_file(self, path: str) -> None:
        self.writes.add("file_delete")
        with sdk_errors(f"workspace/delete {path}", missing_ok=True):
            self.retry.call(lambda: self.client.workspace.delete(path))

    # -- run health (issue 18) ---------------------------------------------------------------
    def list_runs(
        self, *, start_time_from: int | None = None, active_only: bool = False, max_runs: int | None = None
    ) -> list[dict[str, Any]]:
        """Every run of the workspace started at or after ``start_time_from`` (epoch ms), or
        only the active ones, in the API's JSON form: one paged ``jobs/runs/list`` (25 a page,
        the SDK follows ``next_page_token``), never one call per job, so the cost of watching
        runs does not grow with the number of managed jobs. Read whole per attempt: resuming a
        half-read listing could skip or repeat runs. The service lists newest first, so
        ``max_runs`` (pages stop there) drops the oldest of a window too large to read at once."""
        kwargs: dict[str, Any] = {"limit": 25, "expand_tasks": False}
        if start_time_from is not None:
            kwargs["start_time_from"] = int(start_time_from)
        if active_only:
            kwargs["active_only"] = True
        with sdk_errors("jobs/runs/list"):
            runs = self.retry.call(
                lambda: list(itertools.islice(self.client.jobs.list_runs(**kwargs), max_runs))
            )
        return [run.as_dict() for run in runs]

"""The Databricks side, through the SDK only: jobs, managed workspace files and permissions.

:class:`WorkspaceJobs` is the SDK behind the engine's :class:`~lakeflow_job_meta.adapters.gateway.
JobsGateway`. The SDK already retries 429/503, connection errors and some transient 500s. This
layer adds what the SDK cannot:

- one mapping (:func:`sdk_errors`) of every SDK and transport failure into the package's tree:
  :class:`TransientApiError`, :class:`RateLimitedError` (with the wait the service named),
  :class:`ReplyLostError`, :class:`PermanentApiError`; retries follow the type;
- idempotent calls retried on a transient failure (a plain 500 included) through
  :class:`RetryPolicy` (``jobs/create`` only after the job rate limit's definite 400);
- one :class:`RateLimiter` per client, applied to every HTTP request the SDK sends (its own
  retries included) and paused by any 429 it sees, so the whole client slows down;
- ``jobs/list`` read page by page, a failed page retried by itself;
- one ``mkdirs`` per folder per client;
- writes counted so the engine can report (and tests assert) "exactly one write per changed job".
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, TooManyRequests
from databricks.sdk.service import jobs as sdk_jobs
from databricks.sdk.service import workspace as sdk_workspace

from lakeflow_job_meta.adapters.gateway import (
    JOB_WRITE_OPERATIONS,
    JOBS_PAGE_SIZE,
    Created,
    JobsGateway,
    JobsPage,
    LiveJob,
    WriteCounter,
)
from lakeflow_job_meta.adapters.retrying import (
    RateLimiter,
    RetryPolicy,
    is_permanent,
    is_rate_limited,
    only_rate_limited,
    retried_here,
)
from lakeflow_job_meta.errors import (
    JobsApiError,
    PermanentApiError,
    RateLimitedError,
    ReplyLostError,
    TransientApiError,
)
from lakeflow_job_meta.planning.acl import RunIdentity

__all__ = ["JOB_WRITE_OPERATIONS", "LiveJob", "WorkspaceJobs", "WriteCounter", "sdk_errors"]

T = TypeVar("T")
JOBS_LIST_PATH = "/api/2.2/jobs/list"


def _job_settings(settings: dict[str, Any]) -> sdk_jobs.JobSettings:
    """Typed settings, refusing anything the SDK would drop without a word (unknown keys,
    unknown enum values, empty lists): sending less than we meant would be silent drift."""
    typed = sdk_jobs.JobSettings.from_dict(settings)
    if typed.as_dict() != settings:
        lost = sorted(set(settings) - set(typed.as_dict())) or ["a nested field"]
        raise PermanentApiError(f"job settings carry fields the SDK would drop: {', '.join(lost)}")
    return typed


@contextlib.contextmanager
def sdk_errors(action: str, *, missing_ok: bool = False) -> Iterator[None]:
    """The one place SDK exceptions become the package's, decided by type: a 4xx other than 429
    is a :class:`PermanentApiError`, a 429 or the job-creation limit a :class:`RateLimitedError`,
    another service error a :class:`TransientApiError`, each naming the call and the SDK error.
    With ``missing_ok`` a 404 (the object is already gone) is swallowed.

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
    message = f"{action}: {error.__class__.__name__}: {error}"
    name = error.__class__.__name__
    if isinstance(error, TooManyRequests) or is_rate_limited(error):
        return RateLimitedError(message, sdk_error=name, retry_after=_retry_after(error))
    if is_permanent(error):
        return PermanentApiError(message, sdk_error=name)
    return TransientApiError(message, sdk_error=name)


def _retry_after(error: DatabricksError) -> float | None:
    """The wait a rate-limited reply named (``Retry-After``, seconds), when the SDK kept it."""
    for detail in getattr(error, "details", None) or []:
        delay = getattr(detail, "retry_delay", None) or (
            detail.get("retry_delay") if isinstance(detail, dict) else None
        )
        if delay:
            try:
                return float(str(delay).rstrip("s"))
            except ValueError:
                return None
    return None


# Requests the SDK's session sent on this thread since a call started counting them (None: not
# counting): how a create learns that the SDK itself sent it more than once.
_sent = threading.local()


def install_rate_limiter(client: WorkspaceClient, limiter: RateLimiter) -> bool:
    """Put ``limiter`` in front of every HTTP request the SDK's session sends (its own retries of
    429/503 included) and let every 429 it receives pause the whole client. Reaches into the
    SDK's ``requests`` session (``api_client._api_client._session``, present from the SDK floor
    0.54 to 0.167); returns False when it is not there, and the gateway then paces its own calls
    instead."""
    session = getattr(getattr(client.api_client, "_api_client", None), "_session", None)
    if session is None or getattr(session, "_ljm_limited", False):
        return session is not None
    authenticate = session.auth

    def paced(request: Any) -> Any:
        limiter.acquire()
        if getattr(_sent, "count", None) is not None:
            _sent.count += 1
        return authenticate(request) if authenticate is not None else request

    def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
        if response.status_code == 429:
            limiter.pause(_seconds(response.headers.get("Retry-After")))

    session.auth = paced
    session.hooks.setdefault("response", []).append(on_response)
    session._ljm_limited = True
    return True


def _seconds(header: str | None) -> float | None:
    try:
        return float(header) if header else None
    except ValueError:  # an HTTP date: rare on this API, fall back to the default pause
        return None


class WorkspaceJobs(JobsGateway):
    """Jobs API 2.2, Permissions and Workspace calls for one workspace, through the SDK."""

    def __init__(
        self,
        client: WorkspaceClient,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
    ):
        self.client = client
        self.writes = WriteCounter()
        # Shared by scoped copies: the retry budget is per run, not per module.
        self.retry = retry if retry is not None else RetryPolicy()
        self.limiter = limiter if limiter is not None else RateLimiter()
        self._paced_by_session = install_rate_limiter(client, self.limiter)
        # current_user.me() is read once per client (scoped copies share the cache).
        self._identity: list[RunIdentity] = []
        self._identity_lock = threading.Lock()
        # Folders known to exist: one mkdirs per folder per client, shared by scoped copies.
        self._folders: set[str] = set()
        self._folders_lock = threading.Lock()

    def scoped(self) -> WorkspaceJobs:
        """The same client with its own write counter (counting into this one's), so
        concurrent workers can each report exactly the writes they made."""
        child = copy.copy(self)
        child.writes = WriteCounter(parent=self.writes)
        return child

    def start_run(self) -> None:
        self.retry.start_run()

    @property
    def host(self) -> str:
        return str(self.client.config.host or "").rstrip("/")

    def _call(
        self,
        action: str,
        fn: Callable[[], T],
        *,
        missing_ok: bool = False,
        retryable: Callable[[BaseException], bool] = retried_here,
    ) -> T | None:
        """One API call: paced, mapped into the error tree, retried as its type allows. A
        rate-limited reply pauses the whole client before the retry."""

        def attempt() -> T | None:
            if not self._paced_by_session:
                self.limiter.acquire()
            try:
                with sdk_errors(action, missing_ok=missing_ok):
                    return fn()
                return None  # a 404 swallowed by missing_ok
            except RateLimitedError as error:
                self.limiter.pause(error.retry_after)
                raise

        return self.retry.call(attempt, retryable=retryable)

    def _must(self, action: str, fn: Callable[[], T], **kwargs: Any) -> T:
        result = self._call(action, fn, **kwargs)
        assert result is not None
        return result

    # -- reads -------------------------------------------------------------------------------
    def current_identity(self) -> RunIdentity:
        """Who this client acts as (``current_user.me()``), read once: the owner of every ACL
        whose metadata names none."""
        with self._identity_lock:
            if not self._identity:
                me = self._must("scim/v2/Me", self.client.current_user.me)
                if not me.user_name:
                    raise PermanentApiError("scim/v2/Me: the reply names no user_name")
                self._identity.append(RunIdentity.from_user_name(me.user_name))
            return self._identity[0]

    def get(self, job_id: int) -> LiveJob | None:
        """The live job with every page of tasks merged (the SDK pages), or None if it is gone."""
        job = self._call(f"jobs/get {job_id}", lambda: self.client.jobs.get(job_id=job_id), missing_ok=True)
        if job is None:
            return None
        settings = job.settings.as_dict() if job.settings else {}
        return LiveJob(job_id=int(job.job_id or job_id), settings=settings)

    def list_by_name(self, name: str) -> list[LiveJob]:
        """Jobs whose name equals ``name`` exactly (the API matches case-insensitively)."""
        found = self._must(f"jobs/list name={name!r}", lambda: list(self.client.jobs.list(name=name)))
        result = [_live(job) for job in found]
        return sorted((job for job in result if job.name == name), key=lambda j: j.job_id)

    def list_page(self, page_token: str | None) -> JobsPage:
        """One page of ``jobs/list`` (100 jobs with their first 100 tasks), retried by itself:
        a listing never restarts from the first page because one page failed. Read through the
        SDK's API client, whose typed ``jobs.list`` iterator cannot stop at a page boundary."""
        query: dict[str, Any] = {"limit": JOBS_PAGE_SIZE, "expand_tasks": "true"}
        if page_token:
            query["page_token"] = page_token
        reply = self._must(
            f"jobs/list page {page_token or 1}",
            lambda: self.client.api_client.do("GET", JOBS_LIST_PATH, query=query),
        )
        assert isinstance(reply, dict)
        jobs = [_live(sdk_jobs.BaseJob.from_dict(raw)) for raw in reply.get("jobs") or []]
        return JobsPage(jobs=jobs, next_page_token=reply.get("next_page_token") or None)

    def get_permissions(self, job_id: int) -> list[dict[str, Any]] | None:
        """The job's ACL as the Permissions API returns it (``all_permissions`` form, inherited
        entries included), or None if the job is gone."""
        reply = self._call(
            f"permissions/jobs/{job_id}",
            lambda: self.client.jobs.get_permissions(job_id=str(job_id)),
            missing_ok=True,
        )
        if reply is None:
            return None
        return [entry.as_dict() for entry in reply.access_control_list or []]

    def has_active_run(self, job_id: int) -> bool:
        return self._must(
            f"jobs/runs/list {job_id}",
            lambda: any(True for _ in self.client.jobs.list_runs(job_id=job_id, active_only=True, limit=1)),
        )

    # -- job writes --------------------------------------------------------------------------
    def create(self, settings: dict[str, Any]) -> Created:
        """Retried only after a rate limit's definite rejection (nothing landed), with backoff
        within the run's retry budget. Never after a lost reply or a 5xx: the job may have
        landed (the caller adopts it by name and ownership tags). The SDK itself may send the
        request again after a dropped connection (and, before 0.167, after a read timeout), so
        the result says whether more than one request went out: only then can a copy exist."""
        js = _job_settings(settings)
        kwargs = {name: getattr(js, name) for name in js.as_dict()}
        self.writes.add("create")
        _sent.count = 0
        try:
            created = self._must(
                "jobs/create", lambda: self.client.jobs.create(**kwargs), retryable=only_rate_limited
            )
            sent = _sent.count
        finally:
            _sent.count = None
        resent = sent != 1 or not self._paced_by_session
        return Created(job_id=int(created.job_id or 0), resent=resent)

    def reset(self, job_id: int, settings: dict[str, Any]) -> None:
        self.writes.add("reset")
        typed = _job_settings(settings)
        # the same body again: idempotent
        self._call(f"jobs/reset {job_id}", lambda: self.client.jobs.reset(job_id=job_id, new_settings=typed))

    def update(self, job_id: int, partial_settings: dict[str, Any]) -> None:
        self.writes.add("update")
        typed = _job_settings(partial_settings)
        self._call(
            f"jobs/update {job_id}", lambda: self.client.jobs.update(job_id=job_id, new_settings=typed)
        )

    def delete(self, job_id: int) -> None:
        self.writes.add("delete")
        # a 404 after a lost reply means an earlier attempt deleted it
        self._call(f"jobs/delete {job_id}", lambda: self.client.jobs.delete(job_id=job_id), missing_ok=True)

    def run_now(self, job_id: int, idempotency_token: str) -> int:
        """Trigger a run; the token makes a resent request start no second run."""
        self.writes.add("run_now")
        waiter = self._must(
            f"jobs/run-now {job_id}",
            lambda: self.client.jobs.run_now(job_id=job_id, idempotency_token=idempotency_token),
            retryable=lambda error: False,
        )
        return int(getattr(waiter.response, "run_id", 0) or 0)

    # -- other writes ------------------------------------------------------------------------
    def set_permissions(self, job_id: int, access_control_list: list[dict[str, Any]]) -> None:
        acl = [sdk_jobs.JobAccessControlRequest.from_dict(entry) for entry in access_control_list]
        self.writes.add("permissions")
        self._call(
            f"permissions/jobs/{job_id}",
            lambda: self.client.jobs.set_permissions(job_id=str(job_id), access_control_list=acl),
        )

    def write_file(self, path: str, content: str) -> None:
        """Write a workspace file (not a notebook), creating its folder once per client."""
        folder = path.rsplit("/", 1)[0]
        self.writes.add("file_write")
        if folder:
            self._ensure_folder(folder)
        encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")

        def import_file() -> None:
            self._call(  # overwrite: idempotent
                f"workspace/import {path}",
                lambda: self.client.workspace.import_(
                    path, content=encoded, format=sdk_workspace.ImportFormat.RAW, overwrite=True
                ),
            )

        try:
            import_file()
        except PermanentApiError:
            if not folder:
                raise
            # The folder we remembered was removed since (a long-running monitor): make it again.
            with self._folders_lock:
                self._folders.discard(folder)
            self._ensure_folder(folder)
            import_file()

    def _ensure_folder(self, folder: str) -> None:
        with self._folders_lock:
            if folder in self._folders:
                return
        self._call(f"workspace/mkdirs {folder}", lambda: self.client.workspace.mkdirs(folder))
        with self._folders_lock:
            self._folders.add(folder)

    def delete_file(self, path: str) -> None:
        self.writes.add("file_delete")
        self._call(f"workspace/delete {path}", lambda: self.client.workspace.delete(path), missing_ok=True)

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
        runs = self._must(
            "jobs/runs/list", lambda: list(itertools.islice(self.client.jobs.list_runs(**kwargs), max_runs))
        )
        return [run.as_dict() for run in runs]


def _live(job: sdk_jobs.BaseJob) -> LiveJob:
    settings = job.settings.as_dict() if job.settings else {}
    return LiveJob(job_id=int(job.job_id or 0), settings=settings, partial=bool(job.has_more))

"""Retries that converge: idempotent Jobs API calls retried on transient failures, beyond the SDK.

The SDK retries 429, 503, connection errors and a few known transient 500 messages on its own,
but not a plain ``500 INTERNAL_ERROR``, and it gives up when its deadline passes. One such failure
on a ``jobs/get`` used to fail the whole module until the next run. Here every *idempotent* call
(every read, ``jobs/reset`` with the same body, a partial ``jobs/update`` with the same body,
``jobs/delete`` where a 404 counts as done, the permissions PUT, a workspace import with
``overwrite``) is retried with jittered exponential backoff, within two bounds:

- ``max_attempts`` per call, so one broken endpoint cannot hold a module forever;
- ``budget`` retries per run, shared by all workers, so an API outage costs a bounded number of
  extra requests instead of a retry storm (the next run, or the monitor's backoff, takes over).

``jobs/create`` is retried only after a *definite* rejection that asks to be waited out: the
job-creation rate limit, which the service answers with a 400 ``INVALID_STATE`` (the create did
not land, so sending it again is safe). A create whose reply was lost is never resent here: it
may have landed, and the caller adopts it by name and ownership tags instead.

What is retried follows the exception's type (``errors.py``), decided once where the gateway
maps SDK errors: a :class:`~lakeflow_job_meta.errors.TransientApiError` is, a
:class:`~lakeflow_job_meta.errors.ReplyLostError` (the SDK already retried until its deadline)
and a :class:`~lakeflow_job_meta.errors.PermanentApiError` are not. A rate-limited reply also
pauses the whole client through the shared :class:`RateLimiter`, not just the call that saw it.
Time goes through an injectable ``sleep`` and clock so tests never wait.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lakeflow_job_meta.errors import JobsApiError, RateLimitedError

T = TypeVar("T")


def status_of(error: BaseException) -> int | None:
    """The HTTP status behind an SDK error, when known: the SDK raises one class per status, or
    a subclass per error code (``InvalidParameterValue`` is a ``BadRequest``)."""
    from databricks.sdk.errors import STATUS_CODE_MAPPING

    for status, cls in STATUS_CODE_MAPPING.items():
        if isinstance(error, cls):
            return status
    return None


# The job-creation rate limit (Databricks knowledge base, "job rate limit"): a 400, not a 429:
#   {"error_code": "INVALID_STATE", "message": "There were already 1000 jobs created in past 3600
#    seconds, exceeding rate limit: 1000 job creations per 3600 seconds."}
RATE_LIMIT_ERROR_CODE = "INVALID_STATE"
RATE_LIMIT_MESSAGE_MARK = "exceeding rate limit"


def is_rate_limited(error: BaseException) -> bool:
    """The service refused the request because of a rate limit it answers with a 400
    ``INVALID_STATE`` (the job-creation limit): a definite rejection that waiting may fix."""
    from databricks.sdk.errors import DatabricksError

    return (
        isinstance(error, DatabricksError)
        and getattr(error, "error_code", None) == RATE_LIMIT_ERROR_CODE
        and RATE_LIMIT_MESSAGE_MARK in str(error).lower()
    )


def is_permanent(error: BaseException) -> bool:
    """A 4xx other than 429 and the job rate limit: the same request will fail the same way until
    something changes."""
    status = status_of(error)
    return status is not None and 400 <= status < 500 and status != 429 and not is_rate_limited(error)


def retried_here(error: BaseException) -> bool:
    """The default rule of :meth:`RetryPolicy.call`: the error's type says (``retry_here``)."""
    return isinstance(error, JobsApiError) and error.retry_here


def only_rate_limited(error: BaseException) -> bool:
    """For a call that is not idempotent (``jobs/create``): only a definite rejection that asks to
    be waited out is sent again."""
    return isinstance(error, RateLimitedError)


@dataclass
class RateLimiter:
    """One per client, shared by every worker: requests are spaced to stay under
    ``requests_per_second`` (None: no cap of our own), and a rate-limited reply pauses every
    request of the client for the wait the service named. Without it, eight workers that each
    back off alone keep the service at eight times the rate it asked for."""

    requests_per_second: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep
    # A 429 that names no wait pauses the client this long.
    default_pause: float = 1.0
    _next_slot: float = field(default=0.0, init=False)
    _paused_until: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def acquire(self) -> None:
        """Wait for this request's slot (taken before waiting, so waiters queue fairly)."""
        with self._lock:
            now = self.clock()
            start = max(now, self._paused_until, self._next_slot)
            if self.requests_per_second:
                self._next_slot = start + 1.0 / self.requests_per_second
        if start > now:
            self.sleep(start - now)

    def pause(self, seconds: float | None) -> None:
        """The service asked to slow down: no request of this client starts for ``seconds``."""
        wait = self.default_pause if seconds is None or seconds <= 0 else seconds
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + wait)


@dataclass
class RetryPolicy:
    """Jittered exponential backoff for idempotent calls, bounded per call and per run."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget: int = 40
    sleep: Callable[[float], object] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    retries_used: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def start_run(self) -> None:
        """A new run gets the whole budget again."""
        with self._lock:
            self.retries_used = 0

    def delay(self, attempt: int) -> float:
        """Wait before retry number ``attempt`` (1-based): "equal jitter", so concurrent workers
        that failed together do not retry together, and never less than half the backoff."""
        factor: int = 2 ** (attempt - 1)  # typeshed: int ** int may be a float
        backoff = min(self.max_delay, self.base_delay * factor)
        return backoff / 2 + self.rng.uniform(0, backoff / 2)

    def _take(self) -> bool:
        with self._lock:
            if self.retries_used >= self.budget:
                return False
            self.retries_used += 1
            return True

    def call(self, fn: Callable[[], T], retryable: Callable[[BaseException], bool] = retried_here) -> T:
        """Run ``fn`` (an idempotent call), retrying what its error's type allows within the
        bounds. ``retryable`` narrows it for a call that is not idempotent (``jobs/create``
        passes :func:`only_rate_limited`: only a definite rejection). A rate-limited error waits
        at least the time the service named."""
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as error:
                if attempt >= self.max_attempts or not retryable(error) or not self._take():
                    raise
                wait = self.delay(attempt)
                if isinstance(error, RateLimitedError) and error.retry_after:
                    wait = max(wait, error.retry_after)
                self.sleep(wait)
                attempt += 1


def no_retries() -> RetryPolicy:
    """A policy that never retries (the SDK's own retries still apply)."""
    return RetryPolicy(max_attempts=1, budget=0)

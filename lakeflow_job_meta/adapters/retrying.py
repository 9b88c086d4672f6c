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

Permanent errors (a 4xx other than 429 and the job rate limit) are raised at once and marked
``permanent`` so the monitor does not retry them until the module's metadata changes. Time goes
through an injectable ``sleep`` so tests never wait.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

# Status codes a retry can help with. 429 is here too: the SDK retries it until its own deadline,
# and a call that still failed then may succeed after our (longer, jittered) wait.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


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


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same idempotent call may succeed: transient 5xx, 429, connection
    errors and timeouts (the SDK raises ``TimeoutError`` when its own retries ran out)."""
    import requests
    from databricks.sdk.errors import DatabricksError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # look through `raise ... from`
        seen.add(id(current))
        if isinstance(current, requests.ConnectionError | requests.Timeout | TimeoutError | ConnectionError):
            return True
        if isinstance(current, DatabricksError):
            if is_rate_limited(current):
                return True
            status = status_of(current)
            if status is not None:
                return status in TRANSIENT_STATUS
            # An unmapped code: 5xx-style errors without a status are not worth guessing about,
            # except the SDK's own transient messages.
            return "Unexpected error" in str(current)
        current = current.__cause__ or current.__context__
    return False


def is_retryable_here(error: BaseException) -> bool:
    """What the SDK gives up on at once but a second attempt may fix: a plain 500, 502 or 504.
    Errors the SDK already retried until its own deadline (429, 503, dropped connections,
    timeouts: it then raises ``TimeoutError``) are not retried again, which would multiply that
    deadline (a CLI facing an unreachable host must fail within it). The job rate limit (a 400
    the SDK does not retry) is retried here too."""
    return status_of(error) in (500, 502, 504) or is_rate_limited(error)


def is_permanent(error: BaseException) -> bool:
    """A 4xx other than 429 and the job rate limit: the same request will fail the same way until
    something changes."""
    status = status_of(error)
    return status is not None and 400 <= status < 500 and status != 429 and not is_rate_limited(error)


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
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff / 2 + self.rng.uniform(0, backoff / 2)

    def _take(self) -> bool:
        with self._lock:
            if self.retries_used >= self.budget:
                return False
            self.retries_used += 1
            return True

    def call(self, fn: Callable[[], T], retryable: Callable[[BaseException], bool] = is_retryable_here) -> T:
        """Run ``fn`` (an idempotent call), retrying transient failures within the bounds.
        ``retryable`` narrows what is retried for a call that is not idempotent (``jobs/create``
        passes :func:`is_rate_limited`: only a definite rejection)."""
        attempt = 1
        while True:
            try:
                return fn()
            except Exception as error:
                if attempt >= self.max_attempts or not retryable(error) or not self._take():
                    raise
                self.sleep(self.delay(attempt))
                attempt += 1


def no_retries() -> RetryPolicy:
    """A policy that never retries (the SDK's own retries still apply)."""
    return RetryPolicy(max_attempts=1, budget=0)

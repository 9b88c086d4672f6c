"""Fault injection for the Jobs API emulator (tests only).

A :class:`Fault` names an endpoint (``"jobs/create"``; fnmatch patterns such as ``"jobs/*"``
or ``"*"`` work), optionally an HTTP method, and a kind. The emulator asks the
:class:`FaultSet` once per request; explicit faults are consulted first (in the order they
were added), then the random mode, if enabled.

Kinds (see ``docs/API_FACTS.md`` for what the SDK does with each):

* ``"403"``: 403 ``PERMISSION_DENIED`` (a missing permission); not retried.
* ``"429"``: 429 ``REQUEST_LIMIT_EXCEEDED`` with ``Retry-After`` (``retry_after``, default 0).
  The SDK sleeps ``Retry-After`` + up to 1 s of jitter and resends.
* ``"503"``: 503 ``TEMPORARILY_UNAVAILABLE`` with ``Retry-After``; retried like 429.
* ``"500"``: 500 ``INTERNAL_ERROR`` with a message the SDK does *not* treat as transient,
  so the call fails at once with ``databricks.sdk.errors.InternalError``.
* ``"500_transient"``: 500 whose message contains ``"Unexpected error"``, one of the
  SDK's transient substrings: it is retried after ``min(10, attempt)`` s + jitter.
* ``"400"``: 400 ``INVALID_PARAMETER_VALUE``, a permanent error: neither the SDK nor the tool
  retries it (the same request would fail the same way).
* ``"slow"``: wait ``delay`` seconds, then handle the request normally (the change
  commits even if the client has given up and resends). With a ``gate`` (a
  ``threading.Event``), wait until the test sets it instead (``delay`` at most): the request is
  held exactly as long as the test needs.
* ``"drop_before"``: close the connection without a reply, before any change is applied.
* ``"drop_after_commit"``: apply the change, then close the connection without a reply.
  The SDK resends any request that fails with a connection error, so a ``jobs/create``
  lands twice.
* ``"stall_after_commit"``: apply the change, then hold the reply until the client gives up
  (it closes the connection: a read timeout) or ``delay`` seconds pass, and close without a
  reply. SDK releases before 0.167 resend the POST (a create lands twice); 0.167 raises the
  timeout (the create landed once, the caller never learnt its id).
* ``"job_rate_limit"``: 400 ``INVALID_STATE`` with the service's job-creation rate-limit
  message (Databricks knowledge base, "job rate limit"): a definite rejection, nothing is
  applied; the SDK does not retry it.
"""

from __future__ import annotations

import fnmatch
import random as _random
import threading
import time as _time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

KIND_429 = "429"
KIND_503 = "503"
KIND_500 = "500"
KIND_403 = "403"
KIND_500_TRANSIENT = "500_transient"
KIND_SLOW = "slow"
KIND_400 = "400"
KIND_DROP_BEFORE = "drop_before"
KIND_DROP_AFTER_COMMIT = "drop_after_commit"
KIND_STALL_AFTER_COMMIT = "stall_after_commit"
KIND_JOB_RATE_LIMIT = "job_rate_limit"

ALL_KINDS = (
    KIND_403,
    KIND_429,
    KIND_503,
    KIND_500,
    KIND_500_TRANSIENT,
    KIND_SLOW,
    KIND_DROP_BEFORE,
    KIND_DROP_AFTER_COMMIT,
    KIND_400,
    KIND_STALL_AFTER_COMMIT,
    KIND_JOB_RATE_LIMIT,
)
# Kinds the SDK recovers from by itself (it retries them). "500" is not among them.
RETRIED_KINDS = (KIND_429, KIND_503, KIND_500_TRANSIENT, KIND_DROP_BEFORE, KIND_DROP_AFTER_COMMIT)

_ALIASES = {
    "lost_reply_after_commit": KIND_DROP_AFTER_COMMIT,
    "drop_after": KIND_DROP_AFTER_COMMIT,
    "lost_reply": KIND_DROP_AFTER_COMMIT,
    "drop": KIND_DROP_BEFORE,
    "lost_reply_timeout": KIND_STALL_AFTER_COMMIT,
    "500_permanent": KIND_500,
    "transient_500": KIND_500_TRANSIENT,
    "throttle": KIND_429,
    403: KIND_403,
    429: KIND_429,
    500: KIND_500,
    503: KIND_503,
    400: KIND_400,
}

TRANSIENT_500_MESSAGE = "Unexpected error while handling the request. Please retry."
PERMANENT_500_MESSAGE = "Internal error: the emulator was told to fail this request."
# The service's words (Databricks knowledge base, "job rate limit"), for a limit of 1000 an hour.
JOB_RATE_LIMIT_MESSAGE = (
    "There were already 1000 jobs created in past 3600 seconds, exceeding rate limit: "
    "1000 job creations per 3600 seconds."
)


def normalise_kind(kind: str | int) -> str:
    k = _ALIASES.get(kind, kind)
    k = str(k)
    if k not in ALL_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {ALL_KINDS}")
    return k


@dataclass
class Fault:
    """One injected fault.

    ``times``: how many requests it hits (``None``: every matching request, forever).
    ``after``: let this many matching requests through first (e.g. ``after=1`` fails the
    second ``jobs/create``).
    """

    endpoint: str = "*"
    kind: str = KIND_500
    times: int | None = 1
    method: str | None = None
    after: int = 0
    delay: float = 0.5
    retry_after: int | None = 0
    message: str | None = None
    # "slow": hold the request until this is set (``delay`` at most) instead of for ``delay``.
    gate: threading.Event | None = field(default=None, repr=False, compare=False)
    # bookkeeping
    seen: int = field(default=0, repr=False)
    fired: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.kind = normalise_kind(self.kind)
        if self.method:
            self.method = self.method.upper()

    def matches(self, method: str, endpoint: str) -> bool:
        if self.method and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(endpoint, self.endpoint)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass(frozen=True)
class FiredFault:
    method: str
    endpoint: str
    kind: str


@dataclass
class _RandomMode:
    rate: float
    kinds: tuple[str, ...]
    rng: _random.Random
    endpoints: tuple[str, ...]
    methods: tuple[str, ...] | None
    delay: float
    retry_after: int | None
    max_faults: int | None
    fired: int = 0


class FaultSet:
    """Thread-safe collection of faults consulted by the emulator for every request.
    ``clock`` (seconds, monotonic) times the rate limit's one-second window."""

    def __init__(self, clock: Callable[[], float] = _time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._random: _RandomMode | None = None
        self._fired: list[FiredFault] = []
        self._limit: tuple[int, int] | None = None  # (requests per second, Retry-After)
        self._admitted: deque[float] = deque()

    # -- configuration -------------------------------------------------------------
    def add(self, fault: Fault | None = None, /, **kwargs) -> Fault:
        """Add a fault: ``faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit"))``
        or ``faults.add(endpoint="jobs/create", kind="429", times=2)``."""
        if fault is None:
            fault = Fault(**kwargs)
        elif kwargs:
            raise TypeError("pass either a Fault or keyword arguments, not both")
        with self._lock:
            self._faults.append(fault)
        return fault

    def random(
        self,
        rate: float,
        kinds: Iterable[str] = (KIND_429, KIND_503, KIND_500_TRANSIENT),
        seed: int | None = 0,
        *,
        endpoints: Iterable[str] | str = "*",
        methods: Iterable[str] | None = None,
        delay: float = 0.2,
        retry_after: int | None = 0,
        max_faults: int | None = None,
    ) -> None:
        """Fail each matching request with probability ``rate``, with a kind drawn from
        ``kinds``. Deterministic for a given seed and request order."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        kinds_t = tuple(normalise_kind(k) for k in kinds)
        if not kinds_t:
            raise ValueError("kinds must not be empty")
        eps = (endpoints,) if isinstance(endpoints, str) else tuple(endpoints)
        meths = tuple(m.upper() for m in methods) if methods is not None else None
        with self._lock:
            self._random = _RandomMode(
                rate, kinds_t, _random.Random(seed), eps, meths, delay, retry_after, max_faults
            )

    def rate_limit(self, per_second: int | None, retry_after: int = 1) -> None:
        """Answer 429 (with ``Retry-After``) to any request beyond ``per_second`` admitted in the
        last second, like the service's per-endpoint limits. ``None`` lifts the limit."""
        with self._lock:
            self._limit = None if per_second is None else (per_second, retry_after)
            self._admitted.clear()

    def stop_random(self) -> None:
        with self._lock:
            self._random = None

    def clear(self) -> None:
        """Remove every fault and stop the random mode (the fired log is kept)."""
        with self._lock:
            self._faults.clear()
            self._random = None

    # -- inspection ----------------------------------------------------------------
    @property
    def fired(self) -> list[FiredFault]:
        with self._lock:
            return list(self._fired)

    def fired_count(self, kind: str | None = None, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for f in self._fired
                if (kind is None or f.kind == normalise_kind(kind))
                and (endpoint is None or f.endpoint == endpoint)
            )

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def reset_log(self) -> None:
        with self._lock:
            self._fired.clear()

    # -- used by the server --------------------------------------------------------
    def pick(self, method: str, endpoint: str) -> Fault | None:
        """Return the fault to apply to this request (consuming it), or ``None``."""
        with self._lock:
            if self._limit is not None:
                per_second, retry_after = self._limit
                now = self._clock()
                while self._admitted and now - self._admitted[0] >= 1.0:
                    self._admitted.popleft()
                if len(self._admitted) >= per_second:
                    self._fired.append(FiredFault(method, endpoint, KIND_429))
                    return Fault(endpoint=endpoint, kind=KIND_429, method=method, retry_after=retry_after)
                self._admitted.append(now)
            for fault in self._faults:
                if fault.exhausted or not fault.matches(method, endpoint):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                fault.fired += 1
                self._fired.append(FiredFault(method, endpoint, fault.kind))
                return fault
            rm = self._random
            if rm is None or (rm.max_faults is not None and rm.fired >= rm.max_faults):
                return None
            if rm.methods is not None and method.upper() not in rm.methods:
                return None
            if not any(fnmatch.fnmatchcase(endpoint, p) for p in rm.endpoints):
                return None
            if rm.rng.random() >= rm.rate:
                return None
            kind = rm.rng.choice(rm.kinds)
            rm.fired += 1
            self._fired.append(FiredFault(method, endpoint, kind))
            return Fault(
                endpoint=endpoint,
                kind=kind,
                times=1,
                method=method,
                delay=rm.delay,
                retry_after=rm.retry_after,
            )

"""The writer lease: at most one process applies changes for a control table at a time.

The lease is one row of the state table, keyed ``(scope, "lease")``, whose ``value`` is JSON
``{holder, expires_at, acquired_at, renewed_at, generation}`` (epoch seconds).

Safety argument
---------------
1. Every write of the row is a ``compare_and_set`` against the exact row last read (or last
   written by us). Two contenders that read the same row cannot both win: the table commits one
   and refuses the other. ``generation`` and ``renewed_at`` make every written value unique, so a
   CAS never succeeds against a value that merely looks the same (no ABA).
2. A holder renews by CAS against the row *it* wrote last. If anyone else wrote in between
   (because our lease expired and they took it), the CAS fails and the lease is marked lost; it
   is never silently re-taken by a renewal. Only an explicit :meth:`Lease.try_acquire` competes
   again, and then by the same rules as everyone else.
3. Others may take the lease only after ``expires_at`` (holder's wall clock at write + TTL).
   The holder renews every TTL/3 (:meth:`Lease.renew_if_due`), so one or two missed renewals
   do not lose it. Locally, :attr:`Lease.held` turns False ``TTL - TTL/6`` after the start of
   the last successful write, measured on the monotonic clock, even if nobody else wrote: after
   that we can no longer prove ownership. The TTL/6 margin absorbs wall-clock skew between
   machines up to TTL/6 (10 s at the default 60 s).
4. Callers check :meth:`Lease.ensure_held` before every apply step: it renews when due (or
   else re-reads the row to confirm it is still ours) and raises :class:`LeaseLostError`
   otherwise. After a successful check at least TTL/2 of validity remains, which bounds how long
   one apply step may run without checking again. An idle cycle only calls
   :meth:`Lease.renew_if_due`, which touches the table once per TTL/3 and not otherwise.

So writes after loss are refused: the lost holder's renewal fails, ``held`` is False, and
``ensure_held`` raises before the next apply.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from lakeflow_job_meta.clock import Clock, SystemClock, utc_datetime
from lakeflow_job_meta.errors import ConfigurationError, LeaseHeldError
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.tables import LEASE_KEY

log = logging.getLogger(__name__)
# Who holds the lease, told by the holder id's prefix: an apply of its own (the CLI, a notebook's
# JobOrchestrator) or a monitor. ``status`` reads a monitor's state only from a monitor's lease.
APPLY_HOLDER_PREFIX = "orchestrator@"
MONITOR_HOLDER_PREFIX = "monitor@"


def apply_holder_id(process: str) -> str:
    """The holder id of an apply's own lease, for the process ``process`` (host:pid:nonce)."""
    return f"{APPLY_HOLDER_PREFIX}{process}"


def monitor_holder_id(process: str) -> str:
    """The holder id of a monitor's lease, for the process ``process`` (host:pid:nonce)."""
    return f"{MONITOR_HOLDER_PREFIX}{process}"


def is_apply_holder(holder: str) -> bool:
    """Whether ``holder`` is an apply's own lease (see :func:`apply_holder_id`), not a monitor's."""
    return holder.startswith(APPLY_HOLDER_PREFIX)


_CAS_ATTEMPTS = 3  # a CAS can fail on an unrelated concurrent commit; retry while the row is unchanged


class LeaseLostError(LeaseHeldError):
    """The lease was ours but expired or was taken over; nothing may be applied."""


@dataclass(frozen=True)
class LeaseInfo:
    """The lease row's value, as stored."""

    holder: str
    expires_at: float
    acquired_at: float
    renewed_at: float
    generation: int

    def is_live(self, now: float) -> bool:
        return now < self.expires_at

    def describe(self, now: float) -> str:
        until = utc_datetime(self.expires_at).isoformat(timespec="seconds")
        left = self.expires_at - now
        state = f"{left:.0f}s left" if left > 0 else "expired"
        return f"{self.holder} until {until} ({state})"

    def expires_local(self) -> str:
        """The expiry in the machine's local time zone: what an operator at a terminal reads."""
        return datetime.fromtimestamp(self.expires_at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> LeaseInfo | None:
        """None when the value is unreadable: such a row counts as expired and can be taken
        (by CAS against exactly that row) instead of blocking everyone forever."""
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(
                holder=str(d["holder"]),
                expires_at=float(d["expires_at"]),
                acquired_at=float(d.get("acquired_at", 0.0)),
                renewed_at=float(d.get("renewed_at", 0.0)),
                generation=int(d.get("generation", 0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("ignoring a malformed lease value: %r", text[:200])
            return None


class Lease:
    """A TTL lease on ``(scope, "lease")`` in ``state_table``, held by ``holder_id``.

    ``holder_id`` must be unique per process (e.g. host:pid:uuid): the same id is treated as the
    same holder, so a restarted process with the same id takes its lease back at once.
    """

    def __init__(
        self,
        state_table: Table,
        *,
        holder_id: str,
        scope: str,
        ttl_seconds: float = 60.0,
        clock: Clock | None = None,
        poll_seconds: float | None = None,
    ):
        if ttl_seconds <= 0:
            raise ConfigurationError(f"lease TTL must be positive, got {ttl_seconds}")
        if not holder_id:
            raise ConfigurationError("lease holder id must not be empty")
        self.table = state_table
        self.holder_id = holder_id
        self.scope = scope
        self.ttl = float(ttl_seconds)
        self.clock: Clock = clock or SystemClock()
        self.renew_every = self.ttl / 3
        self.poll_seconds = poll_seconds if poll_seconds is not None else min(10.0, self.renew_every)
        self._lock = threading.RLock()
        self._row: dict[str, Any] | None = None  # the row we last wrote (while held)
        self._info: LeaseInfo | None = None
        self._held = False
        self._last_write_mono = 0.0
        self._last_seen: LeaseInfo | None = None  # the holder seen by the last failed acquire
        self.lost_to: LeaseInfo | None = None

    # ------------------------------------------------------------------ state

    @property
    def held(self) -> bool:
        """True while we hold the lease and can still prove it (see the module docstring)."""
        with self._lock:
            return self._held and self.clock.monotonic() < self._local_deadline()

    @property
    def info(self) -> LeaseInfo | None:
        """Our lease as last written (None when not held)."""
        with self._lock:
            return self._info if self._held else None

    def seconds_until_renewal(self) -> float | None:
        """How long until :meth:`renew_if_due` would renew (0 when due); None when not held.
        A loop that sleeps longer than this between cycles lets the lease lapse."""
        with self._lock:
            if not self._held:
                return None
            return max(0.0, self.renew_every - (self.clock.monotonic() - self._last_write_mono))

    def holder_info(self) -> LeaseInfo | None:
        """The lease row as stored now (ours or someone else's, live or expired), or None."""
        row = self._read()
        return None if row is None else LeaseInfo.from_json(row.get("value"))

    # ------------------------------------------------------------------ acquire / renew / release

    def try_acquire(self) -> bool:
        """Take the lease if it is absent, expired, or already ours. Never waits."""
        with self._lock:
            for _ in range(_CAS_ATTEMPTS):
                current = self._read()
                current_info = None if current is None else LeaseInfo.from_json(current.get("value"))
                now = self.clock.now()
                ours = current_info is not None and current_info.holder == self.holder_id
                if current_info is not None and not ours and current_info.is_live(now):
                    if self._held:
                        self._mark_lost(current)  # we held it, and someone else has it now
                    self._last_seen = current_info
                    return False
                continuing = ours and self._held and current == self._row
                prior_generation = current_info.generation if current_info else 0
                info = LeaseInfo(
                    holder=self.holder_id,
                    expires_at=now + self.ttl,
                    acquired_at=current_info.acquired_at if continuing and current_info else now,
                    renewed_at=now,
                    generation=prior_generation if continuing else prior_generation + 1,
                )
                if self._write(info, expected=current):
                    if not continuing:
                        log.info(
                            "writer lease %s acquired by %s (generation %d)",
                            self.scope,
                            self.holder_id,
                            info.generation,
                        )
                    return True
            return False

    def renew_if_due(self) -> bool:
        """Renew when TTL/3 has passed since the last write, else do nothing (an idle cycle
        writes nothing). Returns whether the lease is still held; False marks it lost."""
        with self._lock:
            if not self._held:
                return False
            if self.clock.monotonic() - self._last_write_mono < self.renew_every:
                return self.held
            return self.renew()

    def renew(self) -> bool:
        """Extend the lease now, by CAS against the row we wrote last."""
        with self._lock:
            if not self._held or self._info is None:
                return False
            for _ in range(_CAS_ATTEMPTS):
                now = self.clock.now()
                info = replace(self._info, expires_at=now + self.ttl, renewed_at=now)
                if self._write(info, expected=self._row):
                    return True
                current = self._read()
                if current != self._row:
                    self._mark_lost(current)
                    return False
            log.warning("writer lease %s: renewal kept conflicting; treating it as lost", self.scope)
            self._mark_lost(self._read())
            return False

    def ensure_held(self, verify: bool = True) -> None:
        """Call before every apply step: renews when due; raises LeaseLostError if not held.

        With ``verify`` (the default) it also reads the row when no renewal was due, so even a
        forced overwrite (an operator taking the lease by hand) stops us before the apply. Applies
        are rare next to idle cycles, so the read is cheap; pass False inside a tight apply loop.
        """
        with self._lock:
            wrote_before = self._last_write_mono
            if self.renew_if_due() and self.held:
                if not verify or self._last_write_mono != wrote_before:
                    return  # a renewal CAS just proved ownership
                current = self._read()
                if current == self._row:
                    return
                self._mark_lost(current)
            self._held = False
            where = f"the writer lease of {self.scope} on {self.table.name}"
            if self.lost_to is not None:
                raise LeaseLostError(
                    f"lost {where} to {self.lost_to.describe(self.clock.now())}; nothing more is applied"
                )
            raise LeaseLostError(f"{where} is not held (never acquired, or it expired); nothing is applied")

    def release(self) -> bool:
        """Give the lease up if it is still ours (best effort: errors are logged, not raised),
        by writing it already expired so the next contender need not wait for the TTL."""
        with self._lock:
            if not self._held or self._info is None:
                return False
            now = self.clock.now()
            info = replace(self._info, expires_at=now, renewed_at=now)
            expected = self._row
            self._held = False
            try:
                ok = self.table.compare_and_set(self._row_of(info), expected)
            except Exception as exc:  # best effort: the TTL frees it anyway
                log.warning("writer lease %s: release failed (%s); it expires by itself", self.scope, exc)
                return False
            finally:
                self._row = None
                self._info = None
            if ok:
                log.info("writer lease %s released by %s", self.scope, self.holder_id)
            return ok

    def acquire(
        self,
        wait: bool,
        timeout: float | None = None,
        on_wait: Callable[[LeaseInfo | None], None] | None = None,
        stop: threading.Event | None = None,
    ) -> bool:
        """Take the lease. With ``wait=False`` raise LeaseHeldError naming the holder and its
        expiry; otherwise poll through the clock until it is ours (True), ``timeout`` seconds
        pass, or ``stop`` is set (False). ``on_wait`` gets the current holder before each wait."""
        if self.try_acquire():
            return True
        if not wait:
            raise LeaseHeldError(self.held_message())
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        while True:
            holder = self._last_seen
            if on_wait is not None:
                on_wait(holder)
            delay = self.poll_seconds
            if holder is not None:
                until_expiry = holder.expires_at - self.clock.now()
                if until_expiry > 0:
                    delay = min(delay, until_expiry + 0.01)
            if deadline is not None:
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    return False
                delay = min(delay, remaining)
            if self.clock.sleep(delay, stop) or (stop is not None and stop.is_set()):
                return False
            if self.try_acquire():
                return True

    def __enter__(self) -> Lease:
        self.acquire(wait=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ internals

    def _local_deadline(self) -> float:
        return self._last_write_mono + self.ttl - self.ttl / 6

    def _key(self) -> dict[str, Any]:
        return {"scope": self.scope, "key": LEASE_KEY}

    def _row_of(self, info: LeaseInfo) -> dict[str, Any]:
        return {**self._key(), "value": info.to_json()}

    def _read(self) -> dict[str, Any] | None:
        """The lease row reduced to key + value: the CAS compares on exactly these columns.
        Audit columns (updated_at) are left out: the adapter fills them and their timestamp
        precision need not round-trip; ``value`` alone is unique per write."""
        for row in self.table.read_all():
            if row.get("scope") == self.scope and row.get("key") == LEASE_KEY:
                return {"scope": row["scope"], "key": row["key"], "value": row.get("value")}
        return None

    def _write(self, info: LeaseInfo, expected: Mapping[str, Any] | None) -> bool:
        mono = self.clock.monotonic()  # before the write: the local deadline stays conservative
        row = self._row_of(info)
        if not self.table.compare_and_set(row, None if expected is None else dict(expected)):
            return False
        self._row, self._info, self._held = row, info, True
        self._last_write_mono = mono
        self.lost_to = None
        return True

    def _mark_lost(self, current: Mapping[str, Any] | None) -> None:
        self._held = False
        self.lost_to = None if current is None else LeaseInfo.from_json(current.get("value"))
        self._last_seen = self.lost_to
        self._row = None
        self._info = None
        who = self.lost_to.holder if self.lost_to else "nobody"
        log.warning("writer lease %s lost by %s (now held by %s)", self.scope, self.holder_id, who)

    def held_message(self, waited: float | None = None) -> str:
        """One line: who holds the lease and when it expires (local time), and what to do."""
        holder = self._last_seen
        who = "another process"
        if holder is not None:
            left = holder.expires_at - self.clock.now()
            when = f"in {left:.0f}s" if left > 0 else "already expired"
            who = f"{holder.holder}, whose lease expires at {holder.expires_local()} ({when})"
        if waited:
            hint = f"gave up after waiting {waited:g}s (raise --lease-timeout, or stop that process)"
        else:
            hint = "wait for it (--lease-timeout SECONDS) or stop that process"
        return f"the writer lease of {self.scope} on {self.table.name} is held by {who}; {hint}"

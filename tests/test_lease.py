from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.engine.lease import Lease, LeaseInfo, LeaseLostError
from lakeflow_job_meta.errors import LeaseHeldError
from lakeflow_job_meta.storage.base import Column, TableSpec
from tests.fakes import FakeClock

WRITTEN_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the audit column; nothing here reads it
STATE = TableSpec(
    kind="state",
    columns=(
        Column("scope", "string"),
        Column("key", "string"),
        Column("value", "string"),
        Column("updated_at", "timestamp"),
    ),
    key=("scope", "key"),
    schema_version=1,
)


class MemoryTable:
    """The parts of the Table protocol a lease uses, with the same CAS semantics."""

    def __init__(self, name: str = "mem.ctl_state"):
        self.name = name
        self.spec = STATE
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.writes = 0
        self.spurious_failures = 0  # fail the next N CAS calls as if a concurrent commit won
        self._lock = threading.Lock()

    def _key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in self.spec.key)

    def read_all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.rows.values()]

    def merge(
        self, upserts: Sequence[Mapping[str, Any]] = (), deletes: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        with self._lock:
            if not upserts and not deletes:
                return False
            for row in upserts:
                self.rows[self._key(row)] = {**dict(row), "updated_at": WRITTEN_AT}
            for row in deletes:
                self.rows.pop(self._key(row), None)
            self.writes += 1
            return True

    def compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        with self._lock:
            if self.spurious_failures:
                self.spurious_failures -= 1
                return False
            current = self.rows.get(self._key(row))
            if expected is None:
                if current is not None:
                    return False
            elif current is None or any(current.get(k) != v for k, v in expected.items()):
                return False
            self.rows[self._key(row)] = {**dict(row), "updated_at": WRITTEN_AT}
            self.writes += 1
            return True

    def value(self, scope: str = "ctl") -> dict[str, Any]:
        return json.loads(self.rows[(scope, "lease")]["value"])


def race(leases: list[Lease]) -> list[bool]:
    """Every lease calls try_acquire at the same moment from its own thread."""
    results = [False] * len(leases)
    barrier = threading.Barrier(len(leases))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = leases[i].try_acquire()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(leases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def table() -> MemoryTable:
    return MemoryTable()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lease(table: Any, clock: FakeClock, holder: str, ttl: float = 60.0, scope: str = "ctl") -> Lease:
    return Lease(table, holder_id=holder, ttl_seconds=ttl, clock=clock, scope=scope)


def test_two_contenders_exactly_one_holds(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    assert a.held and not b.held
    info = b.holder_info()
    assert info is not None and info.holder == "a" and info.expires_at == clock.now() + 60
    value = table.value()
    assert value["holder"] == "a" and value["generation"] == 1 and value["acquired_at"] == clock.now()


def test_contenders_racing_from_threads_one_wins(table: MemoryTable) -> None:
    clock = FakeClock()
    leases = [lease(table, clock, f"h{i}") for i in range(8)]
    results = race(leases)
    assert sum(results) == 1
    assert sum(le.held for le in leases) == 1


def test_stale_read_loses_the_cas(table: MemoryTable, clock: FakeClock) -> None:
    """Both read 'absent'; the second CAS must fail and then see the winner."""
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    real_read = table.read_all
    reads = {"n": 0}

    def read_all_then_race() -> list[dict[str, Any]]:
        rows = real_read()
        reads["n"] += 1
        if reads["n"] == 1:
            assert a.try_acquire()  # a wins between b's read and b's write
        return rows

    table.read_all = read_all_then_race  # type: ignore[method-assign]
    assert not b.try_acquire()
    table.read_all = real_read  # type: ignore[method-assign]
    assert a.held and not b.held and table.value()["holder"] == "a"


def test_expiry_lets_another_take_over_and_old_holder_notices(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    clock.advance(59)
    assert not b.try_acquire()
    clock.advance(1.5)  # a stopped renewing (stalled, crashed)
    assert not a.held  # locally a can no longer prove ownership
    assert b.try_acquire()
    assert table.value() | {"holder": "b", "generation": 2} == table.value()
    # a wakes up: its renewal is refused and the loss is detected before any apply.
    assert not a.renew_if_due()
    assert a.lost_to is not None and a.lost_to.holder == "b"
    with pytest.raises(LeaseLostError, match=r"lost the writer lease of ctl on mem\.ctl_state to b"):
        a.ensure_held()
    assert table.value()["holder"] == "b"


def test_try_acquire_by_a_former_holder_reports_the_loss(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    clock.advance(61)
    assert b.try_acquire()
    assert not a.try_acquire()
    assert a.lost_to is not None and a.lost_to.holder == "b" and not a.held


def test_ensure_held_verifies_the_row_before_an_apply(table: MemoryTable, clock: FakeClock) -> None:
    a = lease(table, clock, "a")
    assert a.try_acquire()
    a.ensure_held()
    forced = LeaseInfo("ops", clock.now() + 600, clock.now(), clock.now(), 7)
    table.merge([{"scope": "ctl", "key": "lease", "value": forced.to_json()}])
    writes = table.writes
    a.ensure_held(verify=False)  # trusts the local deadline: no read, no write
    with pytest.raises(LeaseLostError, match="to ops"):
        a.ensure_held()  # not due for renewal, but the read shows the takeover
    assert table.writes == writes and not a.held


def test_lost_holder_cannot_renew_even_before_its_local_deadline(
    table: MemoryTable, clock: FakeClock
) -> None:
    """Someone overwrote the row (e.g. an operator forced it): the next renewal detects it."""
    a = lease(table, clock, "a")
    assert a.try_acquire()
    forced = LeaseInfo("ops", clock.now() + 600, clock.now(), clock.now(), 7)
    table.merge([{"scope": "ctl", "key": "lease", "value": forced.to_json()}])
    clock.advance(20)
    assert not a.renew_if_due()
    assert not a.held
    assert not a.renew_if_due()  # stays lost: renewal never re-takes it
    assert table.value()["holder"] == "ops"


def test_renews_only_every_third_of_ttl(table: MemoryTable, clock: FakeClock) -> None:
    a = lease(table, clock, "a", ttl=60)
    assert a.try_acquire()
    writes = table.writes
    for _ in range(19):  # idle monitor cycles of 1 s: no writes
        clock.advance(1)
        assert a.renew_if_due()
    assert table.writes == writes
    clock.advance(1)  # 20 s = TTL/3
    assert a.renew_if_due()
    assert table.writes == writes + 1
    assert table.value()["expires_at"] == clock.now() + 60
    assert table.value()["acquired_at"] == clock.now() - 20
    clock.advance(5)
    a.ensure_held()  # not due: no write
    assert table.writes == writes + 1
    # Held across many cycles as long as it keeps renewing.
    for _ in range(300):
        clock.advance(1)
        a.ensure_held()
    assert a.held and table.value()["generation"] == 1


def test_renewal_survives_a_spurious_cas_conflict(table: MemoryTable, clock: FakeClock) -> None:
    a = lease(table, clock, "a")
    assert a.try_acquire()
    clock.advance(30)
    table.spurious_failures = 1  # an unrelated commit on the state table won the race
    assert a.renew_if_due()
    assert a.held and table.value()["renewed_at"] == clock.now()


def test_acquire_survives_a_spurious_cas_conflict(table: MemoryTable, clock: FakeClock) -> None:
    table.spurious_failures = 2
    assert lease(table, clock, "a").try_acquire()


def test_release_lets_the_next_one_in_at_once(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    assert a.release()
    assert not a.held
    assert not a.release()  # idempotent, and only when ours
    assert b.try_acquire()
    assert not a.release()
    assert table.value()["holder"] == "b"


def test_release_after_loss_does_not_touch_the_new_holder(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    clock.advance(61)
    assert b.try_acquire()
    a.release()  # a has not noticed the loss yet; its CAS against its own row fails
    assert table.value()["holder"] == "b" and b.renew()


def test_release_is_best_effort(table: MemoryTable, clock: FakeClock) -> None:
    a = lease(table, clock, "a")
    assert a.try_acquire()

    def boom(row: Any, expected: Any) -> bool:
        raise OSError("storage unreachable")

    table.compare_and_set = boom  # type: ignore[method-assign]
    assert a.release() is False
    assert not a.held


def test_same_holder_id_takes_its_lease_back(table: MemoryTable, clock: FakeClock) -> None:
    assert lease(table, clock, "host:1").try_acquire()
    again = lease(table, clock, "host:1")  # restarted with the same id
    assert again.try_acquire()
    assert table.value()["generation"] == 2


def test_reacquire_while_held_is_a_renewal(table: MemoryTable, clock: FakeClock) -> None:
    a = lease(table, clock, "a")
    assert a.try_acquire()
    clock.advance(10)
    assert a.try_acquire()
    assert table.value()["generation"] == 1 and table.value()["acquired_at"] == clock.now() - 10


def test_wait_false_names_holder_and_expiry(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "host-a:123"), lease(table, clock, "b")
    assert a.acquire(wait=False)
    # the operator's local time, as a terminal shows it
    expiry = datetime.fromtimestamp(clock.now() + 60).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    with pytest.raises(LeaseHeldError) as err:
        b.acquire(wait=False)
    message = str(err.value)
    assert "host-a:123" in message and expiry in message and "mem.ctl_state" in message
    assert "(in 60s)" in message


def test_wait_polls_until_the_holder_releases(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    seen: list[LeaseInfo | None] = []

    def on_wait(holder: LeaseInfo | None) -> None:
        seen.append(holder)
        if len(seen) == 3:
            a.release()

    assert b.acquire(wait=True, on_wait=on_wait)
    assert b.held and len(seen) == 3 and seen[0] is not None and seen[0].holder == "a"
    assert all(0 < s <= 20 for s in clock.sleeps)  # polled through the clock, never longer than TTL/3


def test_wait_takes_over_after_expiry_and_timeout_gives_up(table: MemoryTable, clock: FakeClock) -> None:
    a, b = lease(table, clock, "a"), lease(table, clock, "b")
    assert a.try_acquire()
    assert not b.acquire(wait=True, timeout=30)
    assert sum(clock.sleeps) == pytest.approx(30)
    assert b.acquire(wait=True, timeout=60)  # a never renews: expires 60 s after acquiring
    assert table.value()["holder"] == "b"


def test_wait_stops_when_told(table: MemoryTable, clock: FakeClock) -> None:
    assert lease(table, clock, "a").try_acquire()
    stop = threading.Event()
    stop.set()
    assert not lease(table, clock, "b").acquire(wait=True, stop=stop)


def test_malformed_row_can_be_taken_over(table: MemoryTable, clock: FakeClock) -> None:
    table.merge([{"scope": "ctl", "key": "lease", "value": "{not json"}])
    a = lease(table, clock, "a")
    assert a.holder_info() is None
    assert a.try_acquire()
    assert table.value()["holder"] == "a"


def test_scopes_are_independent(table: MemoryTable, clock: FakeClock) -> None:
    assert lease(table, clock, "a", scope="ctl1").try_acquire()
    assert lease(table, clock, "b", scope="ctl2").try_acquire()


def test_ensure_held_without_acquire_raises(table: MemoryTable, clock: FakeClock) -> None:
    with pytest.raises(LeaseLostError, match="not held"):
        lease(table, clock, "a").ensure_held()


def _open_delta_state_table(root: Path) -> Any:
    """The real delta-rs state table, once the storage layer provides it; else skip."""
    storage = pytest.importorskip("lakeflow_job_meta.storage")
    pytest.importorskip("lakeflow_job_meta.storage.delta_rs")
    open_tables = getattr(storage, "open_tables", None)
    if open_tables is None:
        pytest.skip("lakeflow_job_meta.storage.open_tables is not available yet")
    tables = open_tables(str(root / "ctl"))
    tables.ensure_exists()
    return tables.state


def test_lease_on_real_delta_state_table(tmp_path: Path, clock: FakeClock) -> None:
    state = _open_delta_state_table(tmp_path)
    a, b = lease(state, clock, "a"), lease(state, clock, "b")
    assert a.try_acquire()
    assert not b.try_acquire()
    clock.advance(30)
    assert a.renew_if_due()
    clock.advance(61)
    assert b.try_acquire()
    assert not a.renew_if_due()
    assert b.holder_info() is not None and b.holder_info().holder == "b"  # type: ignore[union-attr]
    assert b.release()
    assert a.try_acquire()


def test_contention_on_real_delta_state_table(tmp_path: Path) -> None:
    """Threads race for the lease on one delta-rs table: the table's CAS must let one win."""
    state = _open_delta_state_table(tmp_path)
    for round_ in range(3):
        clock = FakeClock(start=1_700_000_000.0 + round_ * 1000)  # each round: previous lease expired
        leases = [lease(state, clock, f"r{round_}-h{i}") for i in range(4)]
        results = race(leases)
        assert sum(results) == 1, results
        winner = leases[results.index(True)]
        assert state_holder(state) == winner.holder_id


def state_holder(state: Any) -> str:
    rows = [r for r in state.read_all() if r["scope"] == "ctl" and r["key"] == "lease"]
    assert len(rows) == 1
    return json.loads(rows[0]["value"])["holder"]

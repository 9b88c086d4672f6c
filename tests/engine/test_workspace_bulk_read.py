"""The workspace target's bulk read: one listing (started in the background by ``prefetch``
while the desired state is compiled), the ACLs of the tracked jobs beside it, taken by one run.

An in-memory gateway stands at the far edge: these are properties of the engine's reads, not of
the SDK (the emulator and the fake workspace keep the contract tests of the real gateway)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lakeflow_job_meta.adapters.gateway import JobsPage, LiveJob, WriteCounter
from lakeflow_job_meta.engine.targets.workspace import (
    LIST_INSTEAD_OF_GET_THRESHOLD,
    PREFETCH_MAX_AGE_SECONDS,
    WorkspaceOptions,
    WorkspaceTarget,
)
from lakeflow_job_meta.errors import PermanentApiError
from lakeflow_job_meta.planning.plan import TrackedJob
from lakeflow_job_meta.storage.rows import TrackingRow
from tests.fakes import FakeClock

HOST = "https://memory.example"
KEY = f"workspace:{HOST}"
PAGE = 3


class MemoryJobs:
    """Just the reads of :class:`~lakeflow_job_meta.adapters.gateway.JobsGateway`, counted."""

    def __init__(self, job_ids: list[int]) -> None:
        self.jobs = {i: LiveJob(i, {"name": f"job {i}", "tasks": []}) for i in job_ids}
        self.calls: list[str] = []
        self.writes = WriteCounter()
        self.listing_started = threading.Event()
        self.release_listing = threading.Event()
        self.release_listing.set()
        self.fail_listing = False
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return HOST

    def start_run(self) -> None:
        pass

    def _note(self, call: str) -> None:
        with self._lock:
            self.calls.append(call)

    def list_page(self, page_token: str | None) -> JobsPage:
        self._note(f"list {page_token or 0}")
        self.listing_started.set()
        self.release_listing.wait()
        if self.fail_listing:
            raise PermanentApiError("jobs/list: PermissionDenied: no", sdk_error="PermissionDenied")
        start = int(page_token or 0)
        ids = sorted(self.jobs)[start : start + PAGE]
        more = start + PAGE < len(self.jobs)
        return JobsPage([self.jobs[i] for i in ids], str(start + PAGE) if more else None)

    def get_permissions(self, job_id: int) -> list[dict[str, Any]] | None:
        self._note(f"acl {job_id}")
        return [{"user_name": "me@example.com", "all_permissions": [{"permission_level": "IS_OWNER"}]}]

    def get(self, job_id: int) -> LiveJob | None:
        self._note(f"get {job_id}")
        return self.jobs.get(job_id)

    def count(self, prefix: str) -> int:
        return sum(1 for call in self.calls if call.startswith(prefix))


class RowsTable:
    """The tracking rows the target reads, in memory."""

    def __init__(self, job_ids: list[int]) -> None:
        self.rows = [TrackingRow(target=KEY, module_name=f"m{i}", job_id=i).as_row() for i in job_ids]

    def read_all(self) -> list[dict[str, Any]]:
        return list(self.rows)


def target_over(jobs: MemoryJobs, table: RowsTable) -> WorkspaceTarget:
    options = WorkspaceOptions(control_table_id="ctl", max_workers=2, max_reads=4)
    return WorkspaceTarget(lambda: jobs, table, options, FakeClock())  # type: ignore[arg-type]


def tracked(job_ids: list[int]) -> dict[str, TrackedJob]:
    return {f"m{i}": TrackedJob(module_name=f"m{i}", job_id=i, spec_hash="") for i in job_ids}


MANY = list(range(1, LIST_INSTEAD_OF_GET_THRESHOLD + 6))


def test_a_prefetched_read_is_the_one_listing_the_run_takes() -> None:
    jobs, table = MemoryJobs(MANY), RowsTable(MANY)
    target = target_over(jobs, table)
    jobs.release_listing.clear()
    target.prefetch(None, None)
    # The read runs in the background: the caller goes on (to compile) while it waits.
    assert jobs.listing_started.wait(timeout=30)
    jobs.release_listing.set()
    actual = target._read_actual(tracked(MANY), {f"m{i}" for i in MANY}, drift=True)
    pages = -(-len(MANY) // PAGE)
    assert jobs.count("list") == pages
    assert jobs.count("acl") == len(MANY) and jobs.count("get") == 0
    assert set(actual.live) == {f"m{i}" for i in MANY}
    assert set(actual.acls) == set(MANY)
    # Taken once: the next run reads the workspace again.
    target._read_actual(tracked(MANY), {f"m{i}" for i in MANY}, drift=True)
    assert jobs.count("list") == 2 * pages


def test_a_job_tracked_after_the_prefetch_began_has_its_acl_read_too() -> None:
    jobs, table = MemoryJobs([*MANY, 999]), RowsTable(MANY)
    target = target_over(jobs, table)
    target.prefetch(None, None)
    actual = target._read_actual(tracked([*MANY, 999]), {f"m{i}" for i in [*MANY, 999]}, drift=True)
    assert "m999" in actual.live and 999 in actual.acls
    assert jobs.count("acl 999") == 1 and jobs.count("list") == -(-(len(MANY) + 1) // PAGE)


def test_a_job_the_tool_wrote_while_the_read_ran_is_read_again_by_itself() -> None:
    """The monitor applies a change while a full resync's read runs: the listing may hold the
    job as it was before that write, so the resync reads it again instead of seeing drift."""
    jobs, table = MemoryJobs(MANY), RowsTable(MANY)
    target = target_over(jobs, table)
    target.prefetch(None, None)
    now = tracked(MANY)
    now["m3"] = TrackedJob(module_name="m3", job_id=3, spec_hash="written meanwhile")
    actual = target._read_actual(now, set(now), drift=True)
    assert jobs.count("get 3") == 1 and jobs.count("acl 3") == 2
    assert jobs.count("get") == 1 and "m3" in actual.live and 3 in actual.acls


@pytest.mark.parametrize(
    ("scope", "check_drift"), [({"m1"}, None), (None, False)], ids=["scoped run", "no drift check"]
)
def test_no_prefetch_for_a_scoped_run_or_without_drift_checks(
    scope: set[str] | None, check_drift: bool | None
) -> None:
    jobs, table = MemoryJobs(MANY), RowsTable(MANY)
    target = target_over(jobs, table)
    target.prefetch(scope, check_drift)
    assert target._prefetched is None and jobs.calls == []


def test_a_failed_listing_leaves_every_module_for_the_next_run() -> None:
    jobs, table = MemoryJobs(MANY), RowsTable(MANY)
    jobs.fail_listing = True
    target = target_over(jobs, table)
    target.prefetch(None, None)
    actual = target._read_actual(tracked(MANY), {f"m{i}" for i in MANY}, drift=True)
    assert actual.live == {} and set(actual.read_errors) == {f"m{i}" for i in MANY}
    assert actual.permanent == set(actual.read_errors)
    assert all("could not list the live jobs" in why for why in actual.read_errors.values())


def test_a_prefetched_read_left_waiting_too_long_is_read_again() -> None:
    """A run that started a read and stopped before taking it must not hand the next run an
    old view of the workspace."""
    jobs, table = MemoryJobs(MANY), RowsTable(MANY)
    clock = FakeClock()
    options = WorkspaceOptions(control_table_id="ctl", max_workers=2, max_reads=4)
    target = WorkspaceTarget(lambda: jobs, table, options, clock)  # type: ignore[arg-type]
    pending = target.prefetch(None, None)
    assert pending is not None and pending.result() is not None
    clock.advance(PREFETCH_MAX_AGE_SECONDS + 1)
    target._read_actual(tracked(MANY), {f"m{i}" for i in MANY}, drift=True)
    assert jobs.count("list") == 2 * -(-len(MANY) // PAGE)

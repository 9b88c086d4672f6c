"""Tracking writes from concurrent workers share Delta commits, and each returns only once its
own row is committed (``TrackingWriter`` in ``engine/targets/workspace_apply.py``)."""

from __future__ import annotations

import threading
from typing import Any

from lakeflow_job_meta.engine.targets.workspace_apply import TrackingWriter
from lakeflow_job_meta.planning.plan import TrackedJob

WORKERS = 7


class GateTable:
    """A table whose first merge blocks until released, so the others queue behind it."""

    def __init__(self) -> None:
        self.merges: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.first_entered = threading.Event()
        self.release = threading.Event()

    def merge(self, upserts: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
        self.merges.append((upserts, deletes))
        if len(self.merges) == 1:
            self.first_entered.set()
            assert self.release.wait(30)


def record(writer: TrackingWriter, module: str) -> None:
    tracked = TrackedJob(module_name=module, job_id=1, spec_hash="h", paused_by_tool=False, managed_files={})
    writer.record(tracked, status="ok", last_error=None, applied_version=1, job_name=module, hash_version=1)


def test_writes_that_arrive_during_a_commit_go_into_the_next_one_together():
    table = GateTable()
    writer = TrackingWriter(table, "workspace:x", threading.Lock())
    first = threading.Thread(target=record, args=(writer, "m0"))
    first.start()
    assert table.first_entered.wait(30)
    others = [threading.Thread(target=record, args=(writer, f"m{i}")) for i in range(1, WORKERS + 1)]
    for thread in others:
        thread.start()
    with writer._turn:  # every other write is queued behind the running commit
        assert writer._turn.wait_for(lambda: len(writer._pending) == WORKERS, timeout=30)
    table.release.set()
    for thread in [first, *others]:
        thread.join(30)
    assert len(table.merges) == 2
    assert [row["module_name"] for row in table.merges[0][0]] == ["m0"]
    assert sorted(row["module_name"] for row in table.merges[1][0]) == [
        f"m{i}" for i in range(1, WORKERS + 1)
    ]


def test_a_failed_group_commit_is_raised_to_every_writer_in_it():
    class Failing:
        def merge(self, upserts: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
            raise OSError("disk full")

    writer = TrackingWriter(Failing(), "workspace:x", threading.Lock())
    errors: list[BaseException] = []
    try:
        record(writer, "m0")
    except OSError as error:
        errors.append(error)
    assert [str(e) for e in errors] == ["disk full"]
    assert writer._pending == [] and not writer._committing

"""RunRecorder against real delta-rs tables: one list call per interval, nothing written when
nothing changed, a run recorded finished never written again, retention deletes old rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeflow_job_meta.engine.runs import RunRecorder
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.rows import TrackingRow
from tests.fakes import FakeClock


class Listing:
    """The Jobs API's jobs/runs/list at the far edge: the runs it lists, the windows asked."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.windows: list[int | None] = []

    def list_runs(
        self, *, start_time_from: int | None = None, active_only: bool = False, max_runs: int | None = None
    ) -> list[dict[str, Any]]:
        self.windows.append(start_time_from)
        return [r for r in self.runs if start_time_from is None or r["start_time"] >= start_time_from]


def run(run_id: int, job_id: int, start: float, *, result: str | None = "SUCCESS") -> dict[str, Any]:
    state: dict[str, Any] = {"life_cycle_state": "TERMINATED" if result else "RUNNING"}
    if result:
        state["result_state"] = result
    return {
        "run_id": run_id,
        "job_id": job_id,
        "start_time": int(start * 1000),
        **({"end_time": int((start + 30) * 1000)} if result else {}),
        "state": state,
    }


def test_idle_polls_cost_one_call_and_no_write_and_retention_prunes(tmp_path: Path) -> None:
    tables = open_tables(str(tmp_path / "ctl"))
    tables.ensure_exists()
    tables.jobs.merge([TrackingRow(target="workspace:h", module_name="m", job_id=7, status="ok").as_row()])
    clock, listing = FakeClock(), Listing()
    recorder = RunRecorder(
        runs=tables.runs,
        tracking=tables.jobs,
        modules=tables.modules,
        gateway=lambda: listing,
        clock=clock,
        interval_seconds=60,
        retention_days=1,
    )
    now = clock.now()
    listing.runs = [run(1, 7, now - 600), run(2, 99, now - 50), run(3, 7, now - 500, result=None)]
    poll = recorder.poll()
    assert poll is not None and poll.written == 2  # job 99 is not managed
    assert recorder.poll() is None and len(listing.windows) == 1  # not due
    clock.advance(60)
    version = tables.runs.version()
    poll = recorder.poll()
    assert poll is not None and poll.written == 0 and tables.runs.version() == version
    assert listing.windows[-1] == int((now - 500) * 1000)  # from the active run's start
    listing.runs[2] = run(3, 7, now - 500)  # it finished
    clock.advance(60)
    assert recorder.poll().written == 1  # type: ignore[union-attr]
    clock.advance(86400 * 2)
    poll = recorder.poll()
    assert poll is not None and poll.pruned == 2 and tables.runs.read_all() == []

"""The status page keeps the fleet in memory and brings it up to date by what moved in the
tables (web/fleet.py). Whatever is written, and in whatever order, what it shows must equal what
``status`` reads from scratch: after each kind of write the kept entries are compared with a
full ``read_status`` (metadata validated whole, health judged whole) of the same tables."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.engine.status import read_status
from lakeflow_job_meta.storage import control_table_id, open_tables
from lakeflow_job_meta.storage.state_store import StateKey, StateStore
from lakeflow_job_meta.web.fleet import rejections
from lakeflow_job_meta.web.pages import SYNC_STATES, Filters, sync_state
from lakeflow_job_meta.web.serve import build_source
from lakeflow_job_meta.wiring import RunSettings, build_manager, build_parts
from tests.example_files import EXAMPLES
from tests.fakes import AFTER_ANY_REAL_CLOCK, FakeClock

pytest.importorskip("deltalake")

HOST = "workspace:https://example.cloud.databricks.com"


class Fleet:
    def __init__(self, tmp_path: Path):
        self.ctl = str(tmp_path / "etl_control")
        settings = RunSettings(self.ctl)
        parts = build_parts(settings)
        self.manager = build_manager(settings, parts)
        self.manager.ensure_exists()
        self.manager.load_files([str(EXAMPLES)])
        self.tables = open_tables(self.ctl)
        self.tables.runs.create_or_migrate()
        self.clock = FakeClock(start=AFTER_ANY_REAL_CLOCK)
        self.state = StateStore(self.tables.state, control_table_id(self.ctl), self.clock.now)
        self.source = build_source(self.ctl, clock=self.clock, warm=False)

    def row(self, source_id: str) -> dict[str, Any]:
        (row,) = [r for r in self.tables.control.read_all() if r["source_id"] == source_id]
        return {k: v for k, v in row.items() if k not in ("created_at", "updated_at")}

    def switch_off(self, source_id: str) -> None:
        self.tables.control.merge([{**self.row(source_id), "is_active": False}])

    def expect_as_read_from_scratch(self) -> dict[str, dict[str, Any]]:
        page = self.source.overview(Filters())
        kept = self.source.fleet
        status = read_status(
            self.tables,
            self.ctl,
            desired=self.manager.desired_state(),
            runs=self.tables.runs.read_all(),
            now=self.clock.now(),
        )
        for module in status["modules"]:
            module["rejections"] = rejections(module, status["rejected_files"])
        shown = [{k: v for k, v in kept.docs[n].items() if k != "sync_manual"} for n in kept.names]
        assert shown == status["modules"]
        assert {k: v for k, v in kept.header.items()} == {k: v for k, v in status.items() if k != "modules"}
        rows = {row["module"]: row for row in page["modules"]}
        assert [row["sync"] for row in rows.values()] == [sync_state(kept.docs[n]) for n in rows]
        return rows


def _run(run_id: int, job_id: int, module: str, started: datetime, **more: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "job_id": job_id,
        "module_name": module,
        "target": HOST,
        "trigger": "PERIODIC",
        "life_cycle_state": "TERMINATED",
        "result_state": "SUCCESS",
        "started_at": started,
        "ended_at": started + timedelta(seconds=60),
        "duration_seconds": 60.0,
        **more,
    }


def test_every_kind_of_write_shows_as_a_full_read_would(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    rows = fleet.expect_as_read_from_scratch()
    assert rows["sales_daily"]["sync"] == "out of sync"  # loaded, never applied
    now = datetime.fromtimestamp(fleet.clock.now(), timezone.utc)
    loaded_at = max(row["updated_at"] for row in fleet.tables.control.read_all())

    # Applied (tracking and history rows), runs recorded, one still running.
    tracked = ["sales_daily", "nightly_umbrella", "ml_features"]
    fleet.tables.jobs.merge(
        [
            {
                "target": HOST,
                "module_name": m,
                "job_id": i + 1,
                "job_name": m,
                "spec_hash": "h",
                "status": "ok",
            }
            for i, m in enumerate(tracked)
        ]
    )
    fleet.tables.history.append(
        [
            {
                "run_id": "r1",
                "target": HOST,
                "module_name": m,
                "action": "create",
                "job_id": i + 1,
                "outcome": "ok",
                "started_at": loaded_at + timedelta(microseconds=1),  # after the load, before the edit below
            }
            for i, m in enumerate(tracked)
        ]
    )
    fleet.tables.runs.merge(
        [
            _run(1, 1, "sales_daily", now - timedelta(hours=2)),
            _run(2, 1, "sales_daily", now - timedelta(hours=1), result_state="FAILED", error="boom"),
            _run(
                3,
                2,
                "nightly_umbrella",
                now - timedelta(seconds=30),
                life_cycle_state="RUNNING",
                result_state=None,
                ended_at=None,
                duration_seconds=None,
            ),
        ]
    )
    rows = fleet.expect_as_read_from_scratch()
    assert (rows["ml_features"]["sync"], rows["sales_daily"]["health"]) == ("synced", "failing")

    # A load of an edited row: that module's metadata is newer than its apply.
    edited = fleet.row("orders_ingest")
    edited["transformation_config"] = json.dumps(
        {**json.loads(edited["transformation_config"]), "timeout_seconds": 99}
    )
    fleet.tables.control.merge([edited])
    assert fleet.expect_as_read_from_scratch()["sales_daily"]["sync"] == "out of sync"

    # A module's health rule (the modules table) and time passing for the running run.
    (settings,) = [r for r in fleet.tables.modules.read_all() if r["module_name"] == "nightly_umbrella"]
    rules = {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]}
    settings = {**json.loads(settings["settings"]), "health": rules}
    fleet.tables.modules.merge(
        [{"module_name": "nightly_umbrella", "settings": json.dumps(settings), "is_active": True}]
    )
    assert fleet.expect_as_read_from_scratch()["nightly_umbrella"]["health"] == "healthy"
    fleet.clock.advance(120)
    assert fleet.expect_as_read_from_scratch()["nightly_umbrella"]["health"] == "too_long"

    # A module's sources leave the metadata, and come back.
    gone = [r for r in fleet.tables.control.read_all() if r["module_name"] == "sales_daily"]
    fleet.tables.control.merge([], [{"source_id": r["source_id"]} for r in gone])
    assert fleet.expect_as_read_from_scratch()["sales_daily"]["sync"] == "inactive"  # its settings stay
    fleet.tables.control.merge(
        [{k: v for k, v in r.items() if k not in ("created_at", "updated_at")} for r in gone]
    )
    assert fleet.expect_as_read_from_scratch()["sales_daily"]["sync"] == "out of sync"

    # A row of sales_daily that runs nightly_umbrella, which runs sales_daily: the cycle makes
    # the module that did not change invalid too (it is validated again with the one that did).
    loop = {
        "source_id": "run_umbrella",
        "module_name": "sales_daily",
        "source_type": "job",
        "execution_order": 9,
        "transformation_config": json.dumps(
            {"task_type": "run_job", "run_job_task": {"module_name": "nightly_umbrella"}}
        ),
        "is_active": True,
    }
    fleet.tables.control.merge([loop])
    assert fleet.expect_as_read_from_scratch()["nightly_umbrella"]["sync"] == "error"
    fleet.tables.control.merge([], [{"source_id": "run_umbrella"}])
    assert fleet.expect_as_read_from_scratch()["nightly_umbrella"]["sync"] == "synced"

    # The state table: a held manual change, a rejected file, the lease.
    fleet.state.put(
        StateKey.PENDING_MANUAL, {HOST: {"ml_features": {"action": "update", "diff": ["~ x: 1 -> 2"]}}}
    )
    fleet.state.put(StateKey.REJECTED_FILES, {EXAMPLES.name: [f"{EXAMPLES.name}:3: bad"]})
    rows = fleet.expect_as_read_from_scratch()
    assert rows["ml_features"]["sync"] == "error"  # its file is rejected, which says more
    fleet.state.put(StateKey.REJECTED_FILES, {})
    assert fleet.expect_as_read_from_scratch()["ml_features"]["sync"] == "manual pending"

    # An apply that failed, then the job forgotten.
    fleet.tables.jobs.merge(
        [
            {
                "target": HOST,
                "module_name": "ml_features",
                "job_id": 3,
                "spec_hash": "h",
                "status": "ok",
                "last_error": "jobs/reset failed",
            }
        ]
    )
    assert fleet.expect_as_read_from_scratch()["ml_features"]["sync"] == "error"
    fleet.tables.jobs.merge([], [{"target": HOST, "module_name": "ml_features"}])
    fleet.expect_as_read_from_scratch()


def test_a_fleet_read_whole_again_when_the_feed_cannot_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(tmp_path)
    fleet.expect_as_read_from_scratch()
    monkeypatch.setattr(type(fleet.tables.control), "changes_since", lambda self, version: None)
    fleet.switch_off("orders_ingest")
    fleet.expect_as_read_from_scratch()


def test_a_refresh_cut_short_starts_again_from_whole_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(tmp_path)
    fleet.expect_as_read_from_scratch()
    kept = fleet.source.fleet

    def cut_short(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk gone")

    monkeypatch.setattr(kept, "_revalidate", cut_short)
    fleet.switch_off("orders_ingest")  # taken from the feed, never applied
    with pytest.raises(OSError):
        fleet.source.overview(Filters())
    monkeypatch.undo()
    fleet.expect_as_read_from_scratch()


EXTRA_YAML = """\
modules:
  - module_name: quiet_module
    sources:
      - source_id: quiet_task
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/quiet}
  - module_name: manual_module
    sync: manual
    sources:
      - source_id: manual_task
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/manual}
"""


def test_every_sync_state_is_reached_by_the_tool_itself(tmp_path: Path) -> None:
    """Loads, applies to a bundle folder and edits that a user makes leave one module in each
    sync state the page names; each is read as ``sync_state`` says, and the overview's filter
    finds it."""
    from lakeflow_job_meta import JobOrchestrator

    fleet = Fleet(tmp_path)
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA_YAML)
    fleet.manager.load_files([str(EXAMPLES), str(extra)])
    bundle = f"bundle:{tmp_path / 'bundle'}"
    held_back = tmp_path / "policy.yaml"
    held_back.write_text("mass_change: {max_jobs: 0, max_fraction: 0}\n")

    def apply(**options: Any) -> Any:
        return JobOrchestrator(fleet.ctl, target=bundle, **options).run_all_modules()

    def remove(module: str) -> None:
        for table in (fleet.tables.control, fleet.tables.modules):
            keys = [{k: r[k] for k in table.spec.key} for r in table.read_all() if r["module_name"] == module]
            table.merge([], keys)

    apply()  # manual_module's create is held: only `apply --module` creates it
    JobOrchestrator(fleet.ctl, target=bundle).create_or_update_job("manual_module")
    remove("warehouse_refresh")
    apply(allow_mass_change=True)  # its job paused: the module is gone, its job stays
    remove("ml_features")
    edited = fleet.row("manual_task")
    edited["transformation_config"] = json.dumps(
        {**json.loads(edited["transformation_config"]), "notebook_path": "/Workspace/Shared/manual_v2"}
    )
    fleet.tables.control.merge([edited])
    apply(policy=str(held_back))  # ml_features' pause held back; manual_module's update held
    edited = fleet.row("orders_ingest")
    edited["transformation_config"] = json.dumps(
        {**json.loads(edited["transformation_config"]), "timeout_seconds": 99}
    )
    fleet.tables.control.merge([edited])  # loaded, not applied
    broken = fleet.row("clickstream_stream")
    broken["transformation_config"] = "{not json"
    fleet.tables.control.merge([broken])  # e.g. an INSERT by SQL

    rows = fleet.expect_as_read_from_scratch()
    expected = {
        "quiet_module": "synced",
        "sales_daily": "out of sync",
        "ml_features": "held",
        "manual_module": "manual pending",
        "clickstream_continuous": "error",
        "warehouse_refresh": "orphaned",
        "legacy_exports": "inactive",
    }
    assert {m: rows[m]["sync"] for m in expected} == expected
    assert set(expected.values()) == set(SYNC_STATES)
    for module, state in expected.items():
        found = fleet.source.overview(Filters(sync=state))["modules"]
        assert module in [row["module"] for row in found]
    pending = fleet.source.module("manual_module")
    assert pending is not None
    (change,) = pending["pending"]["changes"]
    assert (change["action"], change["source"]) == ("update", "job file")  # held, diffed on disk
    assert change["hint"] == "sync: manual: pending until `apply --module manual_module`"
    assert change["diff"] == [
        '~ tasks[manual_task].notebook_task.notebook_path: "/Workspace/Shared/manual" -> "/Workspace/Shared/manual_v2"'
    ]
    (change,) = fleet.source.module("sales_daily")["pending"]["changes"]
    assert (change["action"], change["source"]) == ("update", "job file")
    assert [c["path"] for c in change["fields"]] == ["tasks[orders_ingest].timeout_seconds"]

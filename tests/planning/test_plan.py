"""plan_module for every branch, and the Plan's summary, JSON and text."""

from __future__ import annotations

import copy
import json

import pytest

from lakeflow_job_meta.planning.compiler import CompiledJob, compile_module, file_sha256
from lakeflow_job_meta.planning.plan import Plan, PlannedChange, TrackedJob, plan_module
from tests.planning.builders import CTX, mod, src

SCHEDULE = {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}


def _job(*sources, name: str = "m", **settings) -> CompiledJob:
    job = compile_module(mod(name, *(sources or (src("a", module=name),)), **settings), CTX).job
    assert job is not None
    return job


def _tracked(job: CompiledJob | None = None, **overrides) -> TrackedJob:
    values = {
        "module_name": job.module_name if job else "m",
        "job_id": 7,
        "spec_hash": job.spec_hash if job else "v1:old",
        "managed_files": job.managed_file_hashes if job else {},
    }
    return TrackedJob(**{**values, **overrides})


def test_new_module_is_created_with_its_files() -> None:
    job = _job(src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 1"}))
    change = plan_module(job, None, None)
    assert change.action == "create"
    assert change.new_hash == job.spec_hash
    assert change.file_writes == job.managed_files
    assert change.compiled is job
    assert plan_module(job, _tracked(job, job_id=0), None).action == "create"


def test_unchanged_module_is_noop() -> None:
    job = _job()
    change = plan_module(job, _tracked(job), job.settings, check_drift=True)
    assert (change.action, change.drift, change.diff, change.job_id) == ("noop", False, [], 7)


def test_changed_metadata_is_an_update_with_diff_against_live() -> None:
    old, new = _job(src("a", notebook_path="/old")), _job(src("a", notebook_path="/new"))
    change = plan_module(new, _tracked(old), old.settings)
    assert change.action == "update"
    assert (change.old_hash, change.new_hash) == (old.spec_hash, new.spec_hash)
    assert [c.path for c in change.diff] == ["tasks[a].notebook_task.notebook_path"]
    assert change.drift is False


def test_changed_metadata_diffs_only_against_live_settings() -> None:
    old, new = _job(src("a", notebook_path="/old")), _job(src("a", notebook_path="/new"))
    assert plan_module(new, _tracked(old), None).diff == []  # no live job read: no diff to show
    change = plan_module(new, _tracked(old), old.settings)
    assert [c.path for c in change.diff] == ["tasks[a].notebook_task.notebook_path"]


def test_drift_is_an_update_only_when_checked() -> None:
    job = _job()
    live = copy.deepcopy(job.settings)
    live["tasks"][0]["notebook_task"]["notebook_path"] = "/edited/in/ui"
    live["email_notifications"] = {}  # a server default: not drift
    change = plan_module(job, _tracked(job), live, check_drift=True)
    assert (change.action, change.drift) == ("update", True)
    assert [c.path for c in change.diff] == ["tasks[a].notebook_task.notebook_path"]
    assert plan_module(job, _tracked(job), live, check_drift=False).action == "noop"


def test_module_back_after_a_tool_pause_is_an_update() -> None:
    job = _job(schedule=SCHEDULE)
    change = plan_module(job, _tracked(job, paused_by_tool=True), None)
    assert change.action == "update"
    assert "unpause" in change.reason


def test_inline_sql_change_only_is_noop_with_file_writes() -> None:
    old = _job(src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 1"}))
    new = _job(src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 2"}))
    change = plan_module(new, _tracked(old), old.settings, check_drift=True)
    assert change.action == "noop"
    assert change.file_writes == new.managed_files
    assert change.file_deletes == []
    assert change.reason == "inline SQL changed"


def test_files_no_longer_wanted_are_deleted_but_bookkeeping_keys_are_not() -> None:
    old = _job(src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 1"}))
    new = _job()
    tracked = _tracked(old, managed_files={**old.managed_file_hashes, "permissions:": "abc"})
    change = plan_module(new, tracked, None)
    assert change.action == "update"
    assert change.file_deletes == sorted(old.managed_files)
    assert change.file_writes == {}


@pytest.mark.parametrize(
    ("live", "paused_by_tool", "expected"),
    [
        ({"schedule": SCHEDULE}, False, "pause"),
        ({"schedule": {**SCHEDULE, "pause_status": "UNPAUSED"}}, False, "pause"),
        ({"continuous": {}}, False, "pause"),
        ({"schedule": {**SCHEDULE, "pause_status": "PAUSED"}}, False, "noop"),
        ({}, False, "noop"),
        (None, False, "pause"),
        (None, True, "noop"),
    ],
)
def test_removed_module_with_prune_pause(live, paused_by_tool: bool, expected: str) -> None:
    change = plan_module(None, _tracked(paused_by_tool=paused_by_tool), live, prune="pause")
    assert change.action == expected
    assert change.job_id == 7


def test_removed_module_with_prune_delete_and_keep() -> None:
    tracked = _tracked(managed_files={"/Workspace/x.sql": file_sha256("x"), "permissions:": "d"})
    change = plan_module(None, tracked, None, prune="delete")
    assert (change.action, change.file_deletes) == ("delete", ["/Workspace/x.sql"])
    assert plan_module(None, tracked, None, prune="keep").action == "noop"
    assert plan_module(None, _tracked(job_id=0), None, prune="delete").action == "noop"
    with pytest.raises(ValueError):
        plan_module(None, None, None)


def _plan() -> Plan:
    a, b = _job(name="alpha"), _job(name="beta", priority=1)
    changed = _job(src("a", module="gamma", notebook_path="/new"), name="gamma")
    return Plan(
        changes=[
            plan_module(a, None, None),
            plan_module(b, _tracked(b), b.settings, check_drift=True),
            plan_module(
                changed,
                _tracked(_job(src("a", module="gamma"), name="gamma")),
                _job(src("a", module="gamma"), name="gamma").settings,
            ),
            plan_module(None, _tracked(module_name="old"), {"schedule": SCHEDULE}),
            PlannedChange(module="bad", action="error", reason="m.yaml:3: oops"),
        ]
    )


def test_plan_orders_by_priority_then_name_and_counts() -> None:
    plan = _plan()
    assert [c.module for c in plan.changes] == ["beta", "alpha", "bad", "gamma", "old"]
    counts = plan.counts()
    assert {k: counts[k] for k in ("create", "update", "pause", "delete", "noop", "error")} == {
        "create": 1,
        "update": 1,
        "pause": 1,
        "delete": 0,
        "noop": 1,
        "error": 1,
    }
    assert any(c.action != "noop" for c in plan.changes)


def test_plan_json_includes_noops_and_summary() -> None:
    data = json.loads(json.dumps(_plan().as_json()))
    assert [c["action"] for c in data["changes"]] == ["noop", "create", "error", "update", "pause"]
    assert {"module", "action", "job_id", "job_name", "diff", "reason"} <= set(data["changes"][0])
    assert data["summary"]["noop"] == 1
    gamma = next(c for c in data["changes"] if c["module"] == "gamma")
    assert gamma["diff"] == [
        {"path": "tasks[a].notebook_task.notebook_path", "desired": "/new", "live": "/Workspace/nb/a"}
    ]


def test_plan_text_reads_like_terraform() -> None:
    text = _plan().render_text()
    assert '  + create alpha "alpha"' in text
    assert '  ~ update gamma "gamma" (job 7)' in text
    assert '      ~ tasks[a].notebook_task.notebook_path: "/Workspace/nb/a" -> "/new"' in text
    assert "  ! pause old (job 7)" in text
    assert "  x error bad" in text
    assert "beta" not in text  # unchanged modules are only counted
    assert text.endswith("Plan: 1 to create, 1 to update, 1 to delete/pause, 1 unchanged. 1 with errors.")
    assert (
        Plan(changes=[])
        .render_text()
        .endswith("Plan: 0 to create, 0 to update, 0 to delete/pause, 0 unchanged.")
    )

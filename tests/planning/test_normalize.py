"""normalize_for_compare + diff_settings: server defaults are never drift, real changes are."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from databricks.sdk.service.jobs import JobSettings

from lakeflow_job_meta.planning.compiler import CompiledJob, compile_module
from lakeflow_job_meta.planning.normalize import FieldChange, compare_settings, normalize_for_compare
from tests.emulator.jobs_logic import apply_server_defaults
from tests.planning.builders import CTX, example_modules, mod, src


def _compiled(module) -> CompiledJob:
    job = compile_module(module, CTX).job
    assert job is not None
    return job


def _diff(job: CompiledJob, live: dict[str, Any]) -> list[FieldChange]:
    return compare_settings(job.settings, live, explicit_pause=job.explicit_pause)


def _with_every_server_default(settings: dict[str, Any]) -> dict[str, Any]:
    """Live settings as jobs/get returns them (docs/FACTS.md), written out by hand."""
    live = copy.deepcopy(settings)
    live.setdefault("email_notifications", {})
    live.setdefault("webhook_notifications", {})
    live.setdefault("timeout_seconds", 0)
    live.setdefault("max_concurrent_runs", 1)
    live["format"] = "MULTI_TASK"
    live.setdefault("run_as", {"user_name": "creator@example.com"})
    for block in ("schedule", "trigger", "continuous"):
        if block in live:
            live[block].setdefault("pause_status", "UNPAUSED")
    for cluster in live.get("job_clusters", []):
        cluster["new_cluster"].update(
            aws_attributes={"availability": "SPOT_WITH_FALLBACK", "zone_id": "auto"},
            data_security_mode="SINGLE_USER",
            enable_elastic_disk=False,
        )
    for task in reversed(live.get("tasks", [])):
        task.setdefault("email_notifications", {})
        task.setdefault("webhook_notifications", {})
        task.setdefault("run_if", "ALL_SUCCESS")
        task.setdefault("timeout_seconds", 0)
        if "notebook_task" in task:
            task["notebook_task"].setdefault("source", "WORKSPACE")
        if "depends_on" in task:
            task["depends_on"] = list(reversed(task["depends_on"]))
    live["tasks"] = list(reversed(live.get("tasks", [])))
    return live


@pytest.mark.parametrize("module", example_modules(), ids=lambda m: m.name)
def test_every_server_default_is_no_drift(module) -> None:
    job = _compiled(module)
    live = _with_every_server_default(job.settings)
    live = JobSettings.from_dict(live).as_dict()  # as the SDK hands it over
    assert _diff(job, live) == []


@pytest.mark.parametrize("module", example_modules(), ids=lambda m: m.name)
def test_the_emulators_server_defaults_are_no_drift(module) -> None:
    job = _compiled(module)
    assert _diff(job, apply_server_defaults(job.settings)) == []


def test_round_trip_through_the_emulator_is_no_drift(workspace_client) -> None:
    """create with the SDK, get it back, compare: nothing may differ."""
    for module in example_modules():
        job = _compiled(module)
        settings = JobSettings.from_dict(job.settings)
        kwargs = {
            f.name: getattr(settings, f.name)
            for f in dataclasses.fields(settings)
            if getattr(settings, f.name) is not None
        }
        job_id = workspace_client.jobs.create(**kwargs).job_id
        live = workspace_client.jobs.get(job_id).settings.as_dict()
        assert _diff(job, live) == [], module.name


def test_real_changes_give_readable_paths() -> None:
    job = _compiled(mod("m", src("load_orders", 1), src("b", 2)))
    live = _with_every_server_default(job.settings)
    live_tasks = {t["task_key"]: t for t in live["tasks"]}
    live_tasks["load_orders"]["notebook_task"]["notebook_path"] = "/Workspace/changed"
    live_tasks["b"]["run_if"] = "ALL_DONE"
    live["tags"]["extra"] = "x"
    live["max_concurrent_runs"] = 3
    live["tasks"].append({"task_key": "manual", "notebook_task": {"notebook_path": "/x"}})
    changes = {c.path: c for c in _diff(job, live)}
    assert set(changes) == {
        "tasks[load_orders].notebook_task.notebook_path",
        "tasks[b].run_if",
        "tags.extra",
        "max_concurrent_runs",
        "tasks[manual]",
    }
    path_change = changes["tasks[load_orders].notebook_task.notebook_path"]
    assert (path_change.desired, path_change.live) == ("/Workspace/nb/load_orders", "/Workspace/changed")
    assert (
        str(path_change)
        == '~ tasks[load_orders].notebook_task.notebook_path: "/Workspace/changed" -> "/Workspace/nb/load_orders"'
    )
    assert changes["tags.extra"].desired is None
    assert str(changes["tags.extra"]).startswith("- tags.extra")
    assert changes["tasks[manual]"].desired is None


def test_dependency_changes_are_one_line_of_task_keys() -> None:
    """Upstream tasks compare as sets of task keys (the service returns them sorted) and read as
    one line, old list -> new list, instead of an added and a removed entry."""
    job = _compiled(mod("m", src("a", 1), src("b", 1), src("c", 2)))
    live = copy.deepcopy(job.settings)
    c = next(t for t in live["tasks"] if t["task_key"] == "c")
    c["depends_on"] = [{"task_key": "a"}]
    (change,) = _diff(job, live)
    assert str(change) == '~ tasks[c].depends_on: ["a"] -> ["a", "b"]'
    c["depends_on"] = [{"task_key": "b"}, {"task_key": "a"}]
    assert _diff(job, live) == []
    c["depends_on"] = [{"task_key": "a", "outcome": "true"}]
    assert [ch.path for ch in _diff(job, live)] == [
        "tasks[c].depends_on[a].outcome",
        "tasks[c].depends_on[b]",
    ]


def test_run_as_compares_only_when_desired_sets_it() -> None:
    plain = _compiled(mod("m", src("a")))
    assert _diff(plain, {**plain.settings, "run_as": {"user_name": "someone"}}) == []
    with_run_as = _compiled(mod("m", src("a"), run_as={"user_name": "me"}))
    changes = _diff(with_run_as, {**with_run_as.settings, "run_as": {"user_name": "someone"}})
    assert [c.path for c in changes] == ["run_as.user_name"]


def test_pause_status_compares_only_when_explicit() -> None:
    schedule = {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}
    implicit = _compiled(mod("m", src("a"), schedule=schedule))
    live = {**implicit.settings, "schedule": {**schedule, "pause_status": "PAUSED"}}
    assert _diff(implicit, live) == []
    explicit = _compiled(mod("m", src("a"), schedule={**schedule, "pause_status": "UNPAUSED"}))
    live = {**explicit.settings, "schedule": {**schedule, "pause_status": "PAUSED"}}
    assert [c.path for c in _diff(explicit, live)] == ["schedule.pause_status"]


def test_user_set_cluster_values_still_compare() -> None:
    desired = {
        "name": "j",
        "job_clusters": [
            {
                "job_cluster_key": "k",
                "new_cluster": {"num_workers": 2, "data_security_mode": "USER_ISOLATION"},
            }
        ],
    }
    live = copy.deepcopy(desired)
    live["job_clusters"][0]["new_cluster"]["data_security_mode"] = "SINGLE_USER"
    changes = compare_settings(desired, live, explicit_pause=False)
    assert [c.path for c in changes] == ["job_clusters[k].new_cluster.data_security_mode"]


def test_continuous_block_survives_normalisation() -> None:
    desired = normalize_for_compare({"name": "j", "continuous": {}}, explicit_pause=False)
    assert desired == {"name": "j", "continuous": {}, "queue": {"enabled": True}}
    changes = compare_settings({"name": "j", "continuous": {}}, {"name": "j"}, explicit_pause=False)
    assert [c.path for c in changes] == ["continuous"]


def test_a_live_only_default_dbt_schema_is_not_drift_but_a_set_one_is_compared():
    """SDK ``DbtTask.schema``: unset means the ``default`` schema (docs/API_FACTS.md)."""
    task = {"task_key": "t", "dbt_task": {"commands": ["dbt run"], "warehouse_id": "w"}}
    desired = {"name": "j", "tasks": [task]}
    live_task = {**task, "dbt_task": {**task["dbt_task"], "schema": "default"}}
    assert compare_settings(desired, {"name": "j", "tasks": [live_task]}, explicit_pause=False) == []
    other = {**task, "dbt_task": {**task["dbt_task"], "schema": "sales"}}
    assert compare_settings(desired, {"name": "j", "tasks": [other]}, explicit_pause=False)
    wanted = {"name": "j", "tasks": [{**task, "dbt_task": {**task["dbt_task"], "schema": "sales"}}]}
    assert compare_settings(wanted, {"name": "j", "tasks": [live_task]}, explicit_pause=False)

"""Issue 3 acceptance: the reconciler against the Jobs API emulator through the real SDK.

Real delta-rs tables in ``tmp_path``, a real ``databricks.sdk.WorkspaceClient`` over HTTP, no
sleeps used for synchronisation. "Writes" are what the emulator committed (jobs/create, reset,
update, delete); workspace-file and permission writes are counted from its request log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from databricks.sdk.service.jobs import JobSettings

from lakeflow_job_meta.planning.ownership import MODULE_TAG, TOOL_TAG
from tests.emulator import Fault
from tests.example_files import EXAMPLE_MODULES, EXAMPLES, REPO
from tests.fakes import FakeClock, TickingClock
from tests.helpers.workspace_world import ATTEMPTS, World, converge


# ---------------------------------------------------------------------------------------
# 1. the examples: one job per module, then zero writes
# ---------------------------------------------------------------------------------------
def test_examples_create_one_job_per_module_then_zero_writes(world: World):
    result = converge(world)
    assert {r.module: r.action for r in result} == dict.fromkeys(EXAMPLE_MODULES, "create")
    assert world.emu.write_counts() == Counter({"jobs/create": 5})
    jobs = world.emu.jobs()
    assert len(jobs) == 5
    assert sorted(job["settings"]["name"] for job in jobs.values()) == sorted(EXAMPLE_MODULES)
    ours = world.ours()
    assert sorted(ours) == sorted(EXAMPLE_MODULES) and all(len(ids) == 1 for ids in ours.values())
    for module, (job_id,) in ours.items():
        assert world.settings(job_id)["tags"][MODULE_TAG] == module
        assert world.tracked()[module]["job_id"] == job_id
        assert result[module].job_id == job_id
    # the retired module (is_active: false) gets no job
    assert "legacy_exports" not in world.tracked()
    # the service filled its defaults in (so "zero writes" below really ignores them)
    sample = world.settings(ours["warehouse_refresh"][0])
    assert sample["email_notifications"] == {} and sample["tasks"][0]["run_if"] == "ALL_SUCCESS"

    world.emu.reset_counters()
    second = world.orchestrator().run_all_modules()
    assert second.ok
    assert {r.action for r in second} == {"noop"}
    assert world.emu.writes() == 0
    assert world.other_writes() == Counter()
    assert second.job_writes == 0 and second.other_writes == 0
    assert not any(r.drift for r in second)

    plan = world.orchestrator().plan()
    assert {c.module: c.action for c in plan.changes} == dict.fromkeys(EXAMPLE_MODULES, "noop")
    assert not any(c.has_file_changes for c in plan.changes)
    assert world.emu.writes() == 0


# ---------------------------------------------------------------------------------------
# 2. one changed source = one write; a new module = one create; SQL text = one file write
# ---------------------------------------------------------------------------------------
NEW_MODULE_YAML = """
  - module_name: fresh_module
    description: Added later.
    sources:
      - source_id: fresh_notebook
        source_type: notebook
        execution_order: 1
        transformation_config:
          task_type: notebook
          notebook_path: /Workspace/Shared/fresh/notebook
"""


def test_one_changed_source_is_one_reset_for_that_module(world: World):
    converge(world)
    job_id = world.tracked()["clickstream_continuous"]["job_id"]
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.reset_counters()

    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert {r.module: r.action for r in result if r.action != "noop"} == {"clickstream_continuous": "update"}
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert [r.body["job_id"] for r in world.emu.requests if r.endpoint == "jobs/reset"] == [job_id]
    assert world.other_writes() == Counter()
    assert result["clickstream_continuous"].job_writes == 1 and result.job_writes == 1
    (task,) = world.settings(job_id)["tasks"]
    assert task["notebook_task"]["base_parameters"]["load_mode"] == "batch"
    assert any("load_mode" in line for line in result["clickstream_continuous"].diff)

    world.emu.reset_counters()
    assert {r.action for r in world.orchestrator().run_all_modules()} == {"noop"}
    assert world.emu.writes() == 0


def test_inserting_a_module_creates_exactly_one_job(world: World):
    converge(world)
    world.yaml.write_text(world.yaml.read_text() + NEW_MODULE_YAML)
    world.sync()
    world.emu.reset_counters()

    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert {r.module: r.action for r in result if r.action != "noop"} == {"fresh_module": "create"}
    assert world.emu.write_counts() == Counter({"jobs/create": 1})
    assert world.ours()["fresh_module"] == [result["fresh_module"].job_id]
    assert len(world.emu.jobs()) == 6


def test_changing_only_inline_sql_writes_one_file_and_no_job(world: World):
    converge(world)
    job_id = world.tracked()["sales_daily"]["job_id"]
    before = world.settings(job_id)
    (path,) = [p for p in world.emu.workspace_objects() if p.endswith("/customers_ingest.sql")]
    world.edit_yaml(
        "SELECT * FROM ${var.catalog}.landing.customers",
        "SELECT * FROM ${var.catalog}.landing.customers WHERE id IS NOT NULL",
    )
    plan = world.orchestrator().plan()
    (change,) = [c for c in plan.changes if c.has_file_changes or c.action != "noop"]
    assert (change.module, change.action, sorted(change.file_writes)) == ("sales_daily", "noop", [path])
    world.emu.reset_counters()

    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert world.emu.writes() == 0
    assert world.file_writes() == 1
    assert result["sales_daily"].other_writes == 1 and result.other_writes == 1
    assert b"WHERE id IS NOT NULL" in world.emu.workspace_objects()[path]["content"]
    assert world.settings(job_id) == before

    world.emu.reset_counters()
    world.orchestrator().run_all_modules()
    assert world.emu.writes() == 0 and world.other_writes() == Counter()


# ---------------------------------------------------------------------------------------
# 3. chaos: a quarter of the requests fail, replies are lost after commit
# ---------------------------------------------------------------------------------------
CHAOS_KINDS = ["429", "500_transient", "503", "drop_before", "drop_after_commit"]


def run_until_converged(world: World, max_runs: int = 5) -> list:
    results = []
    for _ in range(max_runs):
        result = world.orchestrator().run_all_modules()  # one module's failure never raises
        results.append(result)
        if result.ok and {r.module for r in result} >= EXAMPLE_MODULES:
            return results
    raise AssertionError(f"not converged after {max_runs} runs: {results!r}")


@pytest.mark.parametrize("seed", [1, 7])
def test_chaos_converges_to_exactly_one_job_per_module(tmp_path, jobs_emulator, make_workspace_client, seed):
    world = World(tmp_path, jobs_emulator, make_workspace_client)
    # Beside the random quarter, two creates surely land twice (their replies are lost).
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit", times=2))
    jobs_emulator.faults.random(
        rate=0.25, kinds=CHAOS_KINDS, seed=seed, endpoints=["jobs/*", "workspace/*", "permissions/*"]
    )
    runs = run_until_converged(world)
    fired = Counter(f.kind for f in jobs_emulator.faults.fired)
    jobs_emulator.faults.clear()
    assert fired["drop_after_commit"] >= 2 and sum(fired.values()) >= 5, fired

    ours = world.ours()
    assert sorted(ours) == sorted(EXAMPLE_MODULES)
    assert {m: len(ids) for m, ids in ours.items()} == dict.fromkeys(EXAMPLE_MODULES, 1), ours
    assert len(jobs_emulator.jobs()) == 5
    assert {m: row["job_id"] for m, row in world.tracked().items()} == {m: ids[0] for m, ids in ours.items()}

    jobs_emulator.reset_counters()
    final = world.orchestrator().run_all_modules()
    assert final.ok and {r.action for r in final} == {"noop"}, [r.as_dict() for r in final]
    assert jobs_emulator.writes() == 0 and world.other_writes() == Counter()
    assert len(runs) <= 5


def test_a_failed_list_after_a_doubled_create_is_settled_by_the_next_run(world: World):
    """The create lands twice (lost reply) and the list that would find the copy fails: the row
    stays 'creating', and the next run removes the copy before anything else."""
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit", times=1))
    world.emu.faults.add(Fault(endpoint="jobs/list", kind="500", after=1, times=ATTEMPTS))
    first = world.orchestrator().create_or_update_job("warehouse_refresh")
    assert first.outcome == "error" and "jobs/list" in (first.error or "")
    assert len(world.ours()["warehouse_refresh"]) == 2
    assert world.tracked()["warehouse_refresh"]["status"] == "creating"
    # a failure while settling keeps the row pending
    world.emu.faults.add(Fault(endpoint="jobs/list", kind="500", times=ATTEMPTS))
    assert world.orchestrator().create_or_update_job("warehouse_refresh").outcome == "error"
    assert world.tracked()["warehouse_refresh"]["status"] == "creating"

    second = world.orchestrator().create_or_update_job("warehouse_refresh")
    assert second.outcome == "ok"
    recorded = world.tracked()["warehouse_refresh"]
    assert world.ours()["warehouse_refresh"] == [recorded["job_id"]] and recorded["status"] == "ok"
    assert world.emu.write_counts()["jobs/delete"] == 1


def test_a_failed_read_of_one_job_is_that_modules_error_not_the_runs(world: World):
    converge(world)
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    # a 500 the SDK does not retry, on every attempt of ours
    world.emu.faults.add(Fault(endpoint="jobs/get", kind="500", times=ATTEMPTS))
    world.emu.reset_counters()
    result = world.orchestrator(max_workers=1).run_all_modules()
    (failed,) = [r for r in result if not r.ok]
    assert failed.action == "error" and "jobs/get" in (failed.error or "")
    assert {r.module for r in result} == EXAMPLE_MODULES
    done = world.emu.writes()
    assert done == (0 if failed.module == "clickstream_continuous" else 1)
    world.emu.faults.clear()
    result = world.orchestrator().run_all_modules()
    assert result.ok and world.emu.writes() == 1  # the one reset, made by one of the two runs


# ---------------------------------------------------------------------------------------
# 4. a process killed between jobs/create and recording the job id
# ---------------------------------------------------------------------------------------
CRASHING_APPLY = """
import os, signal, sys
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from lakeflow_job_meta import JobOrchestrator
from lakeflow_job_meta.engine.targets import workspace_apply as workspace_target

def die(*args, **kwargs):  # the kill lands after jobs/create returned, before the id is recorded
    os.kill(os.getpid(), signal.SIGKILL)

workspace_target.TrackingWriter.record = die
control, host = sys.argv[1], sys.argv[2]
client = WorkspaceClient(config=Config(host=host, token="t", retry_timeout_seconds=10))
JobOrchestrator(control, client, target="workspace", max_workers=1).run_all_modules()
print("not killed")
"""


def after_the_lease(world: World) -> FakeClock:
    """A clock for the restarted process: just after the dead holder's writer lease expired."""
    (lease,) = [r for r in world.manager.tables.state.read_all() if r["key"] == "lease"]
    return FakeClock(start=json.loads(lease["value"])["expires_at"] + 1)


@pytest.mark.slow
def test_killed_between_create_and_recording_then_restarted_adopts(world: World):
    script = world.tmp / "crashing_apply.py"
    script.write_text(CRASHING_APPLY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, str(script), world.control, world.emu.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "not killed" not in proc.stdout
    assert world.emu.writes("jobs/create") == 1  # one worker: the first create, then the kill
    (orphan_id,) = world.emu.jobs()
    assert world.tracked() == {}

    world.emu.reset_counters()
    later = after_the_lease(world)
    result = world.orchestrator(clock=later).run_all_modules()
    assert result.ok, [r.as_dict() for r in result if not r.ok]
    (adopted,) = [r for r in result if r.action == "adopt"]
    assert adopted.job_id == orphan_id
    assert world.emu.write_counts() == Counter({"jobs/create": 4})  # the adopted job needs no reset
    ours = world.ours()
    assert {m: len(ids) for m, ids in ours.items()} == dict.fromkeys(EXAMPLE_MODULES, 1)
    assert world.tracked()[adopted.module]["job_id"] == orphan_id
    assert {m: row["status"] for m, row in world.tracked().items()} == dict.fromkeys(
        EXAMPLE_MODULES, "created"
    )

    world.emu.reset_counters()
    again = world.orchestrator(clock=later).run_all_modules()  # same clock: no lease wait
    assert {r.action for r in again} == {"noop"} and world.emu.writes() == 0
    assert {m: row["status"] for m, row in world.tracked().items()} == dict.fromkeys(EXAMPLE_MODULES, "ok")


def test_an_untracked_job_of_ours_with_stale_settings_is_adopted_with_one_reset(world: World):
    converge(world)
    row = world.tracked()["clickstream_continuous"]
    job_id = row["job_id"]
    world.manager.tables.jobs.merge([], [{"target": row["target"], "module_name": "clickstream_continuous"}])

    def stale(settings):
        settings["tasks"][0]["notebook_task"]["notebook_path"] = "/Workspace/old/path"

    world.emu.edit_job(job_id, stale)
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert result["clickstream_continuous"].action == "adopt"
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.settings(job_id)["tasks"][0]["notebook_task"]["notebook_path"].endswith(
        "/notebook_task/sample_ingestion_notebook"
    )
    assert world.tracked()["clickstream_continuous"]["job_id"] == job_id


# ---------------------------------------------------------------------------------------
# 5. drift, operator pauses, foreign jobs, stripped tags
# ---------------------------------------------------------------------------------------
def test_an_edit_outside_the_tool_is_detected_and_restored_with_one_reset(world: World):
    converge(world)
    job_id = world.tracked()["clickstream_continuous"]["job_id"]
    before = world.settings(job_id)

    def edit(settings):
        settings["tasks"][0]["notebook_task"]["notebook_path"] = "/Workspace/Users/someone/hack"

    world.emu.edit_job(job_id, edit)
    plan = world.orchestrator().plan()
    (change,) = [c for c in plan.changes if c.action != "noop"]
    assert (change.module, change.action, change.drift) == ("clickstream_continuous", "update", True)
    assert [d.path for d in change.diff] == ["tasks[clickstream_stream].notebook_task.notebook_path"]
    assert "[drift]" in plan.render_text()

    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    restored = result["clickstream_continuous"]
    assert restored.drift and restored.action == "update" and restored.ok
    assert any("notebook_task.notebook_path" in line and "hack" in line for line in restored.diff)
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.settings(job_id) == before
    assert not any(r.drift for r in result if r.module != "clickstream_continuous")

    world.emu.reset_counters()
    assert {r.action for r in world.orchestrator().run_all_modules()} == {"noop"}
    assert world.emu.writes() == 0


def test_ui_edit_of_a_user_set_cluster_value_is_drift_but_backend_filled_values_are_not(world: World):
    """docs/API_FACTS.md, Drift: the metadata sets ``node_type_id``; the backend fills the rest."""
    converge(world)
    job_id = world.tracked()["ml_features"]["job_id"]
    cluster = world.settings(job_id)["job_clusters"][0]["new_cluster"]
    assert cluster["driver_node_type_id"] == "i3.xlarge" and cluster["data_security_mode"] == "SINGLE_USER"

    def backend_changes(settings):
        filled = settings["job_clusters"][0]["new_cluster"]
        filled["aws_attributes"]["zone_id"] = "us-west-2a"
        filled["driver_node_type_id"] = "m5.large"
        filled["custom_tags"] = {"from_policy": "1"}
        settings["queue"] = {"enabled": True}

    world.emu.edit_job(job_id, backend_changes)
    world.emu.reset_counters()
    quiet = world.orchestrator().run_all_modules()
    assert quiet["ml_features"].action == "noop" and not quiet["ml_features"].drift
    assert world.emu.writes() == 0

    world.emu.edit_job(job_id, lambda s: s["job_clusters"][0]["new_cluster"].update(node_type_id="r5.large"))
    result = world.orchestrator().run_all_modules()
    assert result["ml_features"].action == "update" and result["ml_features"].drift
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.settings(job_id)["job_clusters"][0]["new_cluster"]["node_type_id"] == "i3.xlarge"


def test_without_check_drift_an_edit_is_not_looked_at(world: World):
    converge(world)
    job_id = world.tracked()["clickstream_continuous"]["job_id"]
    world.emu.edit_job(job_id, {"description": "edited in the UI"})
    world.emu.reset_counters()
    result = world.orchestrator(check_drift=False).run_all_modules()
    assert {r.action for r in result} == {"noop"}
    assert world.emu.writes() == 0 and world.emu.count("jobs/get") == 0
    assert world.orchestrator().run_all_modules()["clickstream_continuous"].drift


def test_an_operators_pause_is_kept_and_is_not_drift(world: World):
    converge(world)
    umbrella = world.tracked()["nightly_umbrella"]["job_id"]  # trigger without pause_status
    sales = world.tracked()["sales_daily"]["job_id"]  # schedule with pause_status: UNPAUSED
    assert "pause_status" not in world.settings(umbrella)["trigger"]

    def pause(settings, block):
        settings[block]["pause_status"] = "PAUSED"

    world.emu.edit_job(umbrella, lambda s: pause(s, "trigger"))
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result["nightly_umbrella"].action == "noop" and not result["nightly_umbrella"].drift
    assert world.emu.writes() == 0

    # an update of the module keeps the operator's pause
    world.edit_yaml(
        "description: Runs sales_daily's job on a fixed period, then checks freshness.",
        "description: Runs sales_daily's job every four hours.",
    )
    result = world.orchestrator().run_all_modules()
    assert result["nightly_umbrella"].action == "update" and not result["nightly_umbrella"].drift
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    live = world.settings(umbrella)
    assert live["trigger"]["pause_status"] == "PAUSED"
    assert live["description"] == "Runs sales_daily's job every four hours."

    # where the metadata sets a pause status, it wins: pausing that job is drift, restored
    world.emu.edit_job(sales, lambda s: pause(s, "schedule"))
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result["sales_daily"].drift and result["sales_daily"].action == "update"
    assert world.settings(sales)["schedule"]["pause_status"] == "UNPAUSED"
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})


def test_a_foreign_job_with_the_same_name_is_never_touched(world: World):
    converge(world)
    foreign_settings = {
        "name": "fresh_module",
        "tasks": [{"task_key": "theirs", "notebook_task": {"notebook_path": "/Users/them/nb"}}],
        "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
    }
    foreign = world.emu.add_job(foreign_settings)
    foreign_before = world.emu.job(foreign)
    world.yaml.write_text(world.yaml.read_text() + NEW_MODULE_YAML)
    world.sync()
    world.emu.reset_counters()

    # issue 9: no second job of that name (a name conflict, naming the job), the others apply
    result = world.orchestrator().run_all_modules()
    assert result["fresh_module"].outcome == "error" and not result.ok
    assert f"job {foreign} (no owner)" in (result["fresh_module"].error or "")
    assert all(r.ok for r in result if r.module != "fresh_module")
    assert world.emu.write_counts() == Counter()
    assert world.emu.job_ids("fresh_module") == [foreign]

    # removing the module touches nothing, even with prune=delete
    world.yaml.write_text(world.yaml.read_text().replace(NEW_MODULE_YAML, ""))
    world.sync()
    result = world.orchestrator(prune="delete").run_all_modules()
    assert "fresh_module" not in {r.module for r in result} and result.ok
    assert world.emu.job_ids("fresh_module") == [foreign]
    assert world.emu.job(foreign) == foreign_before
    touched = {r.body.get("job_id") for r in world.emu.requests if r.endpoint.startswith("jobs/") and r.body}
    assert foreign not in touched


def test_a_tracked_job_whose_tags_were_stripped_is_never_modified(world: World):
    converge(world)
    job_id = world.tracked()["warehouse_refresh"]["job_id"]
    world.emu.edit_job(job_id, {"tags": None})
    stripped = world.emu.job(job_id)
    world.edit_yaml("full_refresh: false", "full_refresh: true")
    world.emu.reset_counters()

    result = world.orchestrator().run_all_modules()
    failed = result["warehouse_refresh"]
    assert failed.outcome == "error" and "NotOwned" in (failed.error or ""), failed.error
    assert str(job_id) in failed.error
    assert all(r.ok for r in result if r.module != "warehouse_refresh")
    assert world.emu.writes() == 0 and world.emu.job(job_id) == stripped

    # nor paused or deleted when its module goes
    for prune in ("pause", "delete"):
        world.manager.tables.control.merge([], [{"source_id": "silver_pipeline"}, {"source_id": "dbt_marts"}])
        result = world.orchestrator(prune=prune).run_all_modules()
        assert result["warehouse_refresh"].action == prune
        assert result["warehouse_refresh"].outcome == "error"
        assert "NotOwned" in (result["warehouse_refresh"].error or "")
        assert world.emu.writes() == 0 and world.emu.job(job_id) == stripped


# ---------------------------------------------------------------------------------------
# 6. pruning, and invalid metadata is never pruned
# ---------------------------------------------------------------------------------------
UMBRELLA_START = "  # 4. An umbrella job"
UMBRELLA_END = "  # 5. An always-on streaming job."


def remove_umbrella(world: World) -> None:
    text = world.yaml.read_text()
    start, end = text.index(UMBRELLA_START), text.index(UMBRELLA_END)
    world.yaml.write_text(text[:start] + text[end:])
    world.sync()


def test_prune_keep_pause_unpause_and_delete(world: World):
    converge(world)
    job_id = world.tracked()["nightly_umbrella"]["job_id"]
    before = world.settings(job_id)
    assert "pause_status" not in before["trigger"]
    remove_umbrella(world)

    world.emu.reset_counters()
    kept = world.orchestrator(prune="keep").run_all_modules()
    assert kept.ok and kept["nightly_umbrella"].action == "noop"
    assert world.emu.writes() == 0 and world.settings(job_id) == before

    paused = world.orchestrator(prune="pause").run_all_modules()
    assert paused.ok and paused["nightly_umbrella"].action == "pause"
    assert world.emu.write_counts() == Counter({"jobs/update": 1})
    assert world.settings(job_id)["trigger"]["pause_status"] == "PAUSED"
    assert world.settings(job_id)["tasks"] == before["tasks"]  # the job and its tasks stay
    assert world.tracked()["nightly_umbrella"]["paused_by_tool"] is True
    world.emu.reset_counters()
    again = world.orchestrator(prune="pause").run_all_modules()
    assert {r.action for r in again} == {"noop"} and world.emu.writes() == 0

    # the module comes back: the tool's own pause is undone, with one reset
    world.yaml.write_text(EXAMPLES.read_text())
    world.sync()
    back = world.orchestrator().run_all_modules()
    assert back.ok and back["nightly_umbrella"].action == "update"
    assert back["nightly_umbrella"].job_id == job_id
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.settings(job_id)["trigger"].get("pause_status", "UNPAUSED") == "UNPAUSED"
    assert world.tracked()["nightly_umbrella"]["paused_by_tool"] is False
    world.emu.reset_counters()
    assert {r.action for r in world.orchestrator().run_all_modules()} == {"noop"}
    assert world.emu.writes() == 0

    remove_umbrella(world)
    deleted = world.orchestrator(prune="delete").run_all_modules()
    assert deleted.ok and deleted["nightly_umbrella"].action == "delete"
    assert world.emu.write_counts() == Counter({"jobs/delete": 1})
    assert world.emu.job(job_id) is None and "nightly_umbrella" not in world.tracked()
    world.emu.reset_counters()
    result = world.orchestrator(prune="delete").run_all_modules()
    assert "nightly_umbrella" not in {r.module for r in result} and world.emu.writes() == 0


def test_an_operators_pause_is_not_undone_when_the_module_returns(world: World):
    converge(world)
    job_id = world.tracked()["nightly_umbrella"]["job_id"]
    world.emu.edit_job(job_id, lambda s: s["trigger"].update(pause_status="PAUSED"))
    remove_umbrella(world)
    world.emu.reset_counters()
    result = world.orchestrator(prune="pause").run_all_modules()
    assert result["nightly_umbrella"].action == "noop" and world.emu.writes() == 0
    world.yaml.write_text(EXAMPLES.read_text())
    world.sync()
    result = world.orchestrator().run_all_modules()
    assert result["nightly_umbrella"].action == "noop" and world.emu.writes() == 0
    assert world.settings(job_id)["trigger"]["pause_status"] == "PAUSED"


def test_a_module_with_invalid_metadata_is_an_error_and_its_job_is_not_pruned(world: World):
    converge(world)
    job_id = world.tracked()["warehouse_refresh"]["job_id"]
    before = world.settings(job_id)
    # an INSERT by SQL with broken JSON, next to a valid change of another module
    world.manager.tables.control.merge(
        [
            {
                "source_id": "broken_row",
                "module_name": "warehouse_refresh",
                "source_type": "sql",
                "execution_order": 3,
                "source_config": "{}",
                "target_config": "{}",
                "transformation_config": '{"task_type": "notebook", "notebook_path": ',
                "is_active": True,
            }
        ],
        [],
    )
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.reset_counters()
    for prune in ("delete", "pause"):
        result = world.orchestrator(prune=prune).run_all_modules()
        bad = result["warehouse_refresh"]
        assert (bad.action, bad.outcome) == ("error", "error")
        assert "broken_row" in (bad.error or "") and "transformation_config" in bad.error
        assert world.settings(job_id) == before
        assert {r.module for r in result if not r.ok} == {"warehouse_refresh"}
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})  # clickstream, first run
    assert world.tracked()["warehouse_refresh"]["job_id"] == job_id
    plan = world.orchestrator().plan()
    assert [c.module for c in plan.changes if c.action == "error"] == ["warehouse_refresh"]


# ---------------------------------------------------------------------------------------
# 7. run_job references and auto_run
# ---------------------------------------------------------------------------------------
def run_job_ids(settings: dict[str, Any]) -> list[int]:
    return [t["run_job_task"]["job_id"] for t in settings["tasks"] if "run_job_task" in t]


def test_run_job_names_another_modules_job_and_follows_its_recreation(world: World):
    umbrella = world.orchestrator().create_or_update_job("nightly_umbrella")
    assert umbrella.ok and umbrella.action == "create"
    sales = world.tracked()["sales_daily"]["job_id"]  # created first, in an earlier wave
    assert set(world.tracked()) == {"sales_daily", "nightly_umbrella"}
    assert run_job_ids(world.settings(umbrella.job_id)) == [sales]

    converge(world)
    world.emu.remove_job(sales)  # deleted in the UI
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok
    new_sales = world.tracked()["sales_daily"]["job_id"]
    assert new_sales != sales and result["sales_daily"].action == "create"
    assert result["nightly_umbrella"].action == "update"
    assert run_job_ids(world.settings(umbrella.job_id)) == [new_sales]
    assert world.emu.write_counts() == Counter({"jobs/create": 1, "jobs/reset": 1})


def test_auto_run_starts_only_created_or_changed_jobs_without_an_active_run(world: World):
    first = world.orchestrator().run_all_modules(auto_run=True)
    assert first.ok
    runs = world.emu.runs()
    assert sorted(r["job_id"] for r in runs) == sorted(r.job_id for r in first)
    assert all(r.run_id for r in first)

    world.emu.reset_counters()
    second = world.orchestrator().run_all_modules(auto_run=True)
    assert {r.action for r in second} == {"noop"} and len(world.emu.runs()) == 5
    assert world.emu.count("jobs/run-now") == 0

    for run in world.emu.runs():
        world.emu.finish_run(run["run_id"])
    busy = world.tracked()["warehouse_refresh"]["job_id"]
    world.emu.add_run(busy, active=True)
    world.edit_yaml("full_refresh: false", "full_refresh: true")
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    third = world.orchestrator().run_all_modules(auto_run=True)
    assert {r.module for r in third if r.action == "update"} == {
        "warehouse_refresh",
        "clickstream_continuous",
    }
    assert world.emu.count("jobs/run-now") == 1
    assert third["clickstream_continuous"].run_id and third["warehouse_refresh"].run_id is None
    new_runs = world.emu.runs()[6:]
    assert [r["job_id"] for r in new_runs] == [world.tracked()["clickstream_continuous"]["job_id"]]


# ---------------------------------------------------------------------------------------
# 8. history
# ---------------------------------------------------------------------------------------
def test_history_records_every_action_with_run_id_hashes_outcome_and_duration(world: World):
    clock = TickingClock()
    started = clock.now()
    first = converge(world, clock=clock)
    history = world.manager.tables.history
    rows = history.read_all()
    assert sorted(r["module_name"] for r in rows) == sorted(EXAMPLE_MODULES)
    tracked = world.tracked()
    for row in rows:
        module = row["module_name"]
        assert row["run_id"] == first.run_id and row["target"] == first.target
        assert (row["action"], row["outcome"], row["error"]) == ("create", "ok", None)
        assert row["job_id"] == tracked[module]["job_id"]
        assert row["old_hash"] is None and row["new_hash"] == tracked[module]["spec_hash"]
        assert row["new_hash"].startswith("v1:")
        assert row["duration_ms"] > 0 and row["writes"] >= 1
        assert started <= row["started_at"].timestamp() <= clock.now()

    world.orchestrator().run_all_modules()  # all noop: nothing to record
    assert len(history.read_all()) == 5

    old_hash = tracked["clickstream_continuous"]["spec_hash"]
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    job_id = tracked["warehouse_refresh"]["job_id"]
    world.emu.edit_job(job_id, {"tags": None})
    world.emu.edit_job(job_id, {"description": "changed in the UI"})
    third = world.orchestrator().run_all_modules()
    new_rows = {r["module_name"]: r for r in history.read_all() if r["run_id"] == third.run_id}
    assert set(new_rows) == {"clickstream_continuous", "warehouse_refresh"}
    update = new_rows["clickstream_continuous"]
    assert (update["action"], update["outcome"], update["writes"]) == ("update", "ok", 1)
    assert (
        update["old_hash"] == old_hash
        and update["new_hash"] == world.tracked()["clickstream_continuous"]["spec_hash"]
    )
    assert update["new_hash"] != old_hash
    failed = new_rows["warehouse_refresh"]
    assert (failed["action"], failed["outcome"], failed["writes"]) == ("update", "error", 0)
    assert "NotOwned" in failed["error"] and failed["job_id"] == job_id


# ---------------------------------------------------------------------------------------
# 8b. tracking rows per environment
# ---------------------------------------------------------------------------------------
def test_production_environments_share_the_tracking_rows_of_no_environment(world: World):
    """`--env prod` deploys the same job names as no `--env`: one set of tracking rows, so a
    prune under one never deletes a job the other still tracks."""
    plain = world.orchestrator()
    assert plain.run_all_modules().ok
    created = world.emu.writes("jobs/create")
    # The table holds one environment's values: it is loaded again for each (issue 15).
    world.manager.sync_from_volume(str(world.volume), env="prod")
    prod = world.orchestrator(env="prod")
    assert prod.target_key == plain.target_key
    assert prod.run_all_modules().ok
    assert world.emu.writes("jobs/create") == created  # nothing re-created or re-adopted
    world.manager.sync_from_volume(str(world.volume), env="dev")
    dev = world.orchestrator(env="dev")
    assert dev.target_key == plain.target_key + "#env=dev"


# ---------------------------------------------------------------------------------------
# 9. we send nothing the SDK would drop
# ---------------------------------------------------------------------------------------
def test_every_settings_body_sent_survives_the_sdk_round_trip(world: World):
    converge(world)
    world.edit_yaml("full_refresh: false", "full_refresh: true")
    world.emu.edit_job(world.tracked()["sales_daily"]["job_id"], {"description": "drift"})
    world.orchestrator().run_all_modules()
    remove_umbrella(world)
    world.orchestrator(prune="pause").run_all_modules()

    sent = Counter()
    for record in world.emu.requests:
        if record.endpoint == "jobs/create":
            settings = {k: v for k, v in record.body.items() if k != "access_control_list"}
        elif record.endpoint in ("jobs/reset", "jobs/update"):
            settings = record.body["new_settings"]
        else:
            continue
        sent[record.endpoint] += 1
        assert JobSettings.from_dict(settings).as_dict() == settings, record.endpoint
        assert settings.get("tags", {}).get(TOOL_TAG) == "managed" or record.endpoint == "jobs/update"
    assert sent == Counter({"jobs/create": 5, "jobs/reset": 2, "jobs/update": 1})


# ---------------------------------------------------------------------------------------
# 10. a job over the 100-task page size
# ---------------------------------------------------------------------------------------
def big_module_yaml(n: int) -> str:
    lines = ["modules:", "  - module_name: big_module", "    sources:"]
    for i in range(n):
        lines += [
            f"      - source_id: step_{i:03d}",
            "        source_type: notebook",
            f"        execution_order: {1 if i < 10 else 2}",
            "        transformation_config:",
            "          task_type: notebook",
            f"          notebook_path: /Workspace/Shared/big/step_{i:03d}",
        ]
    return "\n".join(lines) + "\n"


def test_a_job_with_250_tasks_converges_and_then_needs_no_write(
    tmp_path, jobs_emulator, make_workspace_client
):
    world = World(tmp_path, jobs_emulator, make_workspace_client, yaml_text=big_module_yaml(250))
    first = converge(world)
    (job_id,) = world.ours()["big_module"]
    assert first["big_module"].action == "create"
    live = world.settings(job_id)
    assert len(live["tasks"]) == 250
    assert sum(len(t.get("depends_on", [])) for t in live["tasks"]) == 240 * 10

    jobs_emulator.reset_counters()
    second = world.orchestrator().run_all_modules()
    assert second["big_module"].action == "noop" and not second["big_module"].drift
    assert jobs_emulator.writes() == 0
    assert jobs_emulator.count("jobs/get") == 3  # every page of the job was read

    # drift on the last page is seen too
    jobs_emulator.edit_job(job_id, lambda s: s["tasks"][-1]["notebook_task"].update(notebook_path="/x"))
    third = world.orchestrator().run_all_modules()
    assert third["big_module"].drift and jobs_emulator.write_counts() == Counter({"jobs/reset": 1})
    assert [d for d in third["big_module"].diff if "notebook_path" in d]


def test_a_removed_inline_sql_source_leaves_the_job_and_its_file_goes(world: World):
    converge(world)
    job_id = world.tracked()["sales_daily"]["job_id"]
    (path,) = [p for p in world.emu.workspace_objects() if p.endswith("/customers_ingest.sql")]
    text = world.yaml.read_text()
    start = text.index("      - source_id: customers_ingest")
    end = text.index("      - source_id: orders_to_silver")
    world.yaml.write_text(text[:start] + text[end:])
    world.sync()
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules()
    assert result.ok and result["sales_daily"].action == "update"
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.emu.request_counts()[("POST", "workspace/delete")] == 1
    assert path not in world.emu.workspace_objects()
    keys = {t["task_key"] for t in world.settings(job_id)["tasks"]}
    assert "customers_ingest" not in keys and "orders_ingest" in keys
    assert path not in json.loads(world.tracked()["sales_daily"]["managed_files"])
    world.emu.reset_counters()
    world.orchestrator().run_all_modules()
    assert world.emu.writes() == 0 and world.other_writes() == Counter()


def test_a_failure_after_the_reset_keeps_the_new_hash_so_no_second_reset(world: World):
    converge(world)
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/runs/list", kind="500", times=ATTEMPTS))
    world.emu.reset_counters()
    result = world.orchestrator().run_all_modules(auto_run=True)
    failed = result["clickstream_continuous"]
    assert (failed.action, failed.outcome) == ("update", "error") and "runs/list" in failed.error
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    row = world.tracked()["clickstream_continuous"]
    assert row["status"] == "error" and "runs/list" in row["last_error"]
    assert row["spec_hash"] == failed.new_hash

    again = world.orchestrator().run_all_modules()
    assert again["clickstream_continuous"].action == "noop" and again.ok
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert world.tracked()["clickstream_continuous"]["status"] == "ok"


def test_run_job_naming_a_module_without_a_job_is_an_error_not_job_id_0(world: World):
    world.manager.tables.control.merge(
        [
            {
                "source_id": "broken_row",
                "module_name": "sales_daily",
                "source_type": "sql",
                "execution_order": 3,
                "source_config": "{}",
                "target_config": "{}",
                "transformation_config": '{"task_type": ',
                "is_active": True,
            }
        ],
        [],
    )
    result = world.orchestrator().run_all_modules()
    assert result["sales_daily"].outcome == "error"
    umbrella = result["nightly_umbrella"]
    assert umbrella.outcome == "error" and "sales_daily" in umbrella.error and "no job" in umbrella.error
    assert world.emu.job_ids("nightly_umbrella") == []
    assert world.emu.writes() == 3  # the three modules that do not depend on sales_daily
    # a plan before any apply shows the referencing module as a create (its target comes first)
    world.manager.tables.control.merge([], [{"source_id": "broken_row"}])
    plan = world.orchestrator().plan()
    assert {c.module: c.action for c in plan.changes if c.action != "noop"} == {
        "sales_daily": "create",
        "nightly_umbrella": "create",
    }
    result = world.orchestrator().run_all_modules()
    assert result.ok
    assert run_job_ids(world.settings(result["nightly_umbrella"].job_id)) == [result["sales_daily"].job_id]


def test_a_copy_that_commits_after_our_check_is_removed_by_the_next_run(world: World):
    """A create whose first attempt timed out on the client may commit after we listed the name
    (an ``http_timeout`` shorter than the service's reply): the row stays 'created' for one more
    check. Here the late copy is placed by hand, right after the run."""
    first = world.orchestrator().create_or_update_job("warehouse_refresh")
    assert first.ok and world.tracked()["warehouse_refresh"]["status"] == "created"
    late = world.emu.add_job(world.settings(first.job_id), creator_user_name=world.emu.user_name)
    assert world.ours()["warehouse_refresh"] == [first.job_id, late]

    world.emu.reset_counters()
    second = world.orchestrator().create_or_update_job("warehouse_refresh")
    assert second.ok and second.action == "noop"
    assert world.ours()["warehouse_refresh"] == [first.job_id]
    assert world.emu.write_counts() == Counter({"jobs/delete": 1})
    assert world.tracked()["warehouse_refresh"]["status"] == "ok"
    (row,) = [r for r in world.manager.tables.history.read_all() if r["writes"] and r["action"] == "noop"]
    assert (row["module_name"], row["job_id"], row["outcome"]) == ("warehouse_refresh", first.job_id, "ok")
    world.emu.reset_counters()
    world.orchestrator().create_or_update_job("warehouse_refresh")
    assert world.emu.count("jobs/list") == 0 and world.emu.writes() == 0


def test_when_the_referenced_modules_create_fails_the_referencing_one_is_not_sent(world: World):
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="500", times=1))  # sales_daily goes first
    result = world.orchestrator(max_workers=1).run_all_modules()
    assert result["sales_daily"].outcome == "error" and "jobs/create" in result["sales_daily"].error
    umbrella = result["nightly_umbrella"]
    assert (umbrella.action, umbrella.outcome) == ("create", "error")
    assert "sales_daily" in umbrella.error and "no job yet" in umbrella.error
    assert world.emu.job_ids("nightly_umbrella") == [] and world.emu.writes() == 3
    result = world.orchestrator().run_all_modules()
    assert result.ok and world.emu.writes("jobs/create") == 5
    assert run_job_ids(world.settings(result["nightly_umbrella"].job_id)) == [result["sales_daily"].job_id]

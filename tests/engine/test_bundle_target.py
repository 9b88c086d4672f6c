"""The ``bundle:DIR`` target end to end: YAML -> control table (delta-rs) -> JobOrchestrator ->
a Databricks Asset Bundle folder.

Acceptance (issue 3): the examples' bundle validates against the shared bundle JSON schema and is
re-written byte-identically (in fact not at all) when nothing changed; removing a module deletes
its file; a module with invalid metadata keeps its previous file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("deltalake")

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from tests.bundle_schema import JOB_REF, load_schema, schema_errors
from tests.example_files import EXAMPLE_MODULES
from tests.helpers.bundle_world import World


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema()


# -- a world: a YAML volume, its control table, a bundle folder ----------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def job_file(module: str) -> str:
    return f"resources/{module}.job.yml"


# -- acceptance ----------------------------------------------------------------------------------


def test_examples_bundle_validates_against_the_schema(world: World, schema: dict[str, Any]) -> None:
    result = world.apply()
    assert result.ok, [(r.module, r.error) for r in result.results if not r.ok]
    assert {r.module: r.action for r in result.results} == dict.fromkeys(EXAMPLE_MODULES, "create")
    files = world.snapshot()
    job_files = sorted(p for p in files if p.endswith(".job.yml"))
    assert job_files == sorted(job_file(m) for m in EXAMPLE_MODULES)
    assert any(p.startswith("resources/sql/") and p.endswith(".sql") for p in files)

    root = yaml.safe_load(files["databricks.yml"][0])
    assert schema_errors(root, schema) == []
    assert root["include"] == ["resources/*.yml", "targets/*.yml"]
    for relpath in job_files:
        document = yaml.safe_load(files[relpath][0])
        assert schema_errors(document, schema) == [], relpath
        ((key, job),) = document["resources"]["jobs"].items()
        assert schema_errors(job, schema, JOB_REF) == [], relpath
        assert key == Path(relpath).name.removesuffix(".job.yml")
        # Every managed SQL file a task names exists in the folder.
        for task in job["tasks"]:
            sql_file = (task.get("sql_task") or {}).get("file")
            if sql_file and not sql_file["path"].startswith("/"):
                assert f"resources/{sql_file['path']}" in files, sql_file
    umbrella = yaml.safe_load(files[job_file("nightly_umbrella")][0])["resources"]["jobs"]["nightly_umbrella"]
    run_job = [t for t in umbrella["tasks"] if "run_job_task" in t]
    assert run_job and run_job[0]["run_job_task"]["job_id"] == "${resources.jobs.sales_daily.id}"


def test_second_apply_writes_nothing(world: World) -> None:
    world.apply()
    before = world.snapshot()
    plan = world.orchestrator().plan()
    assert {(c.module, c.action) for c in plan.changes} == {(m, "noop") for m in EXAMPLE_MODULES}

    result = world.apply()
    assert result.ok
    assert {r.module: r.action for r in result.results} == dict.fromkeys(EXAMPLE_MODULES, "noop")
    assert sum(r.other_writes for r in result.results) == 0
    assert world.snapshot() == before  # same bytes and same mtimes: nothing was re-written

    # A fresh orchestrator (a new process) renders the same bytes too.
    world.orchestrator().run_all_modules()
    assert world.snapshot() == before


def test_changed_source_rewrites_only_its_module(world: World) -> None:
    world.apply()
    before = world.snapshot()
    world.edit("timeout_seconds: 7200", "timeout_seconds: 7300")
    plan = world.orchestrator().plan()
    assert {c.module: c.action for c in plan.changes if c.action != "noop"} == {"sales_daily": "update"}
    result = world.apply()
    assert {r.module: r.other_writes for r in result.results if r.other_writes} == {"sales_daily": 1}
    after = world.snapshot()
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {job_file("sales_daily")}
    assert "timeout_seconds: 7300" in after[job_file("sales_daily")][0].decode()


def test_removing_a_module_with_prune_delete_deletes_its_files(world: World) -> None:
    world.apply()
    sql_dir = world.bundle / "resources" / "sql" / "warehouse_refresh"
    has_sql = sql_dir.is_dir()
    # Move warehouse_refresh out of the volume: its rows go, the module is gone.
    text = (world.volume / "examples.yaml").read_text(encoding="utf-8")
    start = text.index("  - module_name: warehouse_refresh")
    end = text.index("  - module_name: nightly_umbrella")
    block = text[start:end]
    block_start = text.rfind("\n  #", 0, start)  # keep the comment with its module, harmlessly
    (world.volume / "examples.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    assert block and block_start < start
    world.sync()

    plan = world.orchestrator(prune="delete").plan()
    assert {c.module: c.action for c in plan.changes if c.action != "noop"} == {"warehouse_refresh": "delete"}
    result = world.orchestrator(prune="delete").run_all_modules()
    assert result.ok
    assert {r.module: r.action for r in result.results if r.action != "noop"} == {
        "warehouse_refresh": "delete"
    }
    assert not (world.bundle / job_file("warehouse_refresh")).exists()
    if has_sql:
        assert not sql_dir.exists()
    assert (world.bundle / job_file("sales_daily")).exists()
    # And the deletion is itself stable.
    before = world.snapshot()
    world.apply()
    assert world.snapshot() == before


def test_invalid_module_keeps_its_previous_file(world: World) -> None:
    world.apply()
    before = world.snapshot()
    # Someone INSERTs a row with broken JSON into sales_daily: the module becomes invalid.
    world.manager.tables.control.append(
        [
            {
                "source_id": "broken_row",
                "module_name": "sales_daily",
                "source_type": "sql",
                "execution_order": 9,
                "source_config": "{}",
                "target_config": "{}",
                "transformation_config": '{"task_type": "notebook", ',
                "is_active": True,
            }
        ]
    )
    # ...and at the same time a valid change to another module.
    world.edit(
        "description: Feature engineering triggered by new files in a volume.",
        "description: Feature engineering, changed.",
    )

    plan = world.orchestrator().plan()
    actions = {c.module: c.action for c in plan.changes}
    assert actions["sales_daily"] == "error"
    error = next(c for c in plan.changes if c.module == "sales_daily")
    assert f"table {world.control} source_id=broken_row" in error.reason

    result = world.apply()
    assert not result.ok
    by_module = {r.module: r for r in result.results}
    assert by_module["sales_daily"].action == "error"
    assert "broken_row" in (by_module["sales_daily"].error or "")
    after = world.snapshot()
    assert after[job_file("sales_daily")] == before[job_file("sales_daily")]
    # sales_daily's SQL files are kept too.
    for path in before:
        if path.startswith("resources/sql/sales_daily/"):
            assert after[path] == before[path]
    # The other modules proceeded.
    assert [p for p in after if after[p] != before.get(p)] == [job_file("ml_features")]
    assert actions["ml_features"] == "update"
    assert by_module["ml_features"].action == "update" and by_module["ml_features"].ok


def test_invalid_module_without_previous_file_writes_nothing_for_it(world: World) -> None:
    world.manager.tables.control.append(
        [
            {
                "source_id": "lonely",
                "module_name": "brand_new",
                "source_type": "sql",
                "execution_order": 1,
                "transformation_config": '{"task_type": "notebook", "notebook_path": "relative/path"}',
                "is_active": True,
            }
        ]
    )
    result = world.apply()
    by_module = {r.module: r for r in result.results}
    assert by_module["brand_new"].action == "error"
    assert "must be an absolute workspace path" in (by_module["brand_new"].error or "")
    assert not (world.bundle / job_file("brand_new")).exists()
    assert all(by_module[m].action == "create" for m in EXAMPLE_MODULES)


def test_plan_writes_nothing(world: World) -> None:
    plan = world.orchestrator().plan()
    assert {c.module: c.action for c in plan.changes} == dict.fromkeys(EXAMPLE_MODULES, "create")
    assert not world.bundle.exists()


def test_user_files_in_the_bundle_are_kept(world: World) -> None:
    world.apply()
    mine = world.bundle / "resources" / "my_own.job.yml"
    mine.write_text("resources: {}\n", encoding="utf-8")
    notes = world.bundle / "README.md"
    notes.write_text("my notes\n", encoding="utf-8")
    plan = world.orchestrator().plan()
    assert all(c.action == "noop" for c in plan.changes), plan.render_text()
    world.apply()
    assert mine.read_text(encoding="utf-8") == "resources: {}\n"
    assert notes.exists()


def test_history_records_bundle_writes(world: World) -> None:
    world.apply()
    rows = world.manager.tables.history.read_all()
    assert {r["module_name"] for r in rows if r["action"] == "create"} == EXAMPLE_MODULES
    version = world.manager.tables.history.version()
    world.apply()  # all noop with no writes: no history rows, no commit
    assert world.manager.tables.history.version() == version


def test_module_name_that_is_not_path_safe(tmp_path: Path) -> None:
    """Files of "Sales Daily" live under a cleaned stem; plan and apply still speak of the module
    by its name, keep its file while it has errors, and delete it when it goes."""
    volume = tmp_path / "volume"
    volume.mkdir()
    path = volume / "m.yaml"

    def write(*modules: str) -> None:
        path.write_text(
            "modules:\n"
            + "".join(
                f"  - module_name: {name}\n    sources:\n      - source_id: {sid}\n"
                f"        source_type: x\n        execution_order: 1\n"
                f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/{sid}}}\n"
                for name, sid in modules
            ),
            encoding="utf-8",
        )

    write(("Sales Daily", "s1"), ("plain", "p1"))
    control = str(tmp_path / "etl_control")
    manager = MetadataManager(control)
    manager.sync_from_volume(str(volume))
    bundle = tmp_path / "b"
    orchestrator = JobOrchestrator(control, target=f"bundle:{bundle}", prune="delete")
    plan = orchestrator.plan()
    assert {(c.module, c.action, c.job_name) for c in plan.changes} == {
        ("Sales Daily", "create", "Sales Daily"),
        ("plain", "create", "plain"),
    }
    result = orchestrator.run_all_modules()
    assert {(r.module, r.action, r.other_writes) for r in result.results} == {
        ("Sales Daily", "create", 1),
        ("plain", "create", 1),
    }
    (stem_file,) = [p for p in (bundle / "resources").glob("Sales_Daily_*.job.yml")]
    content = stem_file.read_bytes()

    # An invalid SQL row in the module: error, file kept, no "delete" reported.
    manager.tables.control.append(
        [{"source_id": "bad", "module_name": "Sales Daily", "transformation_config": "{", "is_active": True}]
    )
    plan = orchestrator.plan()
    assert {c.module: c.action for c in plan.changes} == {"Sales Daily": "error", "plain": "noop"}
    result = orchestrator.run_all_modules()
    assert {r.module: r.action for r in result.results} == {"Sales Daily": "error", "plain": "noop"}
    assert stem_file.read_bytes() == content

    # The module goes: its file is deleted, and reported under the module's name.
    manager.tables.control.merge([], [{"source_id": "bad"}])
    write(("plain", "p1"))
    manager.sync_from_volume(str(volume))
    plan = orchestrator.plan()
    assert {c.module: c.action for c in plan.changes} == {"Sales Daily": "delete", "plain": "noop"}
    result = orchestrator.run_all_modules()
    assert {r.module: r.action for r in result.results} == {"Sales Daily": "delete", "plain": "noop"}
    assert not stem_file.exists()


# -- owners (issue 7): the deployer is unknown offline ----------------------------------------


def test_bundle_permissions_leave_the_owner_to_the_deploying_cli(
    world: World, schema: dict[str, Any]
) -> None:
    """No owner in the metadata: the bundle names none, and ``databricks bundle deploy`` makes the
    deploying identity IS_OWNER (CLI FixPermissions), promoting its CAN_MANAGE entry."""
    assert world.apply().ok
    job = yaml.safe_load(world.snapshot()[job_file("sales_daily")][0])["resources"]["jobs"]["sales_daily"]
    assert schema_errors(job, schema, JOB_REF) == []
    assert sorted(p["level"] for p in job["permissions"]) == ["CAN_MANAGE", "CAN_MANAGE_RUN", "CAN_VIEW"]


def test_a_declared_owner_is_written_to_the_bundle(world: World, schema: dict[str, Any]) -> None:
    world.edit(
        "{group_name: analysts, permission_level: CAN_VIEW}",
        "{group_name: analysts, permission_level: CAN_VIEW}\n      - {user_name: lead@example.com, permission_level: IS_OWNER}",
    )
    assert world.apply().ok
    job = yaml.safe_load(world.snapshot()[job_file("sales_daily")][0])["resources"]["jobs"]["sales_daily"]
    assert schema_errors(job, schema, JOB_REF) == []
    owners = [p for p in job["permissions"] if p["level"] == "IS_OWNER"]
    assert owners == [{"user_name": "lead@example.com", "level": "IS_OWNER"}]

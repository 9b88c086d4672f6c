"""compile_module: task types, dependencies, compute, module settings, development mode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lakeflow_job_meta.metadata.loader import validate_all
from lakeflow_job_meta.metadata.models import ModuleSettings
from lakeflow_job_meta.metadata.rows import module_settings_from_row
from lakeflow_job_meta.planning.compiler import CompileContext, CompiledJob, compile_module
from tests.planning.builders import CTX, JOB_CLUSTERS, TASK_TYPE_SOURCES, all_types_module, mod, src


def compiled(module, ctx: CompileContext = CTX) -> CompiledJob:
    result = compile_module(module, ctx)
    assert result.issues == []
    assert result.job is not None
    return result.job


def issues_of(module, ctx: CompileContext = CTX) -> list[str]:
    result = compile_module(module, ctx)
    assert result.job is None, "a module with issues must not yield a job"
    return [f"{i.field}: {i.message}" for i in result.issues]


def validation_rows_issues(module) -> list[str]:
    """Schema and semantic checks, as a module read back from the tables gets them."""
    row = ModuleSettings(module.name, dict(module.settings)).content_row()
    parsed = module_settings_from_row(row, "ctl_modules")
    schema = [f"{i.field}: {i.message}" for i in parsed] if isinstance(parsed, list) else []
    return schema + validation_issues(module, default_warehouse_id="wh")


def validation_issues(module, default_warehouse_id: str | None = None) -> list[str]:
    """What the validator (the one owner of the rules) says; the compiler assumes valid input."""
    settings = [ModuleSettings(module.name, dict(module.settings))]
    found = validate_all(list(module.sources), settings, default_warehouse_id=default_warehouse_id)
    return [f"{i.field}: {i.message}" for i in found]


def tasks_by_key(job: CompiledJob) -> dict[str, dict[str, Any]]:
    return {t["task_key"]: t for t in job.settings["tasks"]}


def test_every_task_type_compiles_to_its_jobs_api_block() -> None:
    job = compiled(all_types_module())
    tasks = tasks_by_key(job)
    assert list(tasks) == sorted(tasks)
    assert tasks["notebook_task"]["notebook_task"] == {
        "notebook_path": "/Workspace/nb/ingest",
        "base_parameters": {
            "control_table": "main.meta.etl_control",
            "days": "3",
            "full": "true",
            "source_id": "notebook_task",
        },
    }
    path = "/Workspace/Shared/ljm/etl_control/all_types/sql_query_task.sql"
    assert tasks["sql_query_task"]["sql_task"] == {
        "warehouse_id": "wh-ctx",
        "file": {"path": path, "source": "WORKSPACE"},
        "parameters": {"threshold": "5.0"},
    }
    assert job.managed_files == {path: "SELECT 1"}
    assert tasks["sql_file_task"]["sql_task"] == {
        "warehouse_id": "wh-1",
        "file": {"path": "/Workspace/sql/q.sql", "source": "WORKSPACE"},
    }
    assert tasks["python_wheel_task"]["python_wheel_task"] == {
        "package_name": "pkg",
        "entry_point": "main",
        "named_parameters": {"a": "1"},
    }
    assert tasks["spark_python_task"]["spark_python_task"] == {
        "python_file": "/Workspace/py/run.py",
        "parameters": ["--x", "1"],
    }
    assert tasks["spark_jar_task"]["spark_jar_task"] == {"main_class_name": "com.x.Main"}
    assert tasks["spark_jar_task"]["job_cluster_key"] == "big"
    assert tasks["pipeline_task"]["pipeline_task"] == {"pipeline_id": "p-123", "full_refresh": False}
    assert tasks["run_job_task"]["run_job_task"] == {"job_id": 0, "job_parameters": {"d": "x"}}
    assert job.run_job_refs == {"run_job_task": "other"}
    assert tasks["dbt_task"]["dbt_task"] == {
        "commands": ["dbt deps", "dbt run"],
        "project_directory": "/Workspace/dbt",
        "warehouse_id": "wh-ctx",
    }
    assert tasks["condition_task"]["condition_task"] == {
        "op": "EQUAL_TO",
        "left": "{{job.parameters.x}}",
        "right": "1",
    }
    for_each = tasks["for_each_task"]["for_each_task"]
    assert for_each["inputs"] == '["a","b"]'
    assert for_each["concurrency"] == 2
    assert for_each["task"]["task_key"] == "for_each_task_iteration"
    assert for_each["task"]["notebook_task"]["base_parameters"]["source_id"] == "for_each_task"
    assert job.settings["job_clusters"] == JOB_CLUSTERS


def test_execution_order_fans_in_on_the_nearest_lower_order_with_gaps() -> None:
    job = compiled(mod("m", src("a", 1), src("b", 1), src("c", 5), src("d", 5), src("e", 9), src("z", 0)))
    deps = {k: [d["task_key"] for d in t.get("depends_on", [])] for k, t in tasks_by_key(job).items()}
    assert deps == {"z": [], "a": ["z"], "b": ["z"], "c": ["a", "b"], "d": ["a", "b"], "e": ["c", "d"]}


def test_inactive_sources_are_left_out_and_do_not_break_the_chain() -> None:
    job = compiled(mod("m", src("a", 1), src("b", 2, active=False), src("c", 3)))
    tasks = tasks_by_key(job)
    assert set(tasks) == {"a", "c"}
    assert tasks["c"]["depends_on"] == [{"task_key": "a"}]


def test_explicit_depends_on_overrides_order_and_carries_outcome() -> None:
    job = compiled(
        mod(
            "m",
            src("a", 1),
            src(
                "check",
                2,
                task_type="condition",
                condition_task={"op": "EQUAL_TO", "left": "1", "right": "1"},
            ),
            src(
                "b",
                3,
                depends_on=[{"source_id": "check", "outcome": "true"}, "a"],
                run_if="AT_LEAST_ONE_SUCCESS",
            ),
            src("c", 3, depends_on=[]),
        )
    )
    tasks = tasks_by_key(job)
    assert tasks["b"]["depends_on"] == [{"task_key": "a"}, {"task_key": "check", "outcome": "true"}]
    assert tasks["b"]["run_if"] == "AT_LEAST_ONE_SUCCESS"
    assert "depends_on" not in tasks["c"]


# Bad dependencies and bad task blocks are validation's: tests/metadata/test_task_rules.py (rows)
# and tests/metadata/test_bad_inputs.py (file:line). The compiler assumes valid input.


def test_dependency_cycle_is_a_validation_issue() -> None:
    found = validation_issues(mod("m", src("a", 1, depends_on=["b"]), src("b", 1, depends_on=["a"])))
    assert any("cycle" in i for i in found)


def test_notebook_always_gets_source_id_and_control_table() -> None:
    job = compiled(mod("m", src("x.y", 1, base_parameters={"k": "v"})))
    task = job.settings["tasks"][0]
    assert task["task_key"] == "x_y"
    assert task["notebook_task"]["base_parameters"] == {
        "control_table": "main.meta.etl_control",
        "k": "v",
        "source_id": "x.y",
    }
    found = issues_of(mod("m", src("a", base_parameters={"source_id": "other"})))
    assert any("cannot be overridden" in i for i in found)


def test_python_tasks_get_a_generated_default_environment_with_their_libraries() -> None:
    cfg = TASK_TYPE_SOURCES["python_wheel"]
    job = compiled(
        mod(
            "m",
            src("w", 1, task_type="python_wheel", **cfg),
            src(
                "p",
                1,
                task_type="spark_python",
                spark_python_task={"python_file": "/x.py"},
                libraries=[{"pypi": {"package": "requests==2.32.0"}}, {"requirements": "/Workspace/req.txt"}],
            ),
        )
    )
    tasks = tasks_by_key(job)
    assert tasks["w"]["environment_key"] == tasks["p"]["environment_key"] == "default"
    assert "libraries" not in tasks["w"]
    assert job.settings["environments"] == [
        {
            "environment_key": "default",
            "spec": {
                "environment_version": "2",
                "dependencies": ["-r /Workspace/req.txt", "/Volumes/c/s/v/pkg.whl", "requests==2.32.0"],
            },
        }
    ]


def test_python_tasks_use_the_module_environment() -> None:
    envs = [{"environment_key": "py", "spec": {"environment_version": "2", "dependencies": ["polars"]}}]
    job = compiled(
        mod(
            "m",
            src("p", task_type="spark_python", spark_python_task={"python_file": "/x.py"}),
            environments=envs,
        )
    )
    assert job.settings["tasks"][0]["environment_key"] == "py"
    assert job.settings["environments"] == envs
    two = [*envs, {"environment_key": "other", "spec": {"environment_version": "2"}}]
    found = validation_issues(
        mod(
            "m",
            src("p", task_type="spark_python", spark_python_task={"python_file": "/x.py"}),
            environments=two,
        )
    )
    assert any("environment_key: is required" in i for i in found)
    found = validation_issues(
        mod(
            "m",
            src(
                "p",
                task_type="spark_python",
                spark_python_task={"python_file": "/x.py"},
                environment_key="nope",
            ),
            environments=envs,
        )
    )
    assert any("names no environment of module 'm' (py)" in i for i in found)


def test_spark_jar_on_serverless_is_a_validation_issue() -> None:
    module = mod("m", src("j", task_type="spark_jar", spark_jar_task={"main_class_name": "a.B"}))
    found = validation_issues(module)
    assert any(
        "spark_jar tasks need a cluster: set job_cluster_key or existing_cluster_id" in i for i in found
    )


def test_libraries_only_on_cluster_tasks() -> None:
    found = validation_issues(mod("m", src("n", libraries=[{"pypi": {"package": "x"}}])))
    assert any("libraries need a cluster" in i for i in found)
    job = compiled(mod("m", src("n", existing_cluster_id="c-1", libraries=[{"pypi": {"package": "x"}}])))
    task = job.settings["tasks"][0]
    assert task["existing_cluster_id"] == "c-1"
    assert task["libraries"] == [{"pypi": {"package": "x"}}]
    assert "environments" not in job.settings
    found = validation_issues(mod("m", src("n", job_cluster_key="missing")))
    assert any("names no job cluster of module 'm'" in i for i in found)
    found = validation_issues(
        mod(
            "m",
            src("q", task_type="sql_file", sql_task={"sql_file_path": "/a.sql"}, job_cluster_key="big"),
            job_clusters=JOB_CLUSTERS,
        )
    )
    assert any("take no compute settings" in i for i in found)


def test_warehouse_falls_back_to_module_then_context() -> None:
    sql = {"task_type": "sql_file", "sql_task": {"sql_file_path": "/a.sql"}}
    job = compiled(mod("m", src("q", **sql), default_warehouse_id="wh-mod"))
    assert job.settings["tasks"][0]["sql_task"]["warehouse_id"] == "wh-mod"
    assert compiled(mod("m", src("q", **sql))).settings["tasks"][0]["sql_task"]["warehouse_id"] == "wh-ctx"
    assert not validation_issues(mod("m", src("q", **sql)), default_warehouse_id="wh-ctx")
    found = validation_issues(mod("m", src("q", **sql)))
    assert any("warehouse_id: is required" in i for i in found)


def test_run_job_with_a_literal_job_id_passes_through() -> None:
    job = compiled(mod("m", src("r", task_type="run_job", run_job_task={"job_id": 42})))
    assert job.settings["tasks"][0]["run_job_task"] == {"job_id": 42}
    assert job.run_job_refs == {}
    module = mod("m", src("r", task_type="run_job", run_job_task={"module_name": "m"}))
    assert any("a module cannot run its own job" in i for i in validation_issues(module))


def test_module_settings_map_to_job_settings() -> None:
    from tests.planning.builders import example_modules

    sales = next(m for m in example_modules() if m.name == "sales_daily")
    job = compiled(sales)
    s = job.settings
    assert s["name"] == "sales_daily"
    assert s["description"] == "Daily sales"
    assert s["schedule"]["pause_status"] == "UNPAUSED"
    assert job.explicit_pause is True
    assert s["tags"] == {
        "cost_center": "42",
        "lakeflow_job_meta": "managed",
        "ljm_module": "sales_daily",
        "ljm_table": "etl_control",
        "team": "sales",
    }
    assert s["parameters"] == [{"name": "env", "default": "prod"}, {"name": "run_date", "default": ""}]
    assert s["edit_mode"] == "EDITABLE"
    assert s["run_as"] == {"service_principal_name": "sp-123"}
    assert s["queue"] == {"enabled": True}
    assert "format" not in s
    assert job.priority == 10
    assert job.permissions == [
        {"group_name": "analysts", "permission_level": "CAN_VIEW"},
        {"permission_level": "CAN_MANAGE", "user_name": "a@example.com"},
    ]


def test_defaults_edit_mode_ui_locked_and_no_pause_status() -> None:
    job = compiled(
        mod("m", src("a"), schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"})
    )
    assert job.settings["edit_mode"] == "UI_LOCKED"
    assert "pause_status" not in job.settings["schedule"]
    assert job.explicit_pause is False
    assert job.pause_status_on_create is None
    with_default = compile_module(
        mod("m", src("a"), trigger={"periodic": {"interval": 1, "unit": "HOURS"}}),
        replace(CTX, default_pause_status="PAUSED"),
    ).job
    assert with_default is not None
    assert with_default.pause_status_on_create == "PAUSED"
    assert "pause_status" not in with_default.settings["trigger"]


def test_development_mode_prefixes_the_name_and_pauses() -> None:
    dev = replace(CTX, env_name="dev", env_mode="development", user_name_prefix="alice")
    job = compiled(
        mod("m", src("a"), schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}), dev
    )
    assert job.job_name == job.settings["name"] == "[dev alice] m"
    assert job.settings["schedule"]["pause_status"] == "PAUSED"
    assert job.explicit_pause is True
    kept = compiled(mod("m", src("a"), continuous={"pause_status": "UNPAUSED"}), dev)
    assert kept.settings["continuous"] == {"pause_status": "UNPAUSED"}
    plain = compiled(mod("m", src("a")), replace(CTX, env_mode="development"))
    assert plain.job_name == "[dev] m"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"tags": {"ljm_module": "x"}}, "tags.ljm_module: is reserved"),
        ({"tags": {f"t{i}": "v" for i in range(22)}}, "at most 21 tags"),
        (
            {"schedule": {"quartz_cron_expression": "x", "timezone_id": "UTC", "pause_status": "OFF"}},
            "pause_status: must be one of",
        ),
        ({"edit_mode": "LOCKED"}, "edit_mode: must be one of"),
        ({"max_concurrent_runs": 5000}, "between 0 and 1000"),
        ({"bogus": 1}, "unknown field 'bogus'"),
        (
            {"schedule": {"quartz_cron_expression": "x", "timezone_id": "UTC"}, "continuous": {}},
            "are mutually exclusive",
        ),
        ({"schedule": {"quartz_cron_expression": "0 0 5 * * ?"}}, "schedule.timezone_id: is required"),
        ({"permissions": [{"user_name": "a", "permission_level": "CAN_EAT"}]}, "must be one of"),
        ({"permissions": [{"permission_level": "CAN_VIEW"}]}, "exactly one of: user_name"),
        (
            {"run_as": {"user_name": "a", "service_principal_name": "b"}},
            "exactly one of: user_name, service_principal_name",
        ),
    ],
)
def test_bad_module_settings_are_validation_issues(settings: dict[str, Any], expected: str) -> None:
    found = validation_rows_issues(mod("m", src("a"), **settings))
    assert any(expected in i for i in found), found


def test_duplicate_task_keys_are_an_issue() -> None:
    found = validation_issues(mod("m", src("a.b"), src("a_b")))
    assert any("becomes task key 'a_b', like source 'a.b'" in i for i in found)


def test_issue_locations_name_the_source_and_module() -> None:
    result = compile_module(mod("m", src("a", base_parameters={"control_table": "other.t"})), CTX)
    (issue,) = result.issues
    assert issue.location == "table main.meta.etl_control source_id=a"
    assert issue.field == "transformation_config.base_parameters.control_table"
    assert issue.module == "m"


def test_the_job_name_with_the_environment_prefix_must_fit() -> None:
    """One of the two checks left to the compiler: the prefix comes from the run, not the
    metadata (the other is base_parameters overriding what the tool sets, above)."""
    name = "m" * (4096 - len("[dev] "))
    assert compiled(mod(name, src("a", module=name))).job_name == name
    dev = replace(CTX, env_mode="development")
    assert compiled(mod(name, src("a", module=name)), dev).job_name == f"[dev] {name}"
    found = issues_of(mod(name + "x", src("a", module=name + "x")), dev)
    assert found == ["module_name: job name is longer than 4096 bytes"]


def test_module_without_active_sources_or_inactive_gives_no_job_and_no_issue() -> None:
    assert compile_module(mod("m", src("a", active=False)), CTX).job is None
    assert compile_module(mod("m", src("a", active=False)), CTX).issues == []
    assert compile_module(mod("m", src("a"), is_active=False), CTX).job is None


def test_empty_user_blocks_are_not_emitted() -> None:
    job = compiled(
        mod(
            "m",
            src("a", email_notifications={"on_failure": []}),
            email_notifications={},
            tags={},
            parameters=[],
        )
    )
    assert "email_notifications" not in job.settings
    assert "parameters" not in job.settings
    assert "email_notifications" not in job.settings["tasks"][0]


def test_compile_is_deterministic_regardless_of_source_order() -> None:
    sources = [src("b", 2), src("a", 1), src("c", 2)]
    one = compiled(mod("m", *sources))
    two = compiled(mod("m", *reversed(sources)))
    assert one == two
    assert one.spec_hash == two.spec_hash


def test_for_each_inner_key_stays_a_valid_task_key_for_long_ids() -> None:
    long_id = "x" * 99
    job = compiled(mod("m", src(long_id, task_type="for_each", **TASK_TYPE_SOURCES["for_each"])))
    inner = job.settings["tasks"][0]["for_each_task"]["task"]["task_key"]
    assert len(inner) <= 100
    assert inner != job.settings["tasks"][0]["task_key"]


@pytest.mark.parametrize(
    ("tc", "expected"),
    [
        ({"task_type": "bash"}, "unknown task type 'bash'"),
        ({"task_type": "notebook", "notebook_path": "rel/path"}, "absolute workspace path"),
        ({"task_type": "sql_file", "sql_task": {"sql_file_path": "q.sql"}}, "absolute workspace path"),
    ],
)
def test_bad_tasks_are_validation_issues(tc: dict[str, Any], expected: str) -> None:
    found = validation_issues(mod("m", src("a", **tc)), default_warehouse_id="wh")
    assert any(expected in i for i in found), found


def test_a_chain_of_1000_tasks_compiles_and_1001_is_an_issue() -> None:
    chain = [src(f"t{i:04d}", i) for i in range(1000)]
    job = compiled(mod("m", *chain))
    assert len(job.settings["tasks"]) == 1000
    assert job.settings["tasks"][-1]["depends_on"] == [{"task_key": "t0998"}]
    found = validation_issues(mod("m", *chain, src("t1000", 1000)))
    assert any("at most 1000 tasks" in i for i in found)


def test_queue_is_always_stated_and_the_metadata_can_turn_it_off() -> None:
    """Jobs API 2.2 queues by default; the compiled job says so, or says what the metadata says."""
    plain = compile_module(mod("m", src("a")), CTX).job
    assert plain is not None and plain.settings["queue"] == {"enabled": True}
    off = compile_module(mod("m", src("a"), queue={"enabled": False}), CTX).job
    assert off is not None and off.settings["queue"] == {"enabled": False}
    assert plain.spec_hash != off.spec_hash


def test_a_local_control_table_path_is_never_a_notebook_parameter() -> None:
    """Issue 17: ``control_table: ./ctl`` meant nothing on Databricks. A notebook task gets the
    control table only when it is a ``catalog.schema.table`` name; with a local table a
    ``control_table`` the metadata sets itself is kept as the user's."""
    from dataclasses import replace

    local = replace(CTX, control_table="./ctl")
    job = compile_module(mod("m", src("a")), local).job
    assert job is not None
    assert job.settings["tasks"][0]["notebook_task"]["base_parameters"] == {"source_id": "a"}
    own = compile_module(mod("m", src("a", base_parameters={"control_table": "main.ops.t"})), local).job
    assert (
        own is not None
        and own.settings["tasks"][0]["notebook_task"]["base_parameters"]["control_table"] == "main.ops.t"
    )
    for name in ("main.ops.etl_control", "`main`.`ops`.`etl-control`"):
        params = compile_module(mod("m", src("a")), replace(CTX, control_table=name)).job.settings["tasks"][0]
        assert params["notebook_task"]["base_parameters"]["control_table"] == name

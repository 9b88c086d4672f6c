"""Module builders and example modules for the planning and bundle tests.

Tests build :class:`Module` objects directly so they don't depend on the YAML loader.
"""

from __future__ import annotations

from typing import Any

from lakeflow_job_meta.metadata.models import Module, Source
from lakeflow_job_meta.planning.compiler import CompileContext

CTX = CompileContext(
    control_table="main.meta.etl_control",
    control_table_id="etl_control",
    default_warehouse_id="wh-ctx",
    managed_sql_root="/Workspace/Shared/ljm/etl_control",
)


def src(source_id: str, order: int = 1, module: str = "m", active: bool = True, **tc: Any) -> Source:
    """A source; ``tc`` is its transformation_config (a notebook task unless told otherwise)."""
    tc.setdefault("task_type", "notebook")
    if tc["task_type"] == "notebook":
        tc.setdefault("notebook_path", f"/Workspace/nb/{source_id}")
    return Source(
        source_id=source_id,
        module_name=module,
        source_type="sql",
        execution_order=order,
        transformation_config=tc,
        is_active=active,
    )


def mod(name: str = "m", *sources: Source, **settings: Any) -> Module:
    return Module(name=name, sources=tuple(sources), settings=settings)


# One source per task type, each valid on its own (spark_jar on a cluster).
TASK_TYPE_SOURCES: dict[str, dict[str, Any]] = {
    "notebook": {"notebook_path": "/Workspace/nb/ingest", "base_parameters": {"days": 3, "full": True}},
    "sql_query": {"sql_task": {"sql_query": "SELECT 1", "parameters": {"threshold": 5.0}}},
    "sql_file": {"sql_task": {"warehouse_id": "wh-1", "sql_file_path": "/Workspace/sql/q.sql"}},
    "python_wheel": {
        "python_wheel_task": {"package_name": "pkg", "entry_point": "main", "named_parameters": {"a": "1"}},
        "libraries": [{"whl": "/Volumes/c/s/v/pkg.whl"}, {"pypi": {"package": "requests==2.32.0"}}],
    },
    "spark_python": {
        "spark_python_task": {"python_file": "/Workspace/py/run.py", "parameters": ["--x", "1"]}
    },
    "spark_jar": {"spark_jar_task": {"main_class_name": "com.x.Main"}, "job_cluster_key": "big"},
    "pipeline": {"pipeline_task": {"pipeline_id": "p-123", "full_refresh": False}},
    "run_job": {"run_job_task": {"module_name": "other", "job_parameters": {"d": "x"}}},
    "dbt": {"dbt_task": {"commands": ["dbt deps", "dbt run"], "project_directory": "/Workspace/dbt"}},
    "condition": {"condition_task": {"op": "EQUAL_TO", "left": "{{job.parameters.x}}", "right": "1"}},
    "for_each": {
        "for_each_task": {
            "inputs": ["a", "b"],
            "concurrency": 2,
            "task": {"task_type": "notebook", "notebook_path": "/Workspace/nb/each"},
        }
    },
}

JOB_CLUSTERS = [
    {
        "job_cluster_key": "big",
        "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 2},
    }
]


def all_types_module(name: str = "all_types") -> Module:
    sources = [
        src(f"{t}_task", i, module=name, task_type=t, **cfg)
        for i, (t, cfg) in enumerate(TASK_TYPE_SOURCES.items())
    ]
    return mod(name, *sources, job_clusters=JOB_CLUSTERS)


def example_modules() -> list[Module]:
    """Modules that compile without issues and use every task type and module setting."""
    return [
        all_types_module(),
        mod("other", src("o1", module="other")),
        mod(
            "sales_daily",
            src("orders_ingest", 1, module="sales_daily"),
            src("customers_ingest", 1, module="sales_daily"),
            src(
                "check",
                2,
                module="sales_daily",
                task_type="condition",
                condition_task={
                    "op": "GREATER_THAN",
                    "left": "{{tasks.orders_ingest.values.n}}",
                    "right": "0",
                },
            ),
            src(
                "publish",
                3,
                module="sales_daily",
                task_type="sql_query",
                sql_task={"sql_query": "INSERT INTO t SELECT * FROM s", "warehouse_id": "wh-2"},
                depends_on=[{"source_id": "check", "outcome": "true"}],
                run_if="ALL_DONE",
                timeout_seconds=600,
                max_retries=2,
            ),
            description="Daily sales",
            schedule={
                "quartz_cron_expression": "0 0 6 * * ?",
                "timezone_id": "UTC",
                "pause_status": "UNPAUSED",
            },
            email_notifications={"on_failure": ["ops@example.com"]},
            webhook_notifications={"on_failure": [{"id": "hook-1"}]},
            notification_settings={"no_alert_for_skipped_runs": True},
            health={"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 3600}]},
            tags={"team": "sales", "cost_center": "42"},
            parameters=[{"name": "run_date", "default": ""}, {"name": "env", "default": "prod"}],
            timeout_seconds=7200,
            max_concurrent_runs=2,
            queue={"enabled": True},
            edit_mode="EDITABLE",
            run_as={"service_principal_name": "sp-123"},
            permissions=[
                {"group_name": "analysts", "permission_level": "CAN_VIEW"},
                {"user_name": "a@example.com", "permission_level": "CAN_MANAGE"},
            ],
            priority=10,
        ),
        mod(
            "stream",
            src(
                "s1",
                module="stream",
                task_type="spark_python",
                spark_python_task={"python_file": "/Workspace/py/s.py"},
                environment_key="py",
            ),
            continuous={},
            environments=[
                {"environment_key": "py", "spec": {"environment_version": "2", "dependencies": ["polars"]}}
            ],
        ),
        mod(
            "files",
            src(
                "f1",
                module="files",
                task_type="notebook",
                notebook_path="/Workspace/nb/f",
                existing_cluster_id="0101-abc",
                libraries=[{"maven": {"coordinates": "a:b:1"}}],
            ),
            trigger={"file_arrival": {"url": "/Volumes/c/s/landing/"}},
        ),
    ]

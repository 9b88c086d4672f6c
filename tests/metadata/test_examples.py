"""The shipped example file is the reference users copy: it must validate and cover everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.metadata.loader import parse_files_detailed
from lakeflow_job_meta.metadata.models import TASK_TYPES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "metadata_examples.yaml"

MODULE_SETTINGS = (
    "description",
    "schedule",
    "trigger",
    "continuous",
    "job_clusters",
    "environments",
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "health",
    "tags",
    "parameters",
    "timeout_seconds",
    "max_concurrent_runs",
    "queue",
    "edit_mode",
    "run_as",
    "permissions",
    "priority",
    "default_warehouse_id",
)


def _parse(**kwargs: object):
    result = parse_files_detailed([str(EXAMPLES)], **kwargs)  # type: ignore[arg-type]
    assert result.issues == [], [str(i) for i in result.issues]
    assert len(result.documents) == 1
    return result


def _task_types(config: dict) -> list[str]:
    nested = config.get("for_each_task", {}).get("task")
    return [config["task_type"], *(_task_types(nested) if nested else [])]


def test_examples_validate_without_variables_and_cover_every_task_type() -> None:
    document = _parse().documents[0]
    assert len(document.modules) >= 4
    used = {t for s in document.sources for t in _task_types(s.transformation_config)}
    assert used == set(TASK_TYPES)


def test_examples_use_every_module_setting_and_every_trigger_kind() -> None:
    modules = _parse().documents[0].modules
    used = {key for m in modules for key in m.settings}
    assert set(MODULE_SETTINGS) <= used
    trigger_kinds = {
        kind for m in modules for kind in m.settings.get("trigger", {}) if kind != "pause_status"
    }
    assert trigger_kinds == {"file_arrival", "table_update", "periodic"}
    assert any("schedule" in m.settings for m in modules)
    assert any("continuous" in m.settings for m in modules)


def test_examples_run_job_names_another_module_and_condition_branches_are_wired() -> None:
    document = _parse().documents[0]
    names = {m.module_name for m in document.modules}
    run_jobs = [s for s in document.sources if s.task_type == "run_job"]
    assert run_jobs and all(s.transformation_config["run_job_task"]["module_name"] in names for s in run_jobs)
    outcomes = {
        d["outcome"]
        for s in document.sources
        for d in s.transformation_config.get("depends_on", [])
        if isinstance(d, dict) and "outcome" in d
    }
    assert outcomes == {"true", "false"}


@pytest.mark.parametrize(
    ("env", "catalog", "retries", "mode"),
    [
        (None, "dev_catalog", 1, None),
        ("dev", "dev_catalog", 1, "development"),
        ("prod", "prod_catalog", 3, "production"),
    ],
)
def test_examples_environments(env: str | None, catalog: str, retries: int, mode: str | None) -> None:
    result = _parse(env=env)
    assert (result.environment.mode if result.environment else None) == mode
    orders = next(s for s in result.documents[0].sources if s.source_id == "orders_ingest")
    assert orders.target_config["catalog"] == catalog
    assert orders.transformation_config["max_retries"] == retries  # whole-string reference keeps int


def test_examples_referenced_files_exist_in_the_repository() -> None:
    document = _parse().documents[0]
    root = "/Workspace/Shared/lakeflow_job_meta/examples/"
    paths = set()
    for source in document.sources:
        config = source.transformation_config
        for candidate in (
            config.get("notebook_path"),
            config.get("sql_task", {}).get("sql_file_path"),
            config.get("for_each_task", {}).get("task", {}).get("notebook_path"),
        ):
            if isinstance(candidate, str) and candidate.startswith(root):
                paths.add(candidate.removeprefix(root))
    assert paths
    for relative in paths:
        on_disk = ROOT / "examples" / relative
        assert on_disk.exists() or on_disk.with_suffix(".ipynb").exists(), relative


def test_every_example_sql_file_is_referenced() -> None:
    text = EXAMPLES.read_text()
    for sql in (ROOT / "examples" / "sql_file_task").glob("*.sql"):
        assert f"sql_file_task/{sql.name}" in text, sql.name

"""The bundle writer: valid against the Databricks bundle JSON schema, deterministic, idempotent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeflow_job_meta.adapters.bundle import (
    MANAGED_MARKER,
    bundle_stem,
    module_of_bundle_path,
    render_bundle,
    resource_key,
    write_bundle,
)
from lakeflow_job_meta.planning.compiler import CompiledJob, compile_module
from tests.bundle_schema import JOB_REF, load_schema, schema_errors
from tests.planning.builders import CTX, example_modules, mod, src


def _compiled(modules=None) -> list[CompiledJob]:
    jobs = []
    for module in modules or example_modules():
        result = compile_module(module, CTX)
        assert result.job is not None, result.issues
        jobs.append(result.job)
    return jobs


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema()


def _validate(instance: Any, schema: dict[str, Any], ref: str | None = None) -> None:
    errors = schema_errors(instance, schema, ref)
    assert not errors, "\n".join(errors[:10])


def test_bundle_validates_against_the_schema(schema: dict[str, Any]) -> None:
    files = render_bundle(_compiled(), "lakeflow_job_meta_etl_control")
    root = yaml.safe_load(files["databricks.yml"])
    _validate(root, schema)
    job_files = [p for p in files if p.endswith(".job.yml")]
    assert len(job_files) == len(example_modules())
    for relpath in job_files:
        document = yaml.safe_load(files[relpath])
        _validate(document, schema)  # a resource file is a bundle configuration root too
        for job in document["resources"]["jobs"].values():
            _validate(job, schema, JOB_REF)


def test_schema_check_catches_api_only_fields(schema: dict[str, Any]) -> None:
    """The check has teeth: the raw API settings (edit_mode) are rejected by the bundle schema."""
    job = _compiled()[0]
    with pytest.raises(AssertionError, match="edit_mode"):
        _validate(job.settings, schema, JOB_REF)


def test_bundle_layout_and_content() -> None:
    files = render_bundle(_compiled(), "b")
    root = yaml.safe_load(files["databricks.yml"])
    assert root == {
        "bundle": {"name": "b"},
        "include": ["resources/*.yml", "targets/*.yml"],
        "targets": {"default": {"default": True}},
    }
    all_types = yaml.safe_load(files["resources/all_types.job.yml"])["resources"]["jobs"]["all_types"]
    tasks = {t["task_key"]: t for t in all_types["tasks"]}
    assert tasks["sql_query_task"]["sql_task"]["file"] == {"path": "sql/all_types/sql_query_task.sql"}
    assert files["resources/sql/all_types/sql_query_task.sql"].endswith("\nSELECT 1")
    assert tasks["run_job_task"]["run_job_task"]["job_id"] == "${resources.jobs.other.id}"
    assert "edit_mode" not in all_types and "format" not in all_types
    assert all_types["queue"] == {"enabled": True}  # stated, as the Databricks CLI does for bundle jobs
    sales = yaml.safe_load(files["resources/sales_daily.job.yml"])["resources"]["jobs"]["sales_daily"]
    assert sales["permissions"] == [
        {"group_name": "analysts", "level": "CAN_VIEW"},
        {"level": "CAN_MANAGE", "user_name": "a@example.com"},
    ]
    for relpath, text in files.items():
        assert MANAGED_MARKER in text.splitlines()[0], relpath


def test_render_is_deterministic() -> None:
    one = render_bundle(_compiled(), "b")
    two = render_bundle(list(reversed(_compiled())), "b")
    assert one == two


def test_second_write_writes_nothing_and_bytes_stay(tmp_path: Path) -> None:
    files = render_bundle(_compiled(), "b")
    first = write_bundle(tmp_path, files)
    assert sorted(first.written) == sorted(files)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    second = write_bundle(tmp_path, render_bundle(_compiled(), "b"))
    assert (second.written, second.deleted) == ([], [])
    assert sorted(second.unchanged) == sorted(files)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert {p: p.stat().st_mtime_ns for p in before} == mtimes


def test_stale_managed_files_are_removed_and_foreign_files_kept(tmp_path: Path) -> None:
    write_bundle(tmp_path, render_bundle(_compiled(), "b"))
    (tmp_path / "resources" / "mine.job.yml").write_text("resources: {}\n", encoding="utf-8")  # user's own
    remaining = [m for m in example_modules() if m.name not in ("all_types", "files")]
    result = write_bundle(tmp_path, render_bundle(_compiled(remaining), "b"), keep_modules={"files"})
    assert sorted(result.deleted) == [
        "resources/all_types.job.yml",
        "resources/sql/all_types/sql_query_task.sql",
    ]
    assert (tmp_path / "resources" / "mine.job.yml").exists()
    assert (tmp_path / "resources" / "files.job.yml").exists()  # kept: module with errors
    assert not (tmp_path / "resources" / "sql" / "all_types").exists()


def test_changed_sql_rewrites_only_that_file(tmp_path: Path) -> None:
    def bundle(sql: str) -> dict[str, str]:
        module = mod("m", src("q", module="m", task_type="sql_query", sql_task={"sql_query": sql}))
        return render_bundle(_compiled([module]), "b")

    write_bundle(tmp_path, bundle("SELECT 1"))
    result = write_bundle(tmp_path, bundle("SELECT 2"))
    assert result.written == ["resources/sql/m/q.sql"]


def test_names_keys_and_paths() -> None:
    assert resource_key("sales_daily") == "sales_daily"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]", resource_key("2024 sales!"))
    assert resource_key("a b") != resource_key("a_b")
    assert bundle_stem("sales daily") != "sales daily"
    assert module_of_bundle_path("resources/sales.job.yml") == "sales"
    assert module_of_bundle_path("resources/sql/sales/q.sql") == "sales"
    assert module_of_bundle_path("databricks.yml") is None
    assert module_of_bundle_path("resources/other.yml") is None

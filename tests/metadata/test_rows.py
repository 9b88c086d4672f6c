"""Rows INSERTed by SQL get the same checks as YAML, located by table and source_id."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.models import ModuleSettings, Source
from lakeflow_job_meta.metadata.rows import module_settings_from_row, source_from_row

TABLE = "main.etl.control"
LOC = f"table {TABLE} source_id=s1"


def row(**overrides: Any) -> dict[str, Any]:
    base = {
        "source_id": "s1",
        "module_name": "m1",
        "source_type": "sql",
        "execution_order": 1,
        "source_config": "{}",
        "target_config": '{"catalog": "bronze"}',
        "transformation_config": json.dumps(
            {"task_type": "sql_query", "sql_task": {"warehouse_id": "w", "sql_query": "SELECT 1"}}
        ),
        "is_active": True,
        "source_file": None,
    }
    return {**base, **overrides}


def test_valid_row_round_trips_through_content_row() -> None:
    source = source_from_row(row(), TABLE)
    assert isinstance(source, Source)
    assert source.target_config == {"catalog": "bronze"}
    assert source.source_file is None
    again = source_from_row(source.content_row(), TABLE)
    assert again == source


def test_null_optional_columns_take_defaults() -> None:
    source = source_from_row(row(source_config=None, target_config=None, is_active=None), TABLE)
    assert isinstance(source, Source)
    assert (source.source_config, source.target_config, source.is_active) == ({}, {}, True)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"transformation_config": "{task_type: sql}"},
            "transformation_config",
            "invalid JSON: Expecting property name enclosed in double quotes",
        ),
        ({"source_config": "{'a': 1}"}, "source_config", "invalid JSON: "),
        ({"target_config": '{"x": NaN}'}, "target_config", "invalid JSON: NaN is not valid JSON"),
        (
            {"transformation_config": '{"task_type": "notebook", "task_type": "sql_query"}'},
            "transformation_config",
            "invalid JSON: duplicate key 'task_type'",
        ),
        ({"transformation_config": None}, "transformation_config", "is required"),
        ({"execution_order": -3}, "execution_order", "must be an integer >= 0"),
        ({"execution_order": None}, "execution_order", "is required"),
        ({"module_name": ""}, "module_name", "is required"),
        ({"source_config": '["a"]'}, "source_config", "must be a mapping"),
        (
            {
                "transformation_config": '{"task_type": "sql_query", "sql_task": {"sql_query": "x", "warehouse": "w"}}'
            },
            "transformation_config.sql_task",
            "unknown field 'warehouse'",
        ),
        (
            {"transformation_config": '{"task_type": "shell"}'},
            "transformation_config.task_type",
            "must be one of: notebook",
        ),
        ({"source_type": 5}, "source_type", "must be a string"),
    ],
)
def test_bad_rows_are_located_by_table_and_source_id(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    issues = source_from_row(row(**overrides), TABLE)
    assert isinstance(issues, list)
    matching = [i for i in issues if i.field == field and message in i.message]
    assert matching, [str(i) for i in issues]
    assert all(i.location == LOC for i in issues)
    assert str(matching[0]).startswith(f"{LOC}: {field}: ")


def test_invalid_json_message_format() -> None:
    issues = source_from_row(row(transformation_config="{"), TABLE)
    assert issues == [
        MetadataIssue(
            LOC,
            "transformation_config",
            "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        )
    ]
    assert str(issues[0]).startswith(f"table {TABLE} source_id=s1: transformation_config: invalid JSON: ")
    assert issues[0].module == "m1"


def test_already_decoded_json_is_accepted() -> None:
    source = source_from_row(
        row(transformation_config={"task_type": "notebook", "notebook_path": "/n"}), TABLE
    )
    assert isinstance(source, Source) and source.task_type == "notebook"


MODULES = "main.etl.control_modules"


def test_module_row() -> None:
    settings = {
        "schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"},
        "tags": {"a": "b"},
    }
    module = module_settings_from_row(
        {"module_name": "m1", "settings": json.dumps(settings), "is_active": None}, MODULES
    )
    assert module == ModuleSettings("m1", settings, True, None)
    assert module_settings_from_row(module.content_row(), MODULES) == module


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ("{oops", "settings", "invalid JSON"),
        ("[1]", "settings", "must be a JSON object"),
        ('{"schedual": {}}', "settings", "unknown field 'schedual' (did you mean 'schedule'?)"),
        ('{"sources": []}', "settings", "unknown field 'sources'"),
        (
            '{"max_concurrent_runs": -1}',
            "settings.max_concurrent_runs",
            "must be an integer between 0 and 1000",
        ),
        ('{"run_as": {}}', "settings.run_as", "must set exactly one of"),
    ],
)
def test_bad_module_rows(settings: str, field: str, message: str) -> None:
    issues = module_settings_from_row({"module_name": "m1", "settings": settings, "is_active": True}, MODULES)
    assert isinstance(issues, list)
    assert any(i.field == field and message in i.message for i in issues), [str(i) for i in issues]
    assert all(i.location == f"table {MODULES} module_name=m1" for i in issues)

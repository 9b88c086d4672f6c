"""Errors all at once, and the same everywhere: a file with three different mistakes (a schema
error, a missing warehouse, an unknown dependency) gets three errors in one run, identical from
`validate`, `load` and `monitor --once`; sorted by file then line number; messages say what they
got; one broken module never invents errors in another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lakeflow_job_meta.errors import MetadataIssue, MetadataValidationError
from lakeflow_job_meta.metadata.loader import parse_document, parse_files
from tests.cli_run import run_cli as _run

THREE_MISTAKES = """\
modules:
  - module_name: sales
    sources:
      - source_id: load
        source_type: notebook
        execution_order: "1"
        transformation_config: {task_type: notebook, notebook_path: /Workspace/nb}
      - source_id: report
        source_type: sql
        execution_order: 2
        transformation_config:
          task_type: sql_query
          sql_task: {sql_query: SELECT 1}
      - source_id: publish
        source_type: notebook
        execution_order: 3
        transformation_config:
          task_type: notebook
          notebook_path: /Workspace/publish
          depends_on: [reprot]
  - module_name: other
    sources:
      - source_id: other_sql
        source_type: sql
        execution_order: 1
        transformation_config:
          task_type: sql_query
          sql_task: {warehouse_id: wh, sql_query: SELECT 1}
"""
EXPECTED = [
    ("6", "modules[0].sources[0].execution_order", 'must be an integer >= 0, got the string "1"'),
    (
        "13",
        "modules[0].sources[1].transformation_config.sql_task.warehouse_id",
        "is required for sql_query tasks (or set default_warehouse_id on the module or for the run)",
    ),
    ("20", "modules[0].sources[2].transformation_config.depends_on[0]", "depends on unknown source 'reprot'"),
]
LINE = re.compile(r"^(?:error: )?(?P<file>.+?):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.*)$")


def _triples(lines: list[str]) -> list[tuple[str, str, str]]:
    found = []
    for text in lines:
        match = LINE.match(text)
        assert match, text
        found.append((match["line"], match["field"], match["message"]))
    return found


def test_three_mistakes_three_errors_the_same_from_validate_load_and_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("deltalake")
    volume = tmp_path / "volume"
    volume.mkdir()
    path = volume / "sales.yaml"
    path.write_text(THREE_MISTAKES)

    code, out, _ = _run(capsys, "validate", str(path), "--json")
    assert code == 1
    from_validate = _triples(
        [f"{e['location']}: {e['field']}: {e['message']}" for e in json.loads(out)["errors"]]
    )

    code, out, err = _run(capsys, "load", str(path), "--control-table", str(tmp_path / "ctl"))
    assert code == 1 and out == ""
    from_load = _triples(err.splitlines())

    code, out, _ = _run(
        capsys, "monitor", "--control-table", str(tmp_path / "ctl"), "--target", f"bundle:{tmp_path / 'b'}",
        "--volume-path", str(volume), "--once", "--json",
    )  # fmt: skip
    assert code == 1
    (rejected,) = json.loads(out)["files"]["rejected"].values()
    from_monitor = _triples(rejected)

    assert from_validate == from_load == from_monitor == EXPECTED


def test_one_broken_module_invents_no_error_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        THREE_MISTAKES.replace(
            "sql_task: {sql_query: SELECT 1}", "sql_task: {warehouse_id: w, sql_query: SELECT 1}"
        )
    )
    _, issues = parse_files([str(path)])
    assert [i.module for i in issues] == ["sales", "sales"]  # nothing about `other`
    # A module declared twice is one error, not warehouse errors in its copies' sources.
    twice = tmp_path / "b.yaml"
    twice.write_text(
        "modules:\n  - module_name: m\n    default_warehouse_id: wh\n    sources: []\n"
        "  - module_name: m\n    sources:\n      - source_id: s\n        source_type: sql\n"
        "        execution_order: 1\n"
        "        transformation_config: {task_type: sql_query, sql_task: {sql_query: SELECT 1}}\n"
    )
    _, issues = parse_files([str(twice)])
    assert [i.message.split(" (")[0] for i in issues] == ["duplicate module 'm'"]


SERVERLESS_PYTHON = (
    "source_id: s\n  source_type: python\n  execution_order: 1\n  transformation_config:\n"
    "    task_type: spark_python\n    spark_python_task: {python_file: /Workspace/s.py}\n"
)


def test_a_serverless_task_whose_module_settings_are_unknown_is_judged_without_them() -> None:
    """Where a serverless task's libraries belong depends on its module's environments: with
    the module declared twice, or in a row-shaped file checked alone, they are not judged (this
    was an AttributeError)."""
    twice = (
        "modules:\n  - module_name: m\n  - module_name: m\n    sources:\n      - "
        + SERVERLESS_PYTHON.replace("\n  ", "\n        ")
    )
    assert [i.message.split(" (")[0] for i in parse_document(twice, "b.yaml").issues] == [
        "duplicate module 'm'"
    ]
    rows = "- module_name: m\n  " + SERVERLESS_PYTHON
    assert parse_document(rows, "r.yaml").issues == []


def test_errors_sort_by_line_number_not_as_text() -> None:
    issues = [
        MetadataIssue("a.yaml:108", "x", "m"),
        MetadataIssue("a.yaml:42", "x", "m"),
        MetadataIssue("a.yaml:9", "x", "m"),
    ]
    assert [i.location for i in MetadataValidationError(issues).issues] == [
        "a.yaml:9",
        "a.yaml:42",
        "a.yaml:108",
    ]


@pytest.mark.parametrize(
    ("value", "got"),
    [("-1", "got -1"), ("true", "got true"), ("[1]", "got a list"), ("null", "got null (nothing)")],
)
def test_messages_say_what_they_got(tmp_path: Path, value: str, got: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "modules:\n  - module_name: m\n    sources:\n      - source_id: s\n        source_type: x\n"
        f"        execution_order: {value}\n"
        "        transformation_config: {task_type: notebook, notebook_path: /n}\n"
    )
    _, issues = parse_files([str(path)])
    assert [i.message for i in issues if i.field.endswith("execution_order")] == [
        f"must be an integer >= 0, {got}"
    ]

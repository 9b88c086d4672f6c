"""YAML in the control table's row shape: a top-level list of sources naming their module."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.metadata.loader import parse_files_detailed

REPO = Path(__file__).resolve().parents[2]
ROWS_EXAMPLE = REPO / "examples" / "control_table_rows.yaml"

ROWS = """\
- source_id: load
  module_name: pipe
  source_type: notebook
  execution_order: 1
  transformation_config: {task_type: notebook, notebook_path: /Workspace/nb/load}
- source_id: other_load
  module_name: other
  source_type: notebook
  execution_order: 0
  transformation_config: {task_type: notebook, notebook_path: /Workspace/nb/other}
- source_id: check
  module_name: pipe
  source_type: sql
  execution_order: 2
  transformation_config:
    task_type: sql_query
    sql_task: {sql_query: SELECT 1}
"""
SETTINGS = """\
modules:
  - module_name: pipe
    default_warehouse_id: wh1
    tags: {team: data}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_rows_example_validates() -> None:
    result = parse_files_detailed([str(ROWS_EXAMPLE)])
    assert result.issues == []
    (document,) = result.documents
    assert {s.module_name for s in document.sources} == {"my_pipeline"}
    assert document.modules == ()  # settings come from elsewhere


def test_rows_group_by_module_with_lines_and_settings_from_another_file(tmp_path: Path) -> None:
    rows = _write(tmp_path, "rows.yaml", ROWS)
    result = parse_files_detailed([rows, _write(tmp_path, "settings.yaml", SETTINGS)])
    assert result.issues == []
    sources = {s.source_id: s for d in result.documents for s in d.sources}
    assert {k: (s.module_name, s.line) for k, s in sources.items()} == {
        "load": ("pipe", 1),
        "other_load": ("other", 6),
        "check": ("pipe", 11),
    }
    assert sources["check"].source_file == rows


def test_errors_name_the_files_rows_and_lines(tmp_path: Path) -> None:
    text = ROWS.replace("execution_order: 0", 'execution_order: "0"').replace(
        "task_type: sql_query\n", "task_type: sql_query\n    depends_on: [nowhere]\n"
    )
    rows = _write(tmp_path, "rows.yaml", text)
    # One pass: the schema error and the semantic ones of the other rows, by row and line.
    assert [str(i) for i in parse_files_detailed([rows]).issues] == [
        f'{rows}:9: [1].execution_order: must be an integer >= 0, got the string "0"',
        # (no warehouse check: a row file's module settings live elsewhere)
        f"{rows}:17: [2].transformation_config.depends_on[0]: depends on unknown source 'nowhere'",
    ]
    # Without the schema error, the semantic ones are located the same way.
    rows = _write(tmp_path, "rows2.yaml", text.replace('execution_order: "0"', "execution_order: 0"))
    issues = [str(i) for i in parse_files_detailed([rows]).issues]
    assert (
        f"{rows}:17: [2].transformation_config.depends_on[0]: depends on unknown source 'nowhere'" in issues
    )
    assert any(
        i.startswith(f"{rows}:18: [2].transformation_config.sql_task.warehouse_id: is required")
        for i in issues
    )
    assert not any("modules[" in i for i in issues)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("- source_id: a\n  source_type: x\n  execution_order: 1\n"
         "  transformation_config: {task_type: notebook, notebook_path: /Workspace/a}\n", "[0].module_name"),
        ("- 42\n", "[0]"),
    ],
)  # fmt: skip
def test_a_row_without_a_module_is_reported(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    issues = parse_files_detailed([path]).issues
    assert [i.field for i in issues] == [field]
    assert issues[0].location == f"{path}:1"


def test_rows_load_into_the_control_table_and_compile_with_settings(tmp_path: Path) -> None:
    pytest.importorskip("deltalake")
    from lakeflow_job_meta import JobOrchestrator, MetadataManager

    table = str(tmp_path / "ctl")
    manager = MetadataManager(table)
    manager.load_yaml(_write(tmp_path, "settings.yaml", SETTINGS))
    manager.load_yaml(_write(tmp_path, "rows.yaml", ROWS))
    job = JobOrchestrator(table, target=f"bundle:{tmp_path / 'b'}").compile_one("pipe")
    assert job.settings["tags"]["team"] == "data"
    assert [t["task_key"] for t in job.settings["tasks"]] == ["check", "load"]
    check = next(t for t in job.settings["tasks"] if t["task_key"] == "check")
    assert check["sql_task"]["warehouse_id"] == "wh1"

"""Entry points: documents, lines, cross-file and SQL-row checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.errors import ConfigurationError, MetadataIssue
from lakeflow_job_meta.metadata.loader import parse_document, parse_files, parse_files_detailed, validate_all
from lakeflow_job_meta.metadata.models import ModuleSettings, Source

ONE = """\
modules:
  - module_name: sales
    is_active: true
    tags: {team: a}
    sources:
      - source_id: orders
        source_type: sql
        execution_order: 1
        transformation_config:
          task_type: sql_query
          sql_task: {sql_query: SELECT 1}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_document_models_carry_file_and_line() -> None:
    result = parse_document(ONE, "metadata/sales.yaml", default_warehouse_id="wh")
    assert result.issues == []
    document = result.document
    assert document is not None and document.path == "metadata/sales.yaml"
    (module,) = document.modules
    assert module == ModuleSettings("sales", {"tags": {"team": "a"}}, True, "metadata/sales.yaml")
    assert module.line == 2
    (source,) = document.sources
    assert (source.module_name, source.source_file, source.line, source.is_active) == (
        "sales",
        "metadata/sales.yaml",
        6,
        True,
    )


def test_bytes_and_text_parse_the_same() -> None:
    as_text = parse_document(ONE, "a.yaml", default_warehouse_id="wh")
    as_bytes = parse_document(
        b"\xef\xbb\xbf" + ONE.encode(), "a.yaml", default_warehouse_id="wh"
    )  # BOM tolerated
    assert as_text.document == as_bytes.document


def test_semantic_issues_keep_the_document() -> None:
    result = parse_document(ONE, "metadata/sales.yaml")
    assert result.document is not None
    assert [str(i) for i in result.issues] == [
        "metadata/sales.yaml:11: modules[0].sources[0].transformation_config.sql_task.warehouse_id: "
        "is required for sql_query tasks (or set default_warehouse_id on the module or for the run)"
    ]
    assert result.issues[0].module == "sales"


def test_schema_issue_message_format_from_the_brief() -> None:
    text = ONE.replace("execution_order: 1", "execution_order: -2")
    result = parse_document(text, "metadata/sales.yaml")
    assert result.document is None
    assert [str(i) for i in result.issues] == [
        "metadata/sales.yaml:8: modules[0].sources[0].execution_order: must be an integer >= 0, got -2"
    ]
    assert result.issues[0].module == "sales"


def test_duplicate_source_across_files_names_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", ONE)
    second = write(tmp_path, "b.yaml", ONE.replace("module_name: sales", "module_name: other"))
    documents, issues = parse_files([first, second], default_warehouse_id="wh")
    assert len(documents) == 2
    assert [str(i) for i in issues] == [
        f"{second}:6: modules[0].sources[0]: duplicate source_id 'orders' (also at {first}:6)"
    ]


def test_duplicate_module_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", ONE)
    second = write(tmp_path, "b.yaml", "modules:\n  - module_name: sales\n")
    _, issues = parse_files([first, second], default_warehouse_id="wh")
    assert [str(i) for i in issues] == [
        f"{second}:2: modules[0]: duplicate module 'sales' (also at {first}:2)"
    ]


def test_run_job_may_name_a_module_of_another_file(tmp_path: Path) -> None:
    runner = """\
modules:
  - module_name: umbrella
    sources:
      - source_id: run_sales
        source_type: job
        execution_order: 1
        transformation_config: {task_type: run_job, run_job_task: {module_name: sales}}
"""
    alone = write(tmp_path, "u.yaml", runner)
    _, issues = parse_files([alone])
    assert [i.message for i in issues] == ["names unknown module 'sales'"]
    _, issues = parse_files([alone, write(tmp_path, "s.yaml", ONE)], default_warehouse_id="wh")
    assert issues == []


def test_yaml_clashing_with_sql_row_is_blamed_on_the_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", ONE)
    sql_row = Source(
        "orders", "legacy", "sql", 1, transformation_config={"task_type": "notebook", "notebook_path": "/n"}
    )
    _, issues = parse_files(
        [path], default_warehouse_id="wh", extra_sources=[sql_row], control_table="main.etl.ctl"
    )
    assert [str(i) for i in issues] == [
        f"{path}:6: modules[0].sources[0]: source_id 'orders' already exists in table main.etl.ctl (inserted by SQL); "
        "YAML never overwrites such rows"
    ]


def test_dependency_on_a_sql_row_is_resolved(tmp_path: Path) -> None:
    text = ONE + "          depends_on: [sql_step]\n"
    path = write(tmp_path, "a.yaml", text)
    sql_row = Source(
        "sql_step", "sales", "sql", 0, transformation_config={"task_type": "notebook", "notebook_path": "/n"}
    )
    _, issues = parse_files([path], default_warehouse_id="wh")
    assert [i.message for i in issues] == ["depends on unknown source 'sql_step'"]
    assert issues[0].location == f"{path}:12"
    _, issues = parse_files([path], default_warehouse_id="wh", extra_sources=[sql_row])
    assert issues == []


def test_override_declared_nowhere_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "variables:\n  wh: {default: x}\n" + ONE)
    with pytest.raises(
        ConfigurationError, match="--var: wharehouse: is not declared under variables in any file"
    ):
        parse_files([path], {"wh": "y", "wharehouse": "z"}, default_warehouse_id="wh")
    # A file that could not be read that far may declare it: then it is one issue among others.
    broken = write(tmp_path, "b.yaml", "variables: [\n")
    _, issues = parse_files([path, broken], {"wharehouse": "z"}, default_warehouse_id="wh")
    assert "--var: wharehouse: is not declared under variables in any file" in [str(i) for i in issues]


def test_environment_mode_must_agree_across_files(tmp_path: Path) -> None:
    prod = write(tmp_path, "a.yaml", "environments: {prod: {mode: production}}\nmodules: []\n")
    dev = write(tmp_path, "b.yaml", "environments: {prod: {}}\nmodules: []\n")
    result = parse_files_detailed([prod, dev], env="prod")
    assert [str(i) for i in result.issues] == [
        f"{dev}:1: environments.prod.mode: is development here but production in {prod}"
    ]
    assert result.environment is not None and result.environment.mode == "production"


def test_oversize_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"modules: []\n" + b"#" * 2_000_000)
    documents, issues = parse_files([str(path)])
    assert documents == []
    assert [str(i) for i in issues] == [f"{path}:1: file is 1.9 MiB (2000012 bytes), over the limit of 1 MiB"]


def test_validate_all_locates_sql_rows_by_table() -> None:
    rows = [
        Source(
            "a",
            "m",
            "sql",
            1,
            transformation_config={"task_type": "sql_query", "sql_task": {"sql_query": "x"}},
        ),
        Source(
            "b",
            "m",
            "sql",
            2,
            transformation_config={"task_type": "notebook", "notebook_path": "/n", "depends_on": ["a", "c"]},
        ),
        Source("c", "m", "sql", 3, transformation_config={"task_type": "notebook", "notebook_path": "/n"}),
    ]
    issues = validate_all(rows, [], control_table="cat.sch.ctl")
    assert [str(i) for i in issues] == [
        "table cat.sch.ctl source_id=a: transformation_config.sql_task.warehouse_id: is required for sql_query tasks "
        "(or set default_warehouse_id on the module or for the run)",
        "table cat.sch.ctl source_id=b: transformation_config.depends_on: dependency cycle: b -> c -> b (each waits for the next)",
    ]
    assert {i.module for i in issues} == {"m"}
    # The run-wide default and a module default both satisfy the warehouse check.
    assert len(validate_all(rows, [], default_warehouse_id="wh")) == 1
    assert len(validate_all(rows, [ModuleSettings("m", {"default_warehouse_id": "wh"})])) == 1


def test_validate_all_module_rows_and_duplicate_sql_rows() -> None:
    settings = ModuleSettings("m", {"schedule": {"quartz_cron_expression": "bad", "timezone_id": "UTC"}})
    row = Source("a", "m", "sql", 1, transformation_config={"task_type": "notebook", "notebook_path": "/n"})
    issues = validate_all([row, row], [settings], control_table="ctl")
    assert [str(i) for i in issues] == [
        "table ctl source_id=a: source_id 'a' appears in 2 rows",
        "table ctl_modules module_name=m: settings.schedule.quartz_cron_expression: invalid Quartz cron expression: "
        "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), got 1",
    ]


def test_validate_all_checks_execution_order_of_unvalidated_sources() -> None:
    bad = Source(
        "a", "m", "sql", True, transformation_config={"task_type": "notebook", "notebook_path": "/n"}
    )  # type: ignore[arg-type]
    assert validate_all([bad], []) == [
        MetadataIssue("table control_table source_id=a", "execution_order", "must be an integer >= 0")
    ]


def test_validate_all_without_locator_uses_the_source_line() -> None:
    yaml_source = Source(
        "a",
        "m",
        "sql",
        1,
        transformation_config={"task_type": "notebook", "notebook_path": "x"},
        source_file="/abs/a.yaml",
        line=7,
    )
    (issue,) = validate_all([yaml_source], [])
    assert (issue.location, issue.field) == ("/abs/a.yaml:7", "transformation_config.notebook_path")


def test_inactive_module_and_sources_are_still_parsed() -> None:
    text = ONE.replace("is_active: true", "is_active: false").replace(
        "execution_order: 1", "execution_order: 1\n        is_active: false"
    )
    result = parse_document(text, "a.yaml", default_warehouse_id="wh")
    assert result.issues == []
    assert result.document is not None
    assert result.document.modules[0].is_active is False
    assert result.document.sources[0].is_active is False


REFERENCES_ELSEWHERE = """\
modules:
  - module_name: umbrella
    sources:
      - source_id: run_other
        source_type: job
        execution_order: 1
        transformation_config: {task_type: run_job, run_job_task: {module_name: elsewhere}}
      - source_id: wait
        source_type: x
        execution_order: 2
        transformation_config: {task_type: notebook, notebook_path: /n, depends_on: [sql_row]}
"""


def test_single_document_leaves_outside_references_to_the_whole_set(tmp_path: Path) -> None:
    # 'elsewhere' and 'sql_row' may exist in another file or the table: not this file's fault alone.
    result = parse_document(REFERENCES_ELSEWHERE, "a.yaml")
    assert result.document is not None and result.issues == []
    path = write(tmp_path, "a.yaml", REFERENCES_ELSEWHERE)
    _, issues = parse_files([path])
    assert [(i.location, i.message) for i in issues] == [
        (f"{path}:7", "names unknown module 'elsewhere'"),
        (f"{path}:11", "depends on unknown source 'sql_row'"),
    ]
    sql_row = Source(
        "sql_row", "umbrella", "x", 0, transformation_config={"task_type": "notebook", "notebook_path": "/n"}
    )
    other = ModuleSettings("elsewhere")
    assert validate_all([*result.document.sources, sql_row], [*result.document.modules, other]) == []

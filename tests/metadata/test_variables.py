from __future__ import annotations

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.loader import parse_document
from lakeflow_job_meta.metadata.variables import EnvironmentSelection, parse_var_args

DOC = """\
variables:
  wh: {default: default-wh}
  retries: {default: 2}
  flag: {default: false}
  ratio: {default: 0.5}
  catalog: {default: main}
  schema: {default: "${var.catalog}_bronze"}
  cluster: {default: {spark_version: 15.4.x, num_workers: 1}}
environments:
  dev:
    variables: {wh: dev-wh}
  prod:
    mode: production
    variables: {wh: prod-wh, retries: 5}
modules:
  - module_name: "m_${var.catalog}"
    job_clusters:
      - job_cluster_key: c
        new_cluster: "${var.cluster}"
    parameters: [{name: note, default: "retries=${var.retries} flag=${var.flag}"}, {name: literal, default: "${bundle.target} {{job.id}}"}]
    sources:
      - source_id: q
        source_type: sql
        execution_order: 1
        target_config: {schema: "${var.schema}", ratio: "${var.ratio}"}
        transformation_config:
          task_type: sql_query
          max_retries: "${var.retries}"
          retry_on_timeout: "${var.flag}"
          sql_task: {warehouse_id: "${var.wh}", sql_query: "SELECT '${var.wh}'"}
"""


def _parse(**kwargs: object):
    result = parse_document(DOC, "vars.yaml", **kwargs)  # type: ignore[arg-type]
    assert result.issues == [], [str(i) for i in result.issues]
    assert result.document is not None
    return result, result.document.sources[0], result.document.modules[0]


@pytest.mark.parametrize(
    ("env", "overrides", "expected_wh", "expected_retries"),
    [
        (None, None, "default-wh", 2),
        ("dev", None, "dev-wh", 2),
        ("prod", None, "prod-wh", 5),
        ("prod", {"wh": "cli-wh"}, "cli-wh", 5),
        (None, {"wh": "cli-wh", "retries": "7"}, "cli-wh", 7),
    ],
)
def test_precedence_default_then_environment_then_overrides(
    env, overrides, expected_wh, expected_retries
) -> None:
    _, source, _ = _parse(env=env, variables=overrides)
    assert source.transformation_config["sql_task"]["warehouse_id"] == expected_wh
    assert source.transformation_config["sql_task"]["sql_query"] == f"SELECT '{expected_wh}'"
    assert source.transformation_config["max_retries"] == expected_retries


def test_whole_string_reference_keeps_type_and_embedded_renders_text() -> None:
    _, source, module = _parse()
    assert source.transformation_config["max_retries"] == 2
    assert source.transformation_config["retry_on_timeout"] is False
    assert source.target_config["ratio"] == 0.5
    assert module.settings["job_clusters"][0]["new_cluster"] == {"spark_version": "15.4.x", "num_workers": 1}
    assert module.settings["parameters"][0]["default"] == "retries=2 flag=false"
    assert module.module_name == "m_main"


def test_other_references_are_left_alone() -> None:
    _, _, module = _parse()
    assert module.settings["parameters"][1]["default"] == "${bundle.target} {{job.id}}"


def test_variables_may_reference_variables() -> None:
    _, source, _ = _parse(variables={"catalog": "sales"})
    assert source.target_config["schema"] == "sales_bronze"


def test_override_is_typed_like_the_default() -> None:
    _, source, _ = _parse(variables={"flag": "TRUE", "retries": "3", "ratio": "2.5"})
    assert source.transformation_config["retry_on_timeout"] is True
    assert source.transformation_config["max_retries"] == 3
    assert source.target_config["ratio"] == 2.5


def test_override_that_does_not_parse_stays_text_and_the_schema_reports_it() -> None:
    result = parse_document(DOC, "vars.yaml", variables={"retries": "many"})
    assert result.document is None
    assert [str(i) for i in result.issues] == [
        'vars.yaml:28: modules[0].sources[0].transformation_config.max_retries: must be an integer >= -1, got the string "many"'
    ]


@pytest.mark.parametrize(("env", "mode"), [(None, None), ("dev", "development"), ("prod", "production")])
def test_environment_selection(env: str | None, mode: str | None) -> None:
    result, _, _ = _parse(env=env)
    assert result.environment == (EnvironmentSelection(env, mode) if env else None)


def test_unknown_environment_in_file_without_environments() -> None:
    result = parse_document("modules: []\n", "plain.yaml", env="prod")
    assert [str(i) for i in result.issues] == [
        "plain.yaml:1: environment 'prod' is not defined (this file has no environments section)"
    ]


def test_reference_loop_is_reported_at_the_variable() -> None:
    text = 'variables:\n  a: {default: "${var.b}"}\n  b: {default: "x${var.a}"}\nmodules:\n  - module_name: "${var.a}"\n'
    result = parse_document(text, "loop.yaml")
    assert result.document is None
    assert any(
        i.location == "loop.yaml:2" and "refers to itself" in i.message and i.field == "variables.a.default"
        for i in result.issues
    ), [str(i) for i in result.issues]


def test_mapping_variable_inside_text_is_an_issue() -> None:
    text = "variables:\n  c: {default: {a: 1}}\nmodules:\n  - module_name: m\n    description: 'cluster ${var.c}'\n"
    result = parse_document(text, "c.yaml")
    assert [str(i) for i in result.issues] == [
        "c.yaml:5: modules[0].description: variable 'c' holds a mapping; use it as the whole value, not inside text"
    ]
    assert result.issues[0].module == "m"  # so the engine can skip just this module


def test_variables_are_not_substituted_outside_modules() -> None:
    text = 'variables:\n  a: {default: x, description: "${var.undefined}"}\nmodules: []\n'
    assert parse_document(text, "d.yaml").issues == []


def test_parse_var_args() -> None:
    assert parse_var_args(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    assert parse_var_args([]) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["novalue"], "expected NAME=VALUE"),
        (["=x"], "variable name"),
        (["1a=x"], "variable name"),
        (["a=1", "a=2"], "more than once"),
    ],
)
def test_parse_var_args_rejects_bad_forms(args: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_var_args(args)

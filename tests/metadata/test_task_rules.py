"""Task rules the compiler used to check a second time: validation (schema + semantic checks)
catches each, on rows INSERTed by SQL as well as in YAML files (the corpus in test_bad_inputs.py
gives the file:line of each), so the compiler only translates valid modules."""

from __future__ import annotations

from typing import Any

import pytest

from lakeflow_job_meta.metadata.loader import validate_all
from lakeflow_job_meta.metadata.models import Source
from lakeflow_job_meta.metadata.rows import source_from_row
from tests.planning.builders import src

TABLE = "main.meta.etl_control"


def row_issues(*sources: Source) -> list[str]:
    """Every issue of these sources read back from the control table, as the manager gets them."""
    parsed = [source_from_row(s.content_row(), TABLE) for s in sources]
    found = [i for p in parsed if isinstance(p, list) for i in p]
    valid = [p for p in parsed if isinstance(p, Source)]
    found += validate_all(valid, [], default_warehouse_id="wh", control_table=TABLE)
    return [str(i) for i in found]


def at(source_id: str, text: str) -> str:
    return f"table {TABLE} source_id={source_id}: {text}"


DEPENDS = "transformation_config.depends_on"


@pytest.mark.parametrize(
    ("depends_on", "expected"),
    [
        (["nope"], [f"{DEPENDS}[0]: depends on unknown source 'nope'"]),
        (["off"], [f"{DEPENDS}[0]: depends on inactive source 'off'"]),
        (["b"], [f"{DEPENDS}: dependency cycle: b -> b (each waits for the next)"]),
        (
            [{"source_id": "a", "outcome": "true"}],
            [f"{DEPENDS}[0]: outcome is only allowed on a condition task, and 'a' is a notebook task"],
        ),
        (
            [{"source_id": "a", "outcome": "maybe"}],
            [f'{DEPENDS}[0].outcome: must be one of: "true", "false", got the string "maybe"'],
        ),
        ("a", [f'{DEPENDS}: must be a list, got the string "a"']),
        (
            [{"sourceid": "a"}],
            [
                f"{DEPENDS}[0]: unknown field 'sourceid' (did you mean 'source_id'?)",
                f"{DEPENDS}[0].source_id: is required",
            ],
        ),
    ],
)
def test_bad_depends_on_is_a_validation_issue(depends_on: Any, expected: list[str]) -> None:
    found = row_issues(src("a", 1), src("off", 1, active=False), src("b", 2, depends_on=depends_on))
    assert found == [at("b", e) for e in expected]


TC = "transformation_config"
RUN_IFS = "ALL_SUCCESS, ALL_DONE, NONE_FAILED, AT_LEAST_ONE_SUCCESS, ALL_FAILED, AT_LEAST_ONE_FAILED"
OPS = "EQUAL_TO, NOT_EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL"
INNER_TYPES = (
    "notebook, sql_query, sql_file, python_wheel, spark_python, spark_jar, pipeline, run_job, dbt, condition"
)


@pytest.mark.parametrize(
    ("tc", "expected"),
    [
        (
            {"task_type": "sql_query", "sql_task": {"sql_query": ""}},
            [f"{TC}.sql_task.sql_query: must not be empty"],
        ),
        (
            {"task_type": "sql_query", "sql_task": {"sql_qeury": "x"}},
            [
                f"{TC}.sql_task: unknown field 'sql_qeury' (did you mean 'sql_query'?)",
                f"{TC}.sql_task.sql_query: is required",
            ],
        ),
        (
            {"task_type": "notebook", "run_if": "SOMETIMES"},
            [f'{TC}.run_if: must be one of: {RUN_IFS}, got the string "SOMETIMES"'],
        ),
        (
            {"task_type": "notebook", "timeout_seconds": "10"},
            [f'{TC}.timeout_seconds: must be an integer >= 0, got the string "10"'],
        ),
        (
            {"task_type": "condition", "condition_task": {"op": "LIKE", "left": "a", "right": "b"}},
            [f'{TC}.condition_task.op: must be one of: {OPS}, got the string "LIKE"'],
        ),
        (
            {"task_type": "run_job", "run_job_task": {"job_id": 1, "module_name": "x"}},
            [f"{TC}.run_job_task: must set exactly one of: module_name, job_id"],
        ),
        ({"task_type": "dbt", "dbt_task": {"commands": []}}, [f"{TC}.dbt_task.commands: must not be empty"]),
        (
            {"task_type": "for_each", "for_each_task": {"inputs": "[1]", "task": {"task_type": "for_each"}}},
            [f'{TC}.for_each_task.task.task_type: must be one of: {INNER_TYPES}, got the string "for_each"'],
        ),
        (
            {"task_type": "pipeline", "pipeline_task": {"pipeline_id": "p", "full_refresh": "yes"}},
            [f'{TC}.pipeline_task.full_refresh: must be true or false, got the string "yes"'],
        ),
    ],
)
def test_bad_task_is_a_validation_issue(tc: dict[str, Any], expected: list[str]) -> None:
    assert row_issues(src("a", **tc)) == [at("a", e) for e in expected]


@pytest.mark.parametrize(
    "orders_and_depends",
    [((0, None), (0, None)), ((0, None), (1, None)), ((1, None), (0, None)), ((0, None), (0, ["_"]))],
    ids=["same-order", "dot-after", "dot-first", "dot-depends-on-underscore"],
)
def test_a_task_key_collision_is_one_issue_never_a_false_cycle(orders_and_depends: Any) -> None:
    """Ids "_" and "." both become task key "_": one broken thing, one message. Dependencies are
    resolved by source_id, so "." waiting for "_" is no cycle "_ -> _"."""
    (order_u, deps_u), (order_d, deps_d) = orders_and_depends
    extra_u = {} if deps_u is None else {"depends_on": deps_u}
    extra_d = {} if deps_d is None else {"depends_on": deps_d}
    found = row_issues(src("_", order_u, **extra_u), src(".", order_d, **extra_d))
    assert found == [
        at(
            ".",
            "source_id: source_id '.' becomes task key '_', like source '_' at "
            f"table {TABLE} (inserted by SQL); rename one",
        )
    ]

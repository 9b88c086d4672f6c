"""The reference's SQL query example (``examples/sql_query_task/``): wired into the examples as
an inline ``sql_query`` equal to the file, and runnable on local Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
QUALITY_CHECK = REPO / "examples" / "sql_query_task" / "01_data_quality_check.sql"


def _statement(sql: str) -> str:
    """The query without its leading comment block or trailing whitespace."""
    lines = sql.strip().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def _inline_queries() -> dict[str, str]:
    document = yaml.safe_load((REPO / "examples" / "metadata_examples.yaml").read_text())
    return {
        s["source_id"]: s["transformation_config"]["sql_task"]["sql_query"]
        for m in document["modules"]
        for s in m["sources"]
        if s["transformation_config"]["task_type"] == "sql_query"
    }


def test_quality_check_is_the_inline_query_of_the_examples() -> None:
    assert _statement(_inline_queries()["customers_quality_check"]) == _statement(QUALITY_CHECK.read_text())


@pytest.mark.spark
@pytest.mark.parametrize(
    ("emails", "expected"), [(["a@x", "b@x", "c@x"], "pass"), (["a@x", None, None], "fail")]
)
def test_quality_check_runs_on_spark(spark: Any, emails: list, expected: str) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS spark_catalog.bronze")
    spark.sql("DROP TABLE IF EXISTS spark_catalog.bronze.customers")
    rows = [(f"c{i}", email, "NL") for i, email in enumerate(emails)]
    spark.createDataFrame(rows, "customer_id STRING, email STRING, country STRING").write.format(
        "delta"
    ).saveAsTable("spark_catalog.bronze.customers")
    query = _statement(QUALITY_CHECK.read_text()).rstrip(";")
    # The SQL task binds :catalog and :threshold on Databricks. Local Spark 4.2 with the Delta
    # extension leaves parameter markers unbound (docs/STORAGE.md), so the test puts in the values
    # the task would bind, as SQL literals.
    for name, literal in {"catalog": "'spark_catalog'", "threshold": "'5.0'"}.items():
        query = query.replace(f":{name}", literal)
    row = spark.sql(query).first()
    assert row.row_count == 3
    assert row.status == expected

"""Issue 17: from a laptop, a ``catalog.schema.table`` control table is reached through Databricks
Connect when it is installed, and the message without Spark says so (it said to install pyspark,
which cannot reach Unity Catalog)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from tests.cli_run import run_cli


def _fake_connect(monkeypatch: pytest.MonkeyPatch, session: Any) -> list[str]:
    """A stand-in ``databricks.connect`` module whose builder returns ``session``."""
    calls: list[str] = []

    class Builder:
        def getOrCreate(self) -> Any:
            calls.append("getOrCreate")
            return session

    class DatabricksSession:
        builder = Builder()

    module = types.ModuleType("databricks.connect")
    module.DatabricksSession = DatabricksSession  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "databricks.connect", module)
    return calls


def test_databricks_connect_is_used_outside_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    from lakeflow_job_meta.storage.spark import active_session

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setattr(pyspark_sql.SparkSession, "getActiveSession", staticmethod(lambda: None))
    remote = object()
    calls = _fake_connect(monkeypatch, remote)
    assert active_session() is remote and calls == ["getOrCreate"]

    # Inside the Databricks Runtime the runtime's own session wins, never Connect.
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    monkeypatch.setattr(pyspark_sql.SparkSession, "getActiveSession", staticmethod(lambda: "cluster"))
    assert active_session() == "cluster" and calls == ["getOrCreate"]


def test_init_on_a_catalog_table_without_spark_names_databricks_connect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("pyspark", "pyspark.sql", "pyspark.sql.types"):
        monkeypatch.setitem(sys.modules, name, None)  # as if pyspark were not installed
    code, out, err = run_cli(capsys, "init", "--control-table", "main.ops.etl_control")
    assert code == 2 and out == ""
    assert "pip install databricks-connect" in err and "DATABRICKS_SERVERLESS_COMPUTE_ID=auto" in err
    assert "cannot reach Unity Catalog" in err

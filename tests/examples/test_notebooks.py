"""The example notebooks, executed as far as they run off Databricks.

- ``notebook_task/sample_ingestion_notebook.ipynb``: every cell up to Auto Loader, on local Spark
  with the examples loaded into a control table; the row lookup must bind ``source_id`` as a
  value (a quote in it finds nothing instead of changing the query).
- ``orchestrator_example.ipynb``: all of it, with a local control table and the workspace target
  pointed at the Jobs API emulator through ``DATABRICKS_HOST``.
- ``monitor_notebook.py``: all of it (one cycle), the same way.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.metadata.loader import parse_files_detailed
from lakeflow_job_meta.metadata.models import CONTROL_COLUMNS
from tests.example_files import EXAMPLE_MODULES
from tests.notebooks import NotebookExit, run_notebook, runnable_cells

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SAMPLE = EXAMPLES / "notebook_task" / "sample_ingestion_notebook.ipynb"
ORCHESTRATOR = EXAMPLES / "orchestrator_example.ipynb"
MONITOR = EXAMPLES / "monitor_notebook.py"
CONTROL_TABLE = "spark_catalog.default.etl_control"
TOKEN = "dapi-notebook-test"


@pytest.fixture(scope="module")
def control_table(spark: Any) -> str:
    """The examples' rows in a Spark table shaped like the control table's reference columns."""
    result = parse_files_detailed([str(EXAMPLES / "metadata_examples.yaml")])
    assert result.issues == []
    rows = [{c: s.content_row()[c] for c in CONTROL_COLUMNS} for s in result.documents[0].sources]
    schema = (
        "source_id STRING, module_name STRING, source_type STRING, execution_order INT, "
        "source_config STRING, target_config STRING, transformation_config STRING, is_active BOOLEAN"
    )
    spark.sql(f"DROP TABLE IF EXISTS {CONTROL_TABLE}")
    spark.createDataFrame(rows, schema).write.format("delta").saveAsTable(CONTROL_TABLE)
    return CONTROL_TABLE


def test_sample_notebook_marks_its_databricks_only_part() -> None:
    runnable, databricks_only = runnable_cells(SAMPLE)
    assert len(runnable) == 2
    assert "cloudFiles" in "".join(databricks_only)
    assert "cloudFiles" not in "".join(runnable)


@pytest.mark.spark
def test_sample_notebook_reads_its_row(spark: Any, control_table: str) -> None:
    namespace, _ = run_notebook(
        SAMPLE, {"source_id": "orders_ingest", "control_table": control_table}, spark=spark
    )
    assert namespace["target"] == "dev_catalog.bronze.orders"
    assert namespace["source_config"] == {"format": "json", "path": "/Volumes/raw/sales/orders/"}
    assert namespace["load_mode"] == "incremental"


@pytest.mark.spark
def test_sample_notebook_binds_source_id_as_a_value(spark: Any, control_table: str) -> None:
    with pytest.raises(ValueError, match="not found in"):
        run_notebook(SAMPLE, {"source_id": "x' OR '1'='1", "control_table": control_table}, spark=spark)


@pytest.mark.spark
def test_sample_notebook_exits_for_an_inactive_source(spark: Any, control_table: str) -> None:
    with pytest.raises(NotebookExit, match="customers_quality_check is inactive"):
        run_notebook(
            SAMPLE, {"source_id": "customers_quality_check", "control_table": control_table}, spark=spark
        )


def test_sample_notebook_requires_its_parameters() -> None:
    with pytest.raises(ValueError, match="required"):
        run_notebook(SAMPLE, {"source_id": "orders_ingest"}, spark=None)


@pytest.fixture
def workspace(jobs_emulator, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABRICKS_HOST", jobs_emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    return jobs_emulator


@pytest.fixture
def loaded_local_table(tmp_path: Path) -> str:
    pytest.importorskip("deltalake")
    from lakeflow_job_meta import MetadataManager

    table = str(tmp_path / "etl_control")
    MetadataManager(table).load_yaml(str(EXAMPLES / "metadata_examples.yaml"))
    return table


def test_orchestrator_notebook_creates_the_jobs(workspace, loaded_local_table: str, capsys) -> None:
    namespace, _ = run_notebook(ORCHESTRATOR, {"control_table": loaded_local_table})
    assert namespace["auto_run"] is False
    names = {workspace.job(i)["settings"]["name"] for i in workspace.jobs()}
    assert names == EXAMPLE_MODULES
    out = capsys.readouterr().out
    assert "sales_daily create" in out


@pytest.fixture
def restore_signal_handlers() -> Iterator[None]:
    """The monitor notebook installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_monitor_notebook_runs_one_cycle(workspace, loaded_local_table: str, restore_signal_handlers) -> None:
    run_notebook(
        MONITOR,
        {"control_table": loaded_local_table, "max_iterations": "1", "check_interval_seconds": "1"},
    )
    assert len(workspace.jobs()) == 5


def test_monitor_notebook_requires_a_control_table() -> None:
    with pytest.raises(ValueError, match="control_table"):
        run_notebook(MONITOR, {"max_iterations": "1"})

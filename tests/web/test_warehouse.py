"""The status page as the Databricks App reads it: through a SQL warehouse. The warehouse is the
far edge, so it is stood in for by DataFusion (delta-rs' SQL engine) over real local Delta
tables: the adapter's own SQL (``DESCRIBE HISTORY``, ``SELECT`` of quoted names) runs for real
and its text results are converted back into rows, as the statement execution API returns
them (``JSON_ARRAY``: every value a string)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lakeflow_job_meta.adapters.sql_warehouse import WarehouseTable, warehouse_tables
from lakeflow_job_meta.errors import StorageError, TableNotFoundError
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.web.pages import Filters
from lakeflow_job_meta.web.serve import build_source
from lakeflow_job_meta.wiring import RunSettings, build_manager, build_parts
from tests.example_files import EXAMPLE_MODULES, EXAMPLES

deltalake = pytest.importorskip("deltalake")
pa = pytest.importorskip("pyarrow")

CONTROL = "main.ops.etl_control"
_SELECT = re.compile(r"^SELECT (?P<columns>.+) FROM `main`\.`ops`\.`(?P<table>\w+)`$")
_HISTORY = re.compile(r"^DESCRIBE HISTORY `main`\.`ops`\.`(?P<table>\w+)` LIMIT (?P<limit>\d+)$")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LocalWarehouse:
    """Answers the adapter's statements from local tables named ``<root>/<table>``."""

    def __init__(self, root: Path):
        self.root = root
        self.statements: list[str] = []

    def __call__(self, statement: str) -> tuple[list[str], list[list[str | None]]]:
        self.statements.append(statement)
        found = _HISTORY.match(statement) or _SELECT.match(statement)
        assert found, statement  # the adapter sends nothing else
        path = self.root / found["table"]
        if not deltalake.DeltaTable.is_deltatable(str(path)):
            raise StorageError(f"[TABLE_OR_VIEW_NOT_FOUND] The table {found['table']} cannot be found.")
        table = deltalake.DeltaTable(str(path))
        if "limit" in found.groupdict():
            commits = table.history(int(found["limit"]))
            return ["version", "timestamp", "operation"], [
                [str(c["version"]), None, str(c.get("operation"))] for c in commits
            ]
        columns = found["columns"].replace("`", '"')  # DataFusion quotes names the ANSI way
        data = pa.table(
            deltalake.QueryBuilder().register("t", table).execute(f"SELECT {columns} FROM t").read_all()
        )
        return data.column_names, [[_text(row[c]) for c in data.column_names] for row in data.to_pylist()]


def test_the_app_reads_what_the_local_page_reads(tmp_path: Path) -> None:
    local = str(tmp_path / "etl_control")
    settings = RunSettings(local)
    parts = build_parts(settings)
    build_manager(settings, parts).ensure_exists()
    build_manager(settings, parts).load_files([str(EXAMPLES)])
    warehouse = LocalWarehouse(tmp_path)
    source = build_source(CONTROL, tables=warehouse_tables(CONTROL, warehouse))
    remote = source.overview(Filters())
    assert {row["module"] for row in remote["modules"]} >= EXAMPLE_MODULES
    expected = build_source(local).overview(Filters())
    assert [(r["module"], r["sync"]) for r in remote["modules"]] == [
        (r["module"], r["sync"]) for r in expected["modules"]
    ]
    page = source.module(sorted(EXAMPLE_MODULES)[0])
    assert page is not None and page["graph"] and page["graph"]["tasks"]
    assert all(s.startswith(("SELECT ", "DESCRIBE HISTORY ")) for s in warehouse.statements)


def test_read_only_and_missing_tables(tmp_path: Path) -> None:
    tables = warehouse_tables(CONTROL, LocalWarehouse(tmp_path))
    assert not tables.runs.exists()
    with pytest.raises(TableNotFoundError):
        tables.control.read_all()
    assert isinstance(tables.control, WarehouseTable)
    with pytest.raises(StorageError, match="read-only"):
        tables.control.merge([{"source_id": "x"}])
    with pytest.raises(StorageError, match="local path"):
        warehouse_tables(str(tmp_path / "t"), LocalWarehouse(tmp_path))
    open_tables(str(tmp_path / "etl_control")).ensure_exists()
    assert tables.control.exists() and tables.control.version() >= 0

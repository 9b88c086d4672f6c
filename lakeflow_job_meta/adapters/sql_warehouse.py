"""The tool's tables read through a SQL warehouse (the SDK's statement execution API), for the
status page running as a Databricks App, where no Spark session exists and the tables are
not local.

Read-only: a :class:`WarehouseTable` answers the reads of the ``Table`` interface the status
page uses (``exists``, ``version``, ``read_all``, ``history``) and refuses every write. Table
names are checked by :func:`lakeflow_job_meta.storage.naming.parse_table_reference` and quoted
part by part (``TableReference.sql_name``) before they reach SQL; no value is interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from lakeflow_job_meta.errors import StorageError, TableNotFoundError
from lakeflow_job_meta.storage.base import Commit, TableSpec, maintenance_only
from lakeflow_job_meta.storage.naming import TableReference, parse_table_reference
from lakeflow_job_meta.storage.tables import ToolTables

WAIT_TIMEOUT = "50s"  # the API's longest synchronous wait
_NOT_FOUND = re.compile(
    r"TABLE_OR_VIEW_NOT_FOUND|DELTA_TABLE_NOT_FOUND|DELTA_MISSING_DELTA_TABLE|not a Delta table"
)
# A statement's result as (column names, rows of strings or None).
Executor = Callable[[str], tuple[list[str], list[list[str | None]]]]


def statement_executor(client: Any, warehouse_id: str) -> Executor:
    """Runs one statement on the warehouse and returns every row (following result chunks)."""
    from databricks.sdk.service import sql as sdk_sql

    def execute(statement: str) -> tuple[list[str], list[list[str | None]]]:
        reply = client.statement_execution.execute_statement(
            statement=statement,
            warehouse_id=warehouse_id,
            wait_timeout=WAIT_TIMEOUT,
            on_wait_timeout=sdk_sql.ExecuteStatementRequestOnWaitTimeout.CANCEL,
            disposition=sdk_sql.Disposition.INLINE,
            format=sdk_sql.Format.JSON_ARRAY,
        )
        state = reply.status.state if reply.status else None
        if state != sdk_sql.StatementState.SUCCEEDED:
            error = reply.status.error if reply.status else None
            message = (error.message if error else None) or f"statement ended {state}"
            raise StorageError(message)
        columns = [c.name for c in (reply.manifest.schema.columns or [])] if reply.manifest else []
        rows = list((reply.result.data_array if reply.result else None) or [])
        chunks = (reply.manifest.total_chunk_count or 1) if reply.manifest else 1
        for index in range(1, chunks):
            chunk = client.statement_execution.get_statement_result_chunk_n(reply.statement_id, index)
            rows += chunk.data_array or []
        return columns, rows

    return execute


def _value(text: str | None, column_type: str) -> Any:
    if text is None:
        return None
    if column_type in ("int", "bigint"):
        return int(text)
    if column_type == "double":
        return float(text)
    if column_type == "boolean":
        return text.lower() == "true"
    if column_type == "timestamp":
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return text


class WarehouseTable:
    """One of the tool's tables, read through a SQL warehouse."""

    def __init__(self, ref: TableReference, spec: TableSpec, execute: Executor):
        self.ref = ref
        self.name = ref.name
        self.spec = spec
        self._execute = execute
        self._quoted = ref.sql_name  # validated parts, each backquoted

    def _run(self, statement: str) -> tuple[list[str], list[list[str | None]]]:
        try:
            return self._execute(statement)
        except StorageError as error:
            if _NOT_FOUND.search(str(error)):
                raise TableNotFoundError(self.name) from error
            raise

    def exists(self) -> bool:
        try:
            self.version()
        except TableNotFoundError:
            return False
        return True

    def history(self, limit: int = 20) -> list[Commit]:
        columns, rows = self._run(f"DESCRIBE HISTORY {self._quoted} LIMIT {int(limit)}")
        found = []
        for row in rows:
            record = dict(zip(columns, row, strict=False))
            found.append(
                Commit(
                    version=int(record.get("version") or 0),
                    timestamp=_value(record.get("timestamp"), "timestamp"),
                    operation=str(record.get("operation") or ""),
                    user=record.get("userName"),
                )
            )
        return found

    def version(self) -> int:
        commits = self.history(1)
        if not commits:
            raise TableNotFoundError(self.name)
        return commits[0].version

    def snapshot_id(self) -> str:
        return f"{self.name}@{self.version()}"

    def read_all(self) -> list[dict[str, Any]]:
        names = ", ".join("`" + c.replace("`", "``") + "`" for c in self.spec.column_names)
        columns, rows = self._run(f"SELECT {names} FROM {self._quoted}")
        types = {c.name: c.type for c in self.spec.columns}
        return [
            {name: _value(text, types.get(name, "string")) for name, text in zip(columns, row, strict=False)}
            for row in rows
        ]

    def read_matching(self, column: str, values: Collection[str]) -> list[dict[str, Any]]:
        """Filtered here, not in SQL: no value of the metadata is ever put in a statement's text
        (a module page compiles one module; the tables the page reads are small)."""
        wanted = set(values)
        return [row for row in self.read_all() if row.get(column) in wanted]

    def changes_since(self, version: int) -> list[dict[str, Any]] | None:
        return None  # the status page reads whole tables; None means "read all"

    def maintenance_only(self, since: int, until: int) -> bool:
        return maintenance_only(self.history, since, until)

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise StorageError(f"{self.name} is read through a SQL warehouse: read-only")

    def create_or_migrate(self, seed: Sequence[Mapping[str, Any]] = ()) -> None:
        self._read_only()

    def merge(
        self, upserts: Sequence[Mapping[str, Any]] = (), deletes: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        return bool(self._read_only())

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._read_only()

    def compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        return bool(self._read_only())


def warehouse_tables(control_table: str, execute: Executor) -> ToolTables:
    """The control table and its siblings, read-only through ``execute``."""
    ref = parse_table_reference(control_table)
    if ref.is_path:
        raise StorageError(
            f"{control_table} is a local path; a SQL warehouse reads catalog.schema.table names"
        )
    return ToolTables(ref, lambda r, spec: WarehouseTable(r, spec, execute))

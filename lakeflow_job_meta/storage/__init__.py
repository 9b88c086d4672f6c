"""Storage adapters: the tool's Delta tables through delta-rs (local) or Spark (Databricks).

:func:`open_tables` is the factory: a filesystem path (or ``file://`` URI) selects delta-rs, a
``catalog.schema.table`` name selects Spark. ``deltalake`` and ``pyspark`` are imported only when
the matching backend is built, so the package imports without either.
"""

from __future__ import annotations

from typing import Any

from lakeflow_job_meta.storage.base import Column, Commit, Table, TableSpec
from lakeflow_job_meta.storage.naming import TableReference, control_table_id, parse_table_reference
from lakeflow_job_meta.storage.tables import SPECS, ToolTables

__all__ = [
    "SPECS",
    "Column",
    "Commit",
    "Table",
    "TableReference",
    "TableSpec",
    "ToolTables",
    "control_table_id",
    "open_tables",
    "parse_table_reference",
]


def open_tables(control_table: str, *, actor: str | None = None, spark: Any = None) -> ToolTables:
    """The control table named by ``control_table`` and its siblings, on the right backend.

    Nothing is created here: call ``ensure_exists()`` (write commands) or ``require_exists()``
    (read-only commands). ``actor`` goes into created_by/updated_by and commit metadata;
    ``spark`` is an existing SparkSession (the active one is used when omitted).
    """
    ref = parse_table_reference(control_table)
    if ref.is_path:
        from lakeflow_job_meta.storage.delta_rs import DeltaRsTable

        return ToolTables(ref, lambda r, spec: DeltaRsTable(r, spec, actor=actor))

    from lakeflow_job_meta.storage.spark import SparkTable, active_session

    session = spark if spark is not None else active_session()
    return ToolTables(ref, lambda r, spec: SparkTable(r, spec, session, actor=actor))

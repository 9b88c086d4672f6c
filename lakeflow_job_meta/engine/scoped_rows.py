"""The rows a scoped reconcile needs, read by module name instead of the whole tables.

A row change makes the monitor reconcile one module; it used to read (and convert to Python)
every row of the control and modules tables to find that module's few. The closure is the same
as :func:`desired_state_from_rows` walks: the modules asked for and, transitively, the modules
their ``run_job`` tasks name (everything their validity depends on, since source ids and module
names are the tables' keys).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from lakeflow_job_meta.metadata.validation import run_job_targets
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.tables import ToolTables


def _read(table: Table, modules: Collection[str]) -> list[dict[str, Any]]:
    return table.read_matching("module_name", modules)


def run_job_modules(row: Mapping[str, Any]) -> set[str]:
    """The modules a control row's task runs (``run_job_task.module_name``)."""
    try:
        config = json.loads(row.get("transformation_config") or "null")
    except (TypeError, ValueError):
        return set()  # the row is reported as invalid JSON by the parser
    return {target for target, _ in run_job_targets(config)}


def read_module_rows(
    tables: ToolTables, modules: Collection[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(control rows, modules-table rows) of ``modules`` and the modules they run, transitively."""
    wanted = set(modules)
    pending = set(modules)
    control: list[dict[str, Any]] = []
    settings: list[dict[str, Any]] = []
    while pending:
        rows = _read(tables.control, pending)
        control += rows
        settings += _read(tables.modules, pending)
        named = set().union(*(run_job_modules(row) for row in rows)) if rows else set()
        pending = named - wanted
        wanted |= pending
    return control, settings

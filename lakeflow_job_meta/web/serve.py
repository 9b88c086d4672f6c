"""Builds the status page's source from a control table and serves it with uvicorn.

The tables are opened by :func:`lakeflow_job_meta.storage.open_tables` (delta-rs for a path,
Spark for a name inside the Databricks Runtime) or, for a Databricks App, through a SQL
warehouse (``tables`` given by the caller). The task graph is compiled as ``graph`` does it:
against a bundle target, so drawing it never contacts a workspace.
"""

from __future__ import annotations

from typing import Any

from lakeflow_job_meta.clock import Clock, SystemClock
from lakeflow_job_meta.errors import MissingDependencyError
from lakeflow_job_meta.planning.graph import TaskGraph, task_graph
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.web.pages import StatusSource

INSTALL_HINT = "pip install 'lakeflow-job-meta[serve]'"


def build_source(
    control_table: str, *, tables: ToolTables | None = None, clock: Clock | None = None
) -> StatusSource:
    """The read-only source of every page (tables must exist: nothing is created)."""
    from lakeflow_job_meta.wiring import RunSettings, build_manager, build_orchestrator, build_parts

    settings = RunSettings(control_table, target="bundle:bundle", cli=True, desired_cache=False)
    parts = build_parts(settings, tables=tables)
    parts.tables.require_exists()
    manager = build_manager(settings, parts)
    orchestrator = build_orchestrator(settings, parts=parts, manager=manager)

    def graph(module: str) -> TaskGraph:
        job = orchestrator.compile_one(module)
        return task_graph(job.job_name, job.settings, job.managed_files)

    return StatusSource(
        parts.tables, control_table, clock=clock or SystemClock(), desired=manager.desired_state, graph=graph
    )


def create_app(control_table: str, *, tables: ToolTables | None = None, clock: Clock | None = None) -> Any:
    try:
        from lakeflow_job_meta.web.app import build_app
    except ImportError as error:
        raise MissingDependencyError(f"the status page needs Starlette and Jinja2: {INSTALL_HINT}") from error
    return build_app(build_source(control_table, tables=tables, clock=clock))


def serve(app: Any, *, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    try:
        import uvicorn
    except ImportError as error:
        raise MissingDependencyError(f"the status page needs uvicorn: {INSTALL_HINT}") from error
    uvicorn.run(app, host=host, port=port, log_level="warning")

"""Builds the status page's source from a control table and serves it with uvicorn.

The tables are opened by :func:`lakeflow_job_meta.storage.open_tables` (delta-rs for a path,
Spark for a name inside the Databricks Runtime) or, for a Databricks App, through a SQL
warehouse (``tables`` given by the caller). The task graph is compiled as ``graph`` does it:
against a bundle target, so drawing it never contacts a workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.errors import ConfigurationError, MissingDependencyError
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.web.pages import StatusSource

INSTALL_HINT = "pip install 'lakeflow-job-meta[serve]'"
WORKSPACE_PREFIX = "workspace:"


def build_source(
    control_table: str,
    *,
    tables: ToolTables | None = None,
    clock: Clock | None = None,
    workspace: Callable[[], Any] | None = None,
    warm: bool = True,
) -> StatusSource:
    """The read-only source of every page (tables must exist: nothing is created). ``workspace``
    gives a workspace client on first use: the pending diff of a workspace job then compares
    its live settings (one ``jobs/get``); without it the page reads no workspace. ``warm``:
    read the fleet in the background at once, so the first request finds it read."""
    from lakeflow_job_meta.engine.metadata_manager import desired_state_from_rows
    from lakeflow_job_meta.wiring import RunSettings, build_manager, build_orchestrator, build_parts

    settings = RunSettings(control_table, target="bundle:bundle", cli=True, desired_cache=False)
    parts = build_parts(settings, tables=tables, clock=clock)
    parts.tables.require_exists()
    manager = build_manager(settings, parts)
    orchestrator = build_orchestrator(settings, parts=parts, manager=manager)
    validate = partial(
        _validate,
        partial(
            desired_state_from_rows,
            control_table=manager.control_table,
            modules_table=parts.tables.modules.name,
            default_warehouse_id=manager.default_warehouse_id,
        ),
    )
    source = StatusSource(
        parts.tables,
        control_table,
        clock=parts.clock,
        validate=validate,
        compile_one=orchestrator.compile_one,
        live_settings=_live_reader(workspace) if workspace is not None else None,
    )
    if warm:
        source.warm()
    return source


def _validate(
    desired: Callable[..., Any], control: list[Any], modules: list[Any], only: set[str] | None
) -> Any:
    return desired(control, modules, only_modules=only)


def _live_reader(workspace: Callable[[], Any]) -> Callable[[str, int], Mapping[str, Any] | None]:
    """Reads one job's live settings for the pending diff, through the Jobs gateway, from the
    workspace the target key names only (a client of another workspace is never asked)."""
    from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs

    gateways: list[Any] = []

    def read(target: str, job_id: int) -> Mapping[str, Any] | None:
        if not gateways:
            gateways.append(WorkspaceJobs(workspace()))
        gateway = gateways[0]
        host = target.split("#env=", 1)[0].removeprefix(WORKSPACE_PREFIX).rstrip("/")
        if host != gateway.host:
            raise ConfigurationError(f"the page's workspace client is for {gateway.host}, not {host}")
        live = gateway.get(job_id)
        return live.settings if live is not None else None

    return read


def create_app(
    control_table: str,
    *,
    tables: ToolTables | None = None,
    clock: Clock | None = None,
    workspace: Callable[[], Any] | None = None,
) -> Any:
    try:
        from lakeflow_job_meta.web.app import build_app
    except ImportError as error:
        raise MissingDependencyError(f"the status page needs Starlette and Jinja2: {INSTALL_HINT}") from error
    return build_app(build_source(control_table, tables=tables, clock=clock, workspace=workspace))


def serve(app: Any, *, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    try:
        import uvicorn
    except ImportError as error:
        raise MissingDependencyError(f"the status page needs uvicorn: {INSTALL_HINT}") from error
    uvicorn.run(app, host=host, port=port, log_level="warning")

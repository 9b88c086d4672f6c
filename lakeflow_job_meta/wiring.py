"""The one place that builds adapters and hands them to the engine.

Everything that picks a backend (delta-rs or Spark, workspace or bundle) or builds a
``WorkspaceClient`` lives here, so the engine and the pure layers never import an SDK directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from lakeflow_job_meta.errors import ConfigurationError

# A CLI must not hang for five minutes on an unreachable host (the SDK default). Client creation
# and the first call each spend this budget, so the worst case is about twice it.
CLI_RETRY_TIMEOUT_SECONDS = 45
CLI_HTTP_TIMEOUT_SECONDS = 30


def in_databricks_runtime() -> bool:
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def workspace_client(
    profile: str | None = None,
    *,
    retry_timeout_seconds: int = CLI_RETRY_TIMEOUT_SECONDS,
    http_timeout_seconds: int = CLI_HTTP_TIMEOUT_SECONDS,
    check: bool = True,
) -> Any:
    """A WorkspaceClient using Databricks unified auth (env vars, ``~/.databrickscfg``).

    With ``check``, the client is first built with the short preflight budget (the SDK probes
    the host while building it) and one cheap authenticated call must succeed: an unreachable
    host or refused credentials fail fast with ConfigurationError naming the host."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    from lakeflow_job_meta.adapters import preflight

    try:
        config = Config(
            profile=profile,
            retry_timeout_seconds=preflight.HOST_PROBE_RETRY_TIMEOUT_SECONDS
            if check
            else retry_timeout_seconds,
            http_timeout_seconds=preflight.HOST_PROBE_HTTP_TIMEOUT_SECONDS if check else http_timeout_seconds,
        )
    except ValueError as error:  # the SDK's message names what is missing; it never holds a token
        raise ConfigurationError(f"cannot authenticate to Databricks: {error}") from error
    if not check:
        return WorkspaceClient(config=config)
    preflight.check_access(
        WorkspaceClient(
            config=_with_timeouts(
                config, preflight.PREFLIGHT_RETRY_TIMEOUT_SECONDS, preflight.PREFLIGHT_HTTP_TIMEOUT_SECONDS
            )
        )
    )
    # The run itself gets the full budget; copies keep the resolved host and credentials.
    return WorkspaceClient(config=_with_timeouts(config, retry_timeout_seconds, http_timeout_seconds))


def _with_timeouts(config: Any, retry_timeout_seconds: int, http_timeout_seconds: int) -> Any:
    copied = config.copy()
    copied.retry_timeout_seconds = retry_timeout_seconds
    copied.http_timeout_seconds = http_timeout_seconds
    return copied


def spark_session() -> Any:
    """The active Spark session inside the Databricks Runtime, or None elsewhere."""
    if not in_databricks_runtime():
        return None
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


@dataclass
class RunSettings:
    """Everything the CLI and the wheel entry point pass to the engine."""

    control_table: str
    target: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    env: str | None = None
    prune: str = "pause"
    default_pause_status: str | None = None
    default_warehouse_id: str | None = None
    managed_sql_root: str | None = None
    profile: str | None = None
    max_workers: int = 4


def build_orchestrator(
    settings: RunSettings,
    *,
    lease: Any = None,
    lease_wait: bool = True,
    clock: Any = None,
    workspace: Any = None,
):
    from lakeflow_job_meta.engine.orchestrator import JobOrchestrator, TargetSpec, default_target

    target = TargetSpec.parse(settings.target) if settings.target else default_target()
    client = workspace
    if client is None and target.kind == "workspace":
        client = workspace_client(settings.profile)
    return JobOrchestrator(
        settings.control_table,
        client,
        target=target,
        env=settings.env,
        prune=settings.prune,
        default_pause_status=settings.default_pause_status,
        default_warehouse_id=settings.default_warehouse_id,
        managed_sql_root=settings.managed_sql_root,
        max_workers=settings.max_workers,
        spark=spark_session(),
        lease=lease,
        lease_wait=lease_wait,
        clock=clock,
    )

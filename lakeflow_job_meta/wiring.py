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
) -> Any:
    """A WorkspaceClient using Databricks unified auth (env vars, ``~/.databrickscfg``)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    try:
        config = Config(
            profile=profile,
            retry_timeout_seconds=retry_timeout_seconds,
            http_timeout_seconds=http_timeout_seconds,
        )
    except ValueError as error:  # the SDK's message names what is missing; it never holds a token
        raise ConfigurationError(f"cannot authenticate to Databricks: {error}") from error
    return WorkspaceClient(config=config)


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
    # The identity and code policy file (a local path or /Volumes/...); None allows everything.
    policy_path: str | None = None
    allow_mass_change: bool = False


def load_run_policy(settings: RunSettings) -> Any:
    """The policy named by the settings, or None (callers warn that everything is allowed)."""
    from lakeflow_job_meta.metadata.policy import load_policy

    return load_policy(settings.policy_path) if settings.policy_path else None


def build_orchestrator(
    settings: RunSettings,
    *,
    lease: Any = None,
    lease_wait: bool = True,
    lease_timeout: float | None = None,
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
        lease_timeout=lease_timeout,
        clock=clock,
        allow_mass_change=settings.allow_mass_change,
        policy=load_run_policy(settings),
    )

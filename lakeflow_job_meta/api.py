"""The public Python names, with the original tool's signatures: ``MetadataManager``,
``JobOrchestrator`` and ``MetadataMonitor``.

Each takes table names and settings, asks :mod:`lakeflow_job_meta.wiring` to build its parts and
hands them to the engine class it extends. The engine classes themselves only take objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lakeflow_job_meta.clock import Clock
from lakeflow_job_meta.engine.cycle_log import HEARTBEAT_SECONDS

if TYPE_CHECKING:
    from lakeflow_job_meta.adapters.retrying import RetryPolicy
    from lakeflow_job_meta.adapters.yaml_volume import WatchMode
    from lakeflow_job_meta.planning.compiler import PauseStatus
from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.engine.metadata_manager import MetadataStore
from lakeflow_job_meta.engine.monitor import Monitor, MonitorOptions
from lakeflow_job_meta.engine.orchestrator import Orchestrator
from lakeflow_job_meta.engine.runs import DEFAULT_RETENTION_DAYS
from lakeflow_job_meta.engine.targets.base import TargetSpec
from lakeflow_job_meta.logs import ensure_handler
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES
from lakeflow_job_meta.metadata.policy import Policy
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import DEFAULT_MAX_WORKERS, PrunePolicy
from lakeflow_job_meta.wiring import (
    RunSettings,
    WatchSettings,
    build_parts,
    manager_parts,
    monitor_parts,
    orchestrator_parts,
)


class MetadataManager(MetadataStore):
    """Loads YAML metadata into the control table and reads the desired state back.

    ``control_table`` is a local path (delta-rs) or ``catalog.schema.table`` (Spark).
    """

    def __init__(
        self,
        control_table: str,
        *,
        variables: Mapping[str, str] | None = None,
        env: str | None = None,
        default_warehouse_id: str | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        spark: Any = None,
        tables: ToolTables | None = None,
    ):
        settings = RunSettings(
            control_table,
            variables=dict(variables or {}),
            env=env,
            default_warehouse_id=default_warehouse_id,
            max_file_bytes=max_file_bytes,
        )
        super().__init__(**manager_parts(settings, build_parts(settings, tables=tables, spark=spark)))


class JobOrchestrator(Orchestrator):
    """Creates and updates one Lakeflow job per module of the control table.

    ``workspace_client`` is a ``databricks.sdk.WorkspaceClient``; when omitted for the workspace
    target, one is built on first use with Databricks unified auth (env vars, ``~/.databrickscfg``).
    """

    def __init__(
        self,
        control_table: str,
        workspace_client: Any = None,
        *,
        target: str | TargetSpec | None = None,
        env: str | None = None,
        env_mode: str | None = None,
        variables: Mapping[str, str] | None = None,
        prune: str = PrunePolicy.PAUSE,
        default_pause_status: PauseStatus | None = None,
        default_warehouse_id: str | None = None,
        managed_sql_root: str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        check_drift: bool = True,
        spark: Any = None,
        tables: ToolTables | None = None,
        clock: Clock | None = None,
        lease: Lease | None = None,
        lease_wait: bool = True,
        lease_timeout: float | None = None,
        policy: Policy | str | None = None,
        allow_mass_change: bool = False,
        retry_policy: RetryPolicy | None = None,
    ):
        settings = RunSettings(
            control_table,
            target=target,
            env=env,
            env_mode=env_mode,
            variables=dict(variables or {}),
            lease_timeout=lease_timeout,
            policy_path=policy if isinstance(policy, str) else None,
            allow_mass_change=allow_mass_change,
            prune=prune,
            default_pause_status=default_pause_status,
            default_warehouse_id=default_warehouse_id,
            managed_sql_root=managed_sql_root,
            max_workers=max_workers,
            check_drift=check_drift,
        )
        parts = build_parts(settings, tables=tables, clock=clock, spark=spark)
        arguments = orchestrator_parts(
            settings,
            parts,
            lease=lease,
            lease_wait=lease_wait,
            workspace=workspace_client,
            retry_policy=retry_policy,
        )
        if isinstance(policy, Policy):  # a policy already loaded (e.g. from a notebook widget)
            arguments["policy"] = policy
        super().__init__(**arguments)
        ensure_handler()  # from a notebook: the log goes to the cell's output


class MetadataMonitor(Monitor):
    """Watches the control table (by Delta version) and a YAML folder (by content) and keeps the
    jobs in step. ``auto_update_jobs=False`` only loads YAML and reports."""

    def __init__(
        self,
        control_table: str,
        check_interval_seconds: float = 60,
        volume_path: str | None = None,
        auto_update_jobs: bool = True,
        *,
        orchestrator: Orchestrator | None = None,
        workspace_client: Any = None,
        target: str | None = None,
        variables: dict[str, str] | None = None,
        env: str | None = None,
        default_warehouse_id: str | None = None,
        auto_run: bool = False,
        prune: str = PrunePolicy.PAUSE,
        wait_for_lease: bool = True,
        full_resync_seconds: float = 600.0,
        lease_ttl_seconds: float = 60.0,
        watch_mode: WatchMode = "auto",
        clock: Clock | None = None,
        holder_id: str | None = None,
        log_format: str = "human",
        spark: Any = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        runs_interval_seconds: float | None = None,
        runs_retention_days: float = DEFAULT_RETENTION_DAYS,
        alert_sender: Callable[[str, bytes], int] | None = None,
    ):
        settings = RunSettings(
            control_table,
            target=target,
            variables=dict(variables or {}),
            env=env,
            prune=prune,
            default_warehouse_id=default_warehouse_id,
        )
        watch = WatchSettings(
            options=MonitorOptions(
                check_interval_seconds=check_interval_seconds,
                volume_path=volume_path,
                auto_update_jobs=auto_update_jobs,
                auto_run=auto_run,
                wait_for_lease=wait_for_lease,
                full_resync_seconds=full_resync_seconds,
                log_format=log_format,
                heartbeat_seconds=heartbeat_seconds,
            ),
            lease_ttl_seconds=lease_ttl_seconds,
            watch_mode=watch_mode,
            holder_id=holder_id,
            runs_interval_seconds=runs_interval_seconds,
            runs_retention_days=runs_retention_days,
            alert_sender=alert_sender,
        )
        parts = None if orchestrator is not None else build_parts(settings, clock=clock, spark=spark)
        super().__init__(
            **monitor_parts(
                settings,
                watch,
                orchestrator=orchestrator,
                parts=parts,
                workspace=workspace_client,
                clock=clock,
            )
        )

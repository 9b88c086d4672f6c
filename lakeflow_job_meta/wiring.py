"""The one place that builds objects: tables, state store, manager, lease, clock and target, from
the run settings, handed ready-made to the engine.

Everything that picks a backend (delta-rs or Spark, workspace or bundle) or builds a
``WorkspaceClient`` lives here, so the engine and the pure layers never import an SDK directly,
and the CLI, the wheel entry point and the public names (``lakeflow_job_meta.api``) all build the
same objects the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lakeflow_job_meta.adapters.retrying import RateLimiter, RetryPolicy
from lakeflow_job_meta.adapters.yaml_volume import VolumeScanner, VolumeWatcher, WatchMode
from lakeflow_job_meta.clock import Clock, SystemClock
from lakeflow_job_meta.engine.alerts import AlertDispatcher, MonitorAlerts
from lakeflow_job_meta.engine.desired_cache import DesiredStateCache, default_cache_dir
from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.engine.metadata_manager import MetadataStore
from lakeflow_job_meta.engine.monitor import Monitor, MonitorOptions, default_holder_id
from lakeflow_job_meta.engine.orchestrator import Orchestrator
from lakeflow_job_meta.engine.runs import DEFAULT_RETENTION_DAYS, RunRecorder
from lakeflow_job_meta.engine.targets.base import Target, TargetSpec, default_target
from lakeflow_job_meta.engine.targets.bundle import BundleTarget
from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES
from lakeflow_job_meta.metadata.policy import load_policy
from lakeflow_job_meta.planning.compiler import CompileContext, PauseStatus
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.state_store import StateStore
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import (
    DEFAULT_MAX_WORKERS,
    EnvironmentMode,
    PrunePolicy,
    TargetKind,
    choices,
)

# A CLI must not hang for five minutes on an unreachable host (the SDK default). Client creation
# and the first call each spend this budget, so the worst case is about twice it.
CLI_RETRY_TIMEOUT_SECONDS = 45
CLI_HTTP_TIMEOUT_SECONDS = 30
# Reads overlap four times as wide as the apply workers: one connection each, no dropping.
HTTP_CONNECTIONS = 4 * DEFAULT_MAX_WORKERS


def in_databricks_runtime() -> bool:
    return bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))


def workspace_client(
    profile: str | None = None,
    *,
    retry_timeout_seconds: int = CLI_RETRY_TIMEOUT_SECONDS,
    http_timeout_seconds: int = CLI_HTTP_TIMEOUT_SECONDS,
    check: bool = True,
    clock: Clock | None = None,
) -> Any:
    """A WorkspaceClient using Databricks unified auth (env vars, ``~/.databrickscfg``).

    With ``check``, the client is first built with the short preflight budget (the SDK probes
    the host while building it) and one cheap authenticated call must succeed: an unreachable
    host or refused credentials fail fast with ConfigurationError naming the host. The SDK waits
    between its retries on ``clock`` when one is given (else on its own real clock)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    from lakeflow_job_meta.adapters import preflight

    # Duck-typed: the SDK only calls time() and sleep() (subclassing its Clock would import the
    # SDK with this module, which a bundle run never needs).
    sdk_clock: dict[str, Any] = {"clock": SdkClock(clock)} if clock is not None else {}
    try:
        config = Config(
            profile=profile,
            retry_timeout_seconds=preflight.HOST_PROBE_RETRY_TIMEOUT_SECONDS
            if check
            else retry_timeout_seconds,
            http_timeout_seconds=preflight.HOST_PROBE_HTTP_TIMEOUT_SECONDS if check else http_timeout_seconds,
            **sdk_clock,
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


class SdkClock:
    """A :class:`Clock` as the SDK's clock (``time``, ``sleep``)."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def time(self) -> float:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


def _with_timeouts(config: Any, retry_timeout_seconds: int, http_timeout_seconds: int) -> Any:
    copied = config.copy()
    copied.retry_timeout_seconds = retry_timeout_seconds
    copied.http_timeout_seconds = http_timeout_seconds
    if not copied.max_connections_per_pool and not copied.max_connection_pools:
        # Reads overlap (up to four times the apply workers): a pool of 20 would open and drop
        # connections under them. The SDK passes max_connection_pools as the adapter's
        # pool_maxsize (and mounts its adapter for https only), so both are set.
        copied.max_connections_per_pool = HTTP_CONNECTIONS
        copied.max_connection_pools = HTTP_CONNECTIONS
    return copied


def sdk_default_client() -> Any:
    """A WorkspaceClient with the SDK's own defaults (the public Python API's choice)."""
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient()


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
    """Everything the CLI, the wheel entry point and the public names pass to the engine."""

    control_table: str
    target: str | TargetSpec | None = None
    variables: dict[str, str] = field(default_factory=dict)
    env: str | None = None
    # The environment's mode when the caller knows it; else the mode its last load recorded.
    env_mode: str | None = None
    prune: str = PrunePolicy.PAUSE
    default_pause_status: PauseStatus | None = None
    default_warehouse_id: str | None = None
    managed_sql_root: str | None = None
    profile: str | None = None
    # Workspace target: modules applied at once, and our own cap on requests a second (None:
    # none; a 429 pauses the whole client either way).
    max_workers: int = DEFAULT_MAX_WORKERS
    max_requests_per_second: float | None = None
    check_drift: bool = True
    max_file_bytes: int = MAX_FILE_BYTES
    # The identity and code policy file (a local path or /Volumes/...); None allows everything.
    policy_path: str | None = None
    allow_mass_change: bool = False
    # How long an apply waits for another writer's lease (None: until free; 0: not at all).
    lease_timeout: float | None = None
    # Short SDK timeouts and ``--profile`` (the CLI); the public API keeps the SDK's defaults.
    cli: bool = False
    # Keep the compiled desired state between processes (engine/desired_cache.py). The monitor
    # keeps it in memory instead: writing it after every change would only cost it time.
    desired_cache: bool = True
    # The clock every part runs on, the SDK's retry waits included (None: the system clock).
    clock: Clock | None = None


@dataclass
class Parts:
    """Objects several engine classes share; built once per settings."""

    tables: ToolTables
    clock: Clock
    state: StateStore
    table_id: str


def build_parts(
    settings: RunSettings, *, tables: ToolTables | None = None, clock: Clock | None = None, spark: Any = None
) -> Parts:
    if tables is None:
        tables = open_tables(settings.control_table, spark=spark if spark is not None else spark_session())
    clock = clock or settings.clock or SystemClock()
    table_id = control_table_id(settings.control_table)
    return Parts(tables, clock, StateStore(tables.state, table_id, clock.now), table_id)


def manager_parts(settings: RunSettings, parts: Parts) -> dict[str, Any]:
    """The constructor arguments of a :class:`MetadataStore` (the public ``MetadataManager``
    passes them to its base class)."""
    return {
        "tables": parts.tables,
        "control_table": settings.control_table,
        "state": parts.state,
        "variables": settings.variables,
        "env": settings.env,
        "default_warehouse_id": settings.default_warehouse_id,
        "max_file_bytes": settings.max_file_bytes,
    }


def build_manager(settings: RunSettings, parts: Parts) -> MetadataStore:
    return MetadataStore(**manager_parts(settings, parts))


def _target_spec(settings: RunSettings) -> TargetSpec:
    if isinstance(settings.target, TargetSpec):
        return settings.target
    return TargetSpec.parse(settings.target) if settings.target else default_target()


def _client_factory(settings: RunSettings, workspace: Any) -> Callable[[], Any]:
    if workspace is not None:
        return lambda: workspace
    if settings.cli:
        return lambda: workspace_client(settings.profile, clock=settings.clock)
    return sdk_default_client


def build_target(
    settings: RunSettings, parts: Parts, *, workspace: Any = None, retry_policy: RetryPolicy | None = None
) -> Target:
    """The target the settings name; the workspace client is built on first use. Idempotent
    calls are retried by ``retry_policy`` (default: :class:`RetryPolicy` sleeping on the clock)."""
    spec = _target_spec(settings)
    if spec.kind == TargetKind.BUNDLE:
        return BundleTarget(
            spec.bundle_dir or "bundle",
            control_table_id=parts.table_id,
            control_table=parts.tables.control.name,
            prune=PrunePolicy(settings.prune),
            state=parts.state,
        )
    # Imported here: the SDK costs about 2 s of CPU to import, and a bundle run never needs it.
    from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs
    from lakeflow_job_meta.engine.targets.workspace import WorkspaceOptions, WorkspaceTarget

    options = WorkspaceOptions(
        control_table_id=parts.table_id,
        prune=PrunePolicy(settings.prune),
        default_pause_status=settings.default_pause_status,
        check_drift=settings.check_drift,
        max_workers=max(1, settings.max_workers),
        # One at a time when the caller asked for that; else reads overlap four times as wide.
        max_reads=1 if settings.max_workers <= 1 else 4 * settings.max_workers,
    )
    client = _client_factory(settings, workspace)
    policy = retry_policy or RetryPolicy(sleep=parts.clock.sleep)
    limiter = RateLimiter(
        settings.max_requests_per_second, clock=parts.clock.monotonic, sleep=parts.clock.sleep
    )
    return WorkspaceTarget(
        lambda: WorkspaceJobs(client(), retry=policy, limiter=limiter),
        parts.tables.jobs,
        options,
        parts.clock,
    )


def _check(settings: RunSettings) -> None:
    if settings.prune not in choices(PrunePolicy):
        raise ConfigurationError(
            f"invalid prune policy {settings.prune!r}: use one of {', '.join(choices(PrunePolicy))}"
        )
    if settings.env_mode is not None and settings.env_mode not in choices(EnvironmentMode):
        raise ConfigurationError(f"invalid environment mode {settings.env_mode!r}")


def orchestrator_parts(
    settings: RunSettings,
    parts: Parts,
    *,
    manager: MetadataStore | None = None,
    lease: Lease | None = None,
    lease_wait: bool = True,
    workspace: Any = None,
    retry_policy: RetryPolicy | None = None,
) -> dict[str, Any]:
    """The constructor arguments of an :class:`Orchestrator`."""
    _check(settings)
    context = CompileContext(
        control_table=settings.control_table,
        control_table_id=parts.table_id,
        env_name=settings.env,
        default_warehouse_id=settings.default_warehouse_id,
        managed_sql_root=settings.managed_sql_root or f"/Workspace/Shared/lakeflow_job_meta/{parts.table_id}",
        default_pause_status=settings.default_pause_status,
    )
    manager = manager or build_manager(settings, parts)
    check_loaded_environment(settings, manager)
    return {
        "tables": parts.tables,
        "manager": manager,
        "target": build_target(settings, parts, workspace=workspace, retry_policy=retry_policy),
        "context": context,
        "state": parts.state,
        "clock": parts.clock,
        "env_mode": EnvironmentMode(settings.env_mode) if settings.env_mode else None,
        "lease": lease,
        "lease_wait": lease_wait,
        "lease_timeout": settings.lease_timeout,
        "policy": load_policy(settings.policy_path) if settings.policy_path else None,
        "allow_mass_change": settings.allow_mass_change,
        "desired_cache": _desired_cache(settings),
    }


def check_loaded_environment(settings: RunSettings, manager: MetadataStore) -> None:
    """The rows hold values resolved by their load: a run must ask for the load's ``--env`` and
    ``--var`` (declared ones), or it would mix one environment's names with another's values.
    ConfigurationError (exit 2) otherwise. A table never loaded from YAML records nothing."""
    loaded = manager.loaded_environments()
    if loaded is not None:
        loaded.check_run(settings.env, settings.variables, settings.control_table)


def _desired_cache(settings: RunSettings) -> DesiredStateCache | None:
    directory = default_cache_dir() if settings.desired_cache else None
    return DesiredStateCache(directory) if directory is not None else None


def build_orchestrator(
    settings: RunSettings,
    *,
    parts: Parts | None = None,
    manager: MetadataStore | None = None,
    lease: Lease | None = None,
    lease_wait: bool = True,
    workspace: Any = None,
) -> Orchestrator:
    parts = parts or build_parts(settings)
    return Orchestrator(
        **orchestrator_parts(
            settings, parts, manager=manager, lease=lease, lease_wait=lease_wait, workspace=workspace
        )
    )


@dataclass
class WatchSettings:
    """The monitor's own settings, next to the run settings."""

    options: MonitorOptions = field(default_factory=MonitorOptions)
    lease_ttl_seconds: float = 60.0
    watch_mode: WatchMode = "auto"
    holder_id: str | None = None
    # Run health: one jobs/runs/list per interval (None: runs are not read, the public API's
    # default; the CLI reads them every DEFAULT_RUNS_INTERVAL_SECONDS); kept this many days.
    runs_interval_seconds: float | None = None
    runs_retention_days: float = DEFAULT_RETENTION_DAYS
    # Alert delivery (``(url, body) -> status``); tests inject one, default: an HTTP POST.
    alert_sender: Callable[[str, bytes], int] | None = None


def monitor_parts(
    settings: RunSettings,
    watch: WatchSettings,
    *,
    orchestrator: Orchestrator | None = None,
    parts: Parts | None = None,
    workspace: Any = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """The constructor arguments of a :class:`Monitor`: one manager for its volume and its
    orchestrator (same variables, env and default warehouse), and the lease the orchestrator
    applies under."""
    if orchestrator is None:
        parts = parts or build_parts(settings)
        manager = build_manager(settings, parts)
        orchestrator = build_orchestrator(
            replace(settings, desired_cache=False), parts=parts, manager=manager, workspace=workspace
        )
    else:
        # An orchestrator built apart: its tables, and its default warehouse unless given here.
        clock = clock or orchestrator.clock
        state = StateStore(orchestrator.tables.state, orchestrator.table_id, clock.now)
        parts = Parts(orchestrator.tables, clock, state, orchestrator.table_id)
        warehouse = settings.default_warehouse_id or orchestrator.manager.default_warehouse_id
        manager = build_manager(replace(settings, default_warehouse_id=warehouse), parts)
    lease = Lease(
        parts.tables.state,
        holder_id=watch.holder_id or default_holder_id(),
        scope=parts.table_id,
        ttl_seconds=watch.lease_ttl_seconds,
        clock=parts.clock,
    )
    volume = os.path.abspath(watch.options.volume_path) if watch.options.volume_path else None
    wake = threading.Event()
    # Runs and secret-scope URLs go through the target's own gateway (one client, one retry budget).
    target: Any = orchestrator.target
    gateway = (lambda: target.gateway) if target.kind == TargetKind.WORKSPACE else None
    return {
        "orchestrator": orchestrator,
        "manager": manager,
        "lease": lease,
        "state": parts.state,
        "clock": parts.clock,
        "options": replace(watch.options, volume_path=volume),
        "scanner": VolumeScanner(volume, clock=parts.clock) if volume else None,
        "watcher": VolumeWatcher(volume, wake, mode=watch.watch_mode) if volume else None,
        "wake": wake,
        "runs": _run_recorder(watch, parts, gateway),
        "alerts": _monitor_alerts(settings, watch, parts, orchestrator, gateway),
    }


def _run_recorder(
    watch: WatchSettings, parts: Parts, gateway: Callable[[], Any] | None
) -> RunRecorder | None:
    """Runs are read on a workspace target only (a bundle's jobs have no ids the tool knows)."""
    if gateway is None or watch.runs_interval_seconds is None:
        return None
    return RunRecorder(
        runs=parts.tables.runs,
        tracking=parts.tables.jobs,
        modules=parts.tables.modules,
        gateway=gateway,
        clock=parts.clock,
        interval_seconds=watch.runs_interval_seconds,
        retention_days=watch.runs_retention_days,
    )


def _monitor_alerts(
    settings: RunSettings,
    watch: WatchSettings,
    parts: Parts,
    orchestrator: Orchestrator,
    gateway: Callable[[], Any] | None,
) -> MonitorAlerts | None:
    """Alerts when the policy names webhooks. Secret-scope URLs are read through the workspace
    client at each send, environment references from the environment."""
    from lakeflow_job_meta.adapters.webhooks import post_json, resolve_url, workspace_secret_reader

    policy = orchestrator.policy
    if policy is None or not policy.alerts.webhooks:
        return None

    def secrets(scope: str, key: str) -> str:
        if gateway is None:
            raise ConfigurationError("a ${secret:scope/key} webhook needs a workspace target")
        return workspace_secret_reader(gateway().client)(scope, key)

    dispatcher = AlertDispatcher(
        policy.alerts,
        sender=watch.alert_sender or post_json,
        resolve=lambda hook: resolve_url(hook, secrets=secrets),
        clock=parts.clock,
        control_table=settings.control_table,
    )
    return MonitorAlerts(
        dispatcher,
        history=parts.tables.history,
        state=parts.state,
        clock=parts.clock,
        lag_versions=policy.alerts.lag_versions,
    )


def build_monitor(settings: RunSettings, watch: WatchSettings, **kwargs: Any) -> Monitor:
    return Monitor(**monitor_parts(settings, watch, **kwargs))

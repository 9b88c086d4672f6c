"""JobOrchestrator: desired state (the tables) + actual state (the target) -> plan -> apply.

Each call is level-triggered: it recomputes everything it needs from the tables and the target,
so a crashed or repeated run converges to the same jobs. Modules are applied by a bounded worker
pool in waves: a module named by another's ``run_job`` task goes first, so its job id is known.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from lakeflow_job_meta.engine.clock import Clock, SystemClock, utc_datetime
from lakeflow_job_meta.engine.metadata_manager import DesiredState, MetadataManager
from lakeflow_job_meta.engine.results import OUTCOME_ERROR, OUTCOME_SKIPPED, ModuleResult, RunResult
from lakeflow_job_meta.errors import (
    ConfigurationError,
    JobsApiError,
    LakeflowJobMetaError,
    MetadataIssue,
    MetadataValidationError,
)
from lakeflow_job_meta.logs import ensure_handler
from lakeflow_job_meta.planning.canonical import HASH_VERSION
from lakeflow_job_meta.planning.compiler import CompileContext, CompiledJob, compile_module
from lakeflow_job_meta.planning.plan import Plan, PlannedChange, TrackedJob, plan_module
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.tables import ToolTables

log = logging.getLogger(__name__)

PRUNE_POLICIES = ("pause", "delete", "keep")
# Above this many tracked jobs a full resync lists the workspace once instead of N jobs/get.
LIST_INSTEAD_OF_GET_THRESHOLD = 50


@dataclass(frozen=True)
class TargetSpec:
    kind: str  # workspace | bundle
    bundle_dir: str | None = None

    @staticmethod
    def parse(text: str) -> TargetSpec:
        if text == "workspace":
            return TargetSpec("workspace")
        if text.startswith("bundle:") and len(text) > len("bundle:"):
            return TargetSpec("bundle", text[len("bundle:") :])
        raise ConfigurationError(f"invalid target {text!r}: use 'workspace' or 'bundle:DIR'")

    def __str__(self) -> str:
        return "workspace" if self.kind == "workspace" else f"bundle:{self.bundle_dir}"


def default_target() -> TargetSpec:
    """``workspace`` inside the Databricks Runtime, a local bundle folder elsewhere. Never guessed
    from credentials."""
    import os

    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return TargetSpec("workspace")
    return TargetSpec("bundle", "bundle")


def _process_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def resolve_run_job_refs(compiled: CompiledJob, job_ids: Mapping[str, int]) -> tuple[CompiledJob, list[str]]:
    """Fill ``run_job_task.job_id`` for tasks naming another module. Returns the missing modules."""
    if not compiled.run_job_refs:
        return compiled, []
    settings = json.loads(json.dumps(compiled.settings))
    missing = []

    def visit(tasks: list[dict[str, Any]]) -> None:
        for task in tasks:
            module = compiled.run_job_refs.get(task.get("task_key", ""))
            if module is not None and "run_job_task" in task:
                if module in job_ids:
                    task["run_job_task"]["job_id"] = int(job_ids[module])
                else:
                    missing.append(module)
            nested = (task.get("for_each_task") or {}).get("task")
            if nested:
                visit([nested])

    visit(settings.get("tasks", []))
    return replace(compiled, settings=settings), sorted(set(missing))


def apply_waves(compiled: Mapping[str, CompiledJob], modules: Iterable[str]) -> list[list[str]]:
    """Order modules so a module referenced by ``run_job`` is applied in an earlier wave."""
    remaining = set(modules)
    waves: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = []
        for module in remaining:
            refs = set(compiled[module].run_job_refs.values()) if module in compiled else set()
            if not (refs & remaining - {module}) or refs <= done:
                ready.append(module)
        if not ready:  # a reference cycle between modules: apply what is left together
            ready = list(remaining)
        waves.append(sorted(ready))
        done |= set(ready)
        remaining -= set(ready)
    return waves


class JobOrchestrator:
    """Creates and updates one Lakeflow job per module of the control table.

    ``workspace_client`` is a ``databricks.sdk.WorkspaceClient``; when omitted for the workspace
    target, one is built with Databricks unified auth (env vars, ``~/.databrickscfg`` profiles).
    """

    def __init__(
        self,
        control_table: str,
        workspace_client: Any = None,
        *,
        target: str | TargetSpec | None = None,
        env: str | None = None,
        env_mode: str | None = None,
        prune: str = "pause",
        default_pause_status: str | None = None,
        default_warehouse_id: str | None = None,
        managed_sql_root: str | None = None,
        max_workers: int = 4,
        check_drift: bool = True,
        spark: Any = None,
        tables: ToolTables | None = None,
        clock: Clock | None = None,
        lease: Any = None,
        lease_wait: bool = True,
    ):
        if prune not in PRUNE_POLICIES:
            raise ConfigurationError(
                f"invalid prune policy {prune!r}: use one of {', '.join(PRUNE_POLICIES)}"
            )
        self.control_table = control_table
        self.tables = tables if tables is not None else open_tables(control_table, spark=spark)
        self.manager = MetadataManager(
            control_table, default_warehouse_id=default_warehouse_id, tables=self.tables
        )
        self.target = (
            target
            if isinstance(target, TargetSpec)
            else (TargetSpec.parse(target) if target else default_target())
        )
        self.env = env
        self.env_mode = env_mode or ("production" if env in (None, "prod", "production") else "development")
        self.prune = prune
        self.default_pause_status = default_pause_status
        self.check_drift = check_drift
        self.max_workers = max(1, max_workers)
        self.clock = clock or SystemClock()
        # The writer lease shared with the monitor; when None, each reconcile takes its own.
        self.lease = lease
        self.lease_wait = lease_wait
        self.table_id = control_table_id(control_table)
        self.context = CompileContext(
            control_table=control_table,
            control_table_id=self.table_id,
            env_name=env,
            env_mode=self.env_mode,
            default_warehouse_id=default_warehouse_id,
            managed_sql_root=managed_sql_root or f"/Workspace/Shared/lakeflow_job_meta/{self.table_id}",
            default_pause_status=default_pause_status,
        )
        self._workspace_client = workspace_client
        self._gateway = None
        ensure_handler()  # from a notebook: the log goes to the cell's output
        self._tracking_lock = threading.Lock()
        # Set by SIGTERM/SIGINT: modules not yet started are skipped, the one in flight finishes.
        self.stop_requested = threading.Event()

    # -- wiring ------------------------------------------------------------------------------
    @property
    def gateway(self):
        if self._gateway is None:
            from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs

            client = self._workspace_client
            if client is None:
                from databricks.sdk import WorkspaceClient

                client = WorkspaceClient()
            self._gateway = WorkspaceJobs(client)
        return self._gateway

    @property
    def target_key(self) -> str:
        if self.target.kind == "bundle":
            import os

            key = f"bundle:{os.path.abspath(self.target.bundle_dir or 'bundle')}"
        else:
            key = f"workspace:{self.gateway.host}"
        # Production-mode environments (and no --env) deploy the same job names, so they share
        # tracking rows; a development environment's prefixed jobs are tracked apart.
        return f"{key}#env={self.env}" if self.env and self.env_mode == "development" else key

    def describe_target(self) -> str:
        if self.target.kind == "bundle":
            return f"target: bundle folder {self.target.bundle_dir} (local; no workspace is contacted)"
        return f"target: workspace {self.gateway.host}"

    # -- state -------------------------------------------------------------------------------
    def _tracked(self) -> dict[str, TrackedJob]:
        tracked: dict[str, TrackedJob] = {}
        key = self.target_key
        for row in self.tables.jobs.read_all():
            if row.get("target") != key:
                continue
            tracked[row["module_name"]] = TrackedJob(
                module_name=row["module_name"],
                job_id=int(row["job_id"]) if row.get("job_id") is not None else 0,
                spec_hash=row.get("spec_hash") or "",
                paused_by_tool=bool(row.get("paused_by_tool")),
                managed_files=json.loads(row.get("managed_files") or "{}"),
                status=row.get("status") or "",
            )
        return tracked

    def _compile(
        self, desired: DesiredState, scope: set[str] | None = None
    ) -> tuple[dict[str, CompiledJob], dict[str, list[MetadataIssue]]]:
        """Compile the modules in ``scope`` (all when None) and, transitively, the modules their
        ``run_job`` tasks name: a one-module cycle of the monitor compiles one module, not all."""
        compiled: dict[str, CompiledJob] = {}
        issues: dict[str, list[MetadataIssue]] = {k: list(v) for k, v in desired.issues.items()}
        pending = sorted(desired.modules if scope is None else scope & set(desired.modules))
        seen = set(pending)
        while pending:
            name = pending.pop()
            result = compile_module(desired.modules[name], self.context)
            if result.issues:
                issues.setdefault(name, []).extend(result.issues)
            elif result.job is not None:
                compiled[name] = result.job
                for ref in result.job.run_job_refs.values():
                    if ref in desired.modules and ref not in seen:
                        seen.add(ref)
                        pending.append(ref)
            # else: no active source - the module's job follows the prune policy.
        return compiled, issues

    def _control_version(self) -> int | None:
        try:
            return self.tables.control.version()
        except Exception:
            return None

    # -- public API --------------------------------------------------------------------------
    def plan(self, modules: Iterable[str] | None = None, *, check_drift: bool | None = None) -> Plan:
        """What an apply would do, without writing anything."""
        self.tables.require_exists()
        desired = self.manager.desired_state()
        compiled, issues = self._compile(desired)
        if self.target.kind == "bundle":
            from lakeflow_job_meta.engine.bundle_target import plan_bundle

            return plan_bundle(self, compiled, issues, desired)
        tracked = self._tracked()
        scope = set(modules) if modules is not None else None
        changes, _ = self._plan_workspace(desired, compiled, issues, tracked, scope, check_drift)
        return Plan(changes=changes)

    def compile_one(self, module: str) -> CompiledJob:
        """One module's job as it would be deployed (for ``graph``); reads no workspace.
        Raises MetadataValidationError with the module's issues, LakeflowJobMetaError when the
        module is unknown or has no active source."""
        self.tables.require_exists()
        desired = self.manager.desired_state()
        if module not in desired.known:
            known = ", ".join(sorted(desired.known)) or "none"
            raise LakeflowJobMetaError(f"no module {module!r} in {self.control_table} (modules: {known})")
        compiled, issues = self._compile(desired, {module})
        if issues.get(module):
            raise MetadataValidationError(issues[module])
        if module not in compiled:
            raise LakeflowJobMetaError(f"module {module!r} is inactive or has no active source: no job")
        return compiled[module]

    def _plan_workspace(
        self,
        desired: DesiredState,
        compiled: dict[str, CompiledJob],
        issues: dict[str, list[MetadataIssue]],
        tracked: dict[str, TrackedJob],
        scope: set[str] | None,
        check_drift: bool | None,
        job_ids: Mapping[str, int] | None = None,
    ) -> tuple[list[PlannedChange], dict[str, Any]]:
        drift = self.check_drift if check_drift is None else check_drift
        names = set(compiled) | set(tracked) | set(issues)
        if scope is not None:
            names &= scope
        read_errors: dict[str, str] = {}
        live_by_module = self._live_jobs(tracked, names, drift, read_errors)
        ids = {m: t.job_id for m, t in tracked.items() if t.job_id}
        ids.update(job_ids or {})
        changes: list[PlannedChange] = []
        for name in sorted(names):
            if name in read_errors:  # this module's job could not be read: leave it for next run
                changes.append(
                    PlannedChange(
                        module=name, action="error", job_id=tracked[name].job_id, reason=read_errors[name]
                    )
                )
                continue
            changes.append(
                self._plan_one(name, desired, compiled, issues, tracked, live_by_module, ids, drift)
            )
        return changes, live_by_module

    def _live_jobs(
        self, tracked: Mapping[str, TrackedJob], names: set[str], drift: bool, errors: dict[str, str]
    ) -> dict[str, Any]:
        """Live jobs of tracked modules; a module whose job cannot be read goes to ``errors``
        (one failed read never aborts the run)."""
        wanted = {m: t for m, t in tracked.items() if m in names and t.job_id}
        if not wanted or not drift:
            return {}
        if len(wanted) > LIST_INSTEAD_OF_GET_THRESHOLD:
            by_id = {t.job_id: m for m, t in wanted.items()}
            try:
                return {by_id[job.job_id]: job for job in self.gateway.list_all() if job.job_id in by_id}
            except (JobsApiError, OSError) as error:
                errors.update(dict.fromkeys(wanted, f"could not list the live jobs: {error}"))
                return {}
        live = {}
        for module, t in wanted.items():
            try:
                job = self.gateway.get(t.job_id)
            except (JobsApiError, OSError) as error:
                errors[module] = f"could not read job {t.job_id}: {error}"
                continue
            if job is not None:
                live[module] = job
        return live

    def _plan_one(
        self,
        name: str,
        desired: DesiredState,
        compiled: Mapping[str, CompiledJob],
        issues: Mapping[str, list[MetadataIssue]],
        tracked: Mapping[str, TrackedJob],
        live_by_module: Mapping[str, Any],
        job_ids: Mapping[str, int],
        drift: bool,
    ) -> PlannedChange:
        if name in issues:
            return PlannedChange(
                module=name,
                action="error",
                job_id=tracked[name].job_id if name in tracked else None,
                reason="; ".join(str(i) for i in issues[name]),
            )
        job = compiled.get(name)
        if job is not None:
            job, missing = resolve_run_job_refs(job, job_ids)
            # A module the apply creates first is fine (should its create fail, the applier
            # refuses to send the placeholder job id 0); one that will get no job is an error now.
            missing = [m for m in missing if m not in compiled]
            if missing:
                return PlannedChange(
                    module=name,
                    action="error",
                    job_id=tracked[name].job_id if name in tracked else None,
                    job_name=job.job_name,
                    reason=f"run_job task names module {', '.join(missing)}, which has no job",
                )
        live = live_by_module.get(name)
        t = tracked.get(name)
        if t is not None and drift and t.job_id and live is None and name in compiled:
            # Tracked but gone from the workspace: create it again.
            t = None
        return plan_module(
            job,
            t,
            live.settings if live is not None else None,
            prune=self.prune,
            check_drift=drift and live is not None,
        )

    def run_all_modules(self, auto_run: bool = False) -> RunResult:
        """Create or update the job of every module; prune jobs of removed modules."""
        return self.reconcile(modules=None, auto_run=auto_run)

    def create_or_update_job(self, module_name: str, auto_run: bool = False) -> ModuleResult:
        """Reconcile a single module (and nothing else)."""
        result = self.reconcile(modules={module_name}, auto_run=auto_run)
        for module_result in result:
            if module_result.module == module_name:
                return module_result
        return ModuleResult(
            module=module_name, action="noop", outcome=OUTCOME_SKIPPED, error="module not found"
        )

    def reconcile(
        self,
        modules: Iterable[str] | None = None,
        *,
        auto_run: bool = False,
        check_drift: bool | None = None,
    ) -> RunResult:
        """Plan and apply. ``modules`` limits the run to those modules (the monitor passes the
        ones whose metadata changed); None means all."""
        run_id = uuid.uuid4().hex[:16]
        self.tables.ensure_exists()
        lease = self.lease
        own_lease = lease is None
        if lease is None:
            from lakeflow_job_meta.engine.lease import Lease

            lease = Lease(
                self.tables.state,
                holder_id=f"orchestrator@{_process_id()}",
                scope=self.table_id,
                clock=self.clock,
            )
        if lease.held:
            lease.ensure_held()  # never apply after losing the lease to another writer
        else:
            lease.acquire(
                wait=self.lease_wait,
                on_wait=lambda holder: log.warning("waiting for the writer lease held by %s", holder),
            )
        try:
            return self._reconcile(run_id, modules, auto_run, check_drift, lease)
        finally:
            if own_lease:
                lease.release()

    def _reconcile(
        self,
        run_id: str,
        modules: Iterable[str] | None,
        auto_run: bool,
        check_drift: bool | None,
        lease: Any,
    ) -> RunResult:
        # The bundle is rendered whole; the workspace target reads and compiles only what is in
        # scope (and the modules its run_job tasks name).
        scope = set(modules) if modules is not None and self.target.kind == "workspace" else None
        desired = self.manager.desired_state(only_modules=scope)
        compiled, issues = self._compile(desired, scope)
        if self.target.kind == "bundle":
            from lakeflow_job_meta.engine.bundle_target import apply_bundle

            result = apply_bundle(self, compiled, issues, desired, run_id)
            self._write_history(result)
            return result
        return self._reconcile_workspace(
            run_id, desired, compiled, issues, modules, auto_run, check_drift, lease
        )

    def _reconcile_workspace(
        self,
        run_id: str,
        desired: DesiredState,
        compiled: dict[str, CompiledJob],
        issues: dict[str, list[MetadataIssue]],
        modules: Iterable[str] | None,
        auto_run: bool,
        check_drift: bool | None,
        lease: Any,
    ) -> RunResult:
        from concurrent.futures import ThreadPoolExecutor

        from lakeflow_job_meta.engine.lease import LeaseLostError
        from lakeflow_job_meta.engine.workspace_target import TrackingWriter, WorkspaceApplier

        scope = set(modules) if modules is not None else None
        tracked = self._tracked()
        names = set(compiled) | set(tracked) | set(issues)
        if scope is not None:
            # A module referenced by run_job from a module in scope must exist first.
            names &= scope | {
                ref for m in scope if m in compiled for ref in compiled[m].run_job_refs.values()
            }
        result = RunResult(run_id=run_id, target=self.target_key)
        applier = WorkspaceApplier(
            self.gateway,
            TrackingWriter(self.tables.jobs, self.target_key, self._tracking_lock),
            control_table_id=self.table_id,
            default_pause_status=self.default_pause_status,
            applied_version=self._control_version(),
            hash_version=HASH_VERSION,
            auto_run=auto_run,
            run_token=run_id,
            clock_monotonic=self.clock.monotonic,
        )
        priorities = {name: compiled[name].priority if name in compiled else 100 for name in names}
        job_ids: dict[str, int] = {}
        for wave in apply_waves(compiled, names):
            wave = sorted(wave, key=lambda m: (priorities.get(m, 100), m))
            tracked = self._tracked() if job_ids else tracked
            changes, live = self._plan_workspace(
                desired, compiled, issues, tracked, set(wave), check_drift, job_ids
            )

            def run(change: PlannedChange, tracked=tracked, live=live) -> ModuleResult:
                if self.stop_requested.is_set():
                    return ModuleResult(
                        module=change.module, action=change.action, outcome=OUTCOME_SKIPPED, error="stopped"
                    )
                try:
                    # A run can outlast the lease TTL: renew when due, and apply nothing more
                    # once another writer may have taken over.
                    lease.ensure_held(verify=False)
                except LeaseLostError as error:
                    return ModuleResult(
                        module=change.module, action=change.action, outcome=OUTCOME_ERROR, error=str(error)
                    )
                try:
                    return applier.apply(change, tracked.get(change.module), live.get(change.module))
                except Exception as error:  # one module's bug never aborts the run
                    log.exception("module %s failed", change.module)
                    return ModuleResult(
                        module=change.module, action=change.action, outcome=OUTCOME_ERROR, error=repr(error)
                    )

            ordered = sorted(changes, key=lambda c: (priorities.get(c.module, 100), c.module))
            with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="ljm-apply") as pool:
                for module_result in pool.map(run, ordered):
                    result.results.append(module_result)
                    if module_result.job_id:
                        job_ids[module_result.module] = module_result.job_id
        self._write_history(result)
        return result

    def _write_history(self, result: RunResult) -> None:
        rows = [
            {
                "run_id": result.run_id,
                "target": result.target,
                "module_name": r.module,
                "action": r.action,
                "job_id": r.job_id,
                "old_hash": r.old_hash,
                "new_hash": r.new_hash,
                "outcome": r.outcome,
                "error": r.error,
                "duration_ms": r.duration_ms,
                "started_at": utc_datetime(self.clock.now() - r.duration_ms / 1000),  # when the module began
                "writes": r.job_writes + r.other_writes,
            }
            for r in result.results
            if r.action != "noop" or r.outcome != "ok" or r.other_writes or r.job_writes
        ]
        if rows:
            try:
                self.tables.history.append(rows)
            except Exception as error:  # history is an audit trail; losing it must not fail the run
                log.warning("could not append %d history rows: %s", len(rows), error)

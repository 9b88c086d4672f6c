"""``Orchestrator``: desired state (the tables) -> compile -> plan and apply through a ``Target``.

Owns what every target shares: reading the desired state, compiling it for the run's environment,
the writer lease around an apply, and the history rows after it. Where the jobs live, how the
actual state is read and what pruning means belong to the target; the orchestrator never asks
which kind it holds. Each call is level-triggered: it recomputes everything from the tables and
the target, so a crashed or repeated run converges to the same jobs.

Built by :mod:`lakeflow_job_meta.wiring`; ``lakeflow_job_meta.JobOrchestrator`` is the public name.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import replace

from lakeflow_job_meta.clock import Clock, utc_datetime
from lakeflow_job_meta.engine.desired_cache import DesiredStateCache, fingerprint
from lakeflow_job_meta.engine.lease import Lease, LeaseInfo, LeaseLostError
from lakeflow_job_meta.engine.metadata_manager import DesiredState, MetadataStore
from lakeflow_job_meta.engine.results import ModuleResult, RunResult
from lakeflow_job_meta.engine.targets.base import (
    ApplyProgress,
    ApplyRun,
    DesiredJobs,
    JobSummary,
    NoProgress,
    Target,
    job_json,
    refuse_auto_run,
    tracking_key,
)
from lakeflow_job_meta.errors import (
    JobsApiError,
    LakeflowJobMetaError,
    LeaseHeldError,
    MetadataIssue,
    MetadataValidationError,
)
from lakeflow_job_meta.metadata.models import Module
from lakeflow_job_meta.metadata.policy import Policy, policy_issues, with_policy_defaults
from lakeflow_job_meta.planning.acl import needs_identity
from lakeflow_job_meta.planning.blast_radius import MassChangeGuard, MassChangeLimit
from lakeflow_job_meta.planning.compiler import CompileContext, CompiledJob, compile_module
from lakeflow_job_meta.planning.plan import Plan, PlannedChange
from lakeflow_job_meta.storage.rows import HistoryRow
from lakeflow_job_meta.storage.state_store import StateStore, environment_key
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import EnvironmentMode, Outcome, PlanAction

log = logging.getLogger(__name__)

# The owner identity could not be read: such a desired state is never cached.
_IDENTITY_UNKNOWN = object()


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Orchestrator:
    """Creates and updates one Lakeflow job per module, on one target."""

    def __init__(
        self,
        *,
        tables: ToolTables,
        manager: MetadataStore,
        target: Target,
        context: CompileContext,
        state: StateStore,
        clock: Clock,
        env_mode: EnvironmentMode | None = None,
        lease: Lease | None = None,
        lease_wait: bool = True,
        lease_timeout: float | None = None,
        policy: Policy | None = None,
        allow_mass_change: bool = False,
        mass_change_limit: MassChangeLimit | None = None,
        desired_cache: DesiredStateCache | None = None,
    ):
        self.tables = tables
        self.manager = manager
        self.target = target
        self.context = context
        self.state = state
        self.clock = clock
        self.env = context.env_name
        self._env_mode = env_mode
        # The writer lease shared with the monitor; when None, each reconcile takes its own.
        self.lease = lease
        self.lease_wait = lease_wait
        # How long a run waits for another writer's lease (None: until it is free); 0 = no wait.
        self.lease_timeout = lease_timeout
        # The identity and code policy (None: everything allowed; the CLI says so once per run).
        self.policy = policy
        self.allow_mass_change = allow_mass_change or bool(policy and policy.allow_mass_change)
        self.mass_change_limit = mass_change_limit or (
            MassChangeLimit(policy.mass_change_max_jobs, policy.mass_change_max_fraction)
            if policy is not None
            else MassChangeLimit()
        )
        # The whole desired state kept between processes (None: always computed from the tables).
        self.desired_cache = desired_cache
        self.table_id = context.control_table_id
        self.control_table = context.control_table
        # Set by SIGTERM/SIGINT: modules not yet started are skipped, the one in flight finishes.
        self.stop_requested = threading.Event()

    # -- the environment ---------------------------------------------------------------------
    @property
    def env_mode(self) -> EnvironmentMode:
        """The environment's declared mode: given by the caller, else recorded by the last load
        of its YAML. A table loaded before modes were recorded falls back to the old reading of
        the name (``prod``/``production`` are production) until its YAML is loaded again."""
        if self._env_mode is not None or self.env is None:
            return self._env_mode or EnvironmentMode.PRODUCTION
        recorded = self.state.get(environment_key(self.env)) or {}
        if recorded.get("mode") in set(EnvironmentMode):
            return EnvironmentMode(recorded["mode"])
        legacy = self.env in ("prod", "production")
        return EnvironmentMode.PRODUCTION if legacy else EnvironmentMode.DEVELOPMENT

    def _run_context(self) -> CompileContext:
        return replace(self.context, env_mode=self.env_mode)

    @property
    def target_key(self) -> str:
        return self._target_key(self.env_mode)

    def _target_key(self, mode: EnvironmentMode) -> str:
        return tracking_key(self.target.key, self.env, mode == EnvironmentMode.DEVELOPMENT)

    def describe_target(self) -> str:
        return self.target.describe()

    # -- desired state -----------------------------------------------------------------------
    def _desired(self, scope: set[str] | None) -> DesiredJobs:
        context = self._run_context()
        stamp = self._cache_stamp(context) if scope is None else None
        if stamp is not None:
            cached = self._cached_desired(stamp, context)
            if cached is not None:
                return cached
        desired = self._with_policy(self.manager.desired_state(only_modules=scope))
        compiled, issues, identity = self._compile(desired, scope, context)
        result = DesiredJobs(
            compiled=compiled,
            issues=issues,
            known=desired.known,
            tracking_key=self._target_key(context.env_mode),
            name_prefix=context.name_prefix,
        )
        if stamp is not None and identity is not _IDENTITY_UNKNOWN and stamp == self._cache_stamp(context):
            # Stored only when the tables did not move while they were read. Each job's JSON
            # text is made once, for its digest and its cache entry.
            assert self.desired_cache is not None
            texts = {name: job_json(job) for name, job in compiled.items()}
            summaries = {name: JobSummary.of(compiled[name], text) for name, text in texts.items()}
            key = self._cache_key(context)
            self.desired_cache.store(key, stamp, texts, summaries, issues, desired.known, identity)
            result = replace(result, summaries=summaries)
        return result

    # -- the desired-state cache -------------------------------------------------------------
    def _cache_key(self, context: CompileContext) -> str:
        return f"{self.control_table}|{self._target_key(context.env_mode)}"

    def _cache_stamp(self, context: CompileContext) -> str | None:
        """The fingerprint of everything the whole desired state is computed from, or None when
        there is no cache (or a manager that computes it its own way)."""
        if self.desired_cache is None or type(self.manager).desired_state is not MetadataStore.desired_state:
            return None
        try:
            control, modules = self.tables.control.snapshot_id(), self.tables.modules.snapshot_id()
        except Exception:  # a table missing or unreadable: no cache; the read itself will say why
            return None
        return fingerprint(
            {
                "control": control,
                "modules": modules,
                "control_table": self.control_table,
                "modules_table": self.tables.modules.name,
                "default_warehouse_id": self.manager.default_warehouse_id,
                "context": repr(replace(context, run_identity=None)),
                "policy": repr(self.policy),
            }
        )

    def _cached_desired(self, stamp: str, context: CompileContext) -> DesiredJobs | None:
        assert self.desired_cache is not None
        cached = self.desired_cache.load(self._cache_key(context), stamp)
        if cached is None:
            return None
        if cached.identity is not None:  # owners were compiled in: the caller must be the same
            try:
                identity = self.target.owner_identity()
            except (JobsApiError, OSError):
                return None
            if repr(identity) != cached.identity:
                return None
        log.debug("desired state of %s from the cache (%d jobs)", self.control_table, len(cached.compiled))
        return DesiredJobs(
            compiled=cached.compiled,
            issues=cached.issues,
            known=cached.known,
            tracking_key=self._target_key(context.env_mode),
            name_prefix=context.name_prefix,
            summaries=cached.summaries,
        )

    def _with_policy(self, desired: DesiredState) -> DesiredState:
        """The policy's defaults applied to every valid module; a module that breaks the policy
        becomes an error of its own (no API write for it, never pruned), the others go on."""
        if self.policy is None:
            return desired
        modules: dict[str, Module] = {}
        issues = {name: list(found) for name, found in desired.issues.items()}
        for name, module in desired.modules.items():
            module = with_policy_defaults(module, self.policy, self.env)
            found = policy_issues(
                module,
                self.policy,
                control_table=self.control_table,
                modules_table=self.tables.modules.name,
            )
            if found:
                issues.setdefault(name, []).extend(found)
            else:
                modules[name] = module
        return replace(desired, modules=modules, issues=issues)

    def mass_change_guard(self, desired: DesiredJobs) -> MassChangeGuard:
        """The blast-radius limit for one run, over the jobs the target manages now."""
        return MassChangeGuard(
            self.target.managed_jobs(desired), self.mass_change_limit, self.allow_mass_change
        )

    def _compile(
        self, desired: DesiredState, scope: set[str] | None, context: CompileContext
    ) -> tuple[dict[str, CompiledJob], dict[str, list[MetadataIssue]], str | object | None]:
        """Compile the modules in ``scope`` (all when None) and, transitively, the modules their
        ``run_job`` tasks name: a one-module cycle of the monitor compiles one module, not all.
        Also returns the owner identity compiled in (its repr; None when no module needed one;
        ``_IDENTITY_UNKNOWN`` when it could not be read)."""
        compiled: dict[str, CompiledJob] = {}
        issues: dict[str, list[MetadataIssue]] = {k: list(v) for k, v in desired.issues.items()}
        pending = sorted(desired.modules if scope is None else scope & set(desired.modules))
        seen = set(pending)
        context, identity_error = self._with_owner(desired, context)
        while pending:
            name = pending.pop()
            settings = desired.modules[name].settings
            if identity_error and needs_identity(settings):
                field_name = "permissions" if settings.get("run_as") else "run_as"
                issues.setdefault(name, []).append(
                    MetadataIssue(f"module {name}", field_name, identity_error, module=name)
                )
                continue
            result = compile_module(desired.modules[name], context)
            if result.issues:
                issues.setdefault(name, []).extend(result.issues)
            elif result.job is not None:
                compiled[name] = result.job
                fresh = [
                    ref
                    for ref in result.job.run_job_refs.values()
                    if ref in desired.modules and ref not in seen
                ]
                seen.update(fresh)
                pending.extend(fresh)
            # else: no active source - the module's job follows the prune policy.
        identity: str | object | None = _IDENTITY_UNKNOWN if identity_error else None
        if context.run_identity is not None:
            identity = repr(context.run_identity)
        return compiled, issues, identity

    def _with_owner(
        self, desired: DesiredState, context: CompileContext
    ) -> tuple[CompileContext, str | None]:
        """The compile context with the identity running the tool, which the target makes the
        ``run_as`` of a module naming none and the owner of an ACL naming none (asked only when
        some module needs it; None for a target that leaves both to its deployer). Returns an
        error text instead when that identity cannot be read."""
        if not any(needs_identity(desired.modules[n].settings) for n in desired.modules):
            return context, None
        try:
            identity = self.target.owner_identity()
        except (JobsApiError, OSError) as error:
            return context, (
                "names no run_as or no IS_OWNER and the identity running the tool, which takes "
                f"their place, is unknown: {error}"
            )
        return (replace(context, run_identity=identity) if identity is not None else context), None

    def _control_version(self) -> int | None:
        try:
            return self.tables.control.version()
        except Exception:
            return None

    # -- public API --------------------------------------------------------------------------
    def plan(self, modules: Iterable[str] | None = None, *, check_drift: bool | None = None) -> Plan:
        """What an apply would do, without writing anything."""
        self.target.check_owner()
        self.tables.require_exists()
        scope = set(modules) if modules is not None else None
        desired = self._desired(None)
        plan = self.target.plan(desired, scope=scope, check_drift=check_drift)
        guard = self.mass_change_guard(desired)
        _, held = guard.screen(plan.changes)
        for change in held:
            change.reason = f"{change.reason}; held back by the blast-radius limit".lstrip("; ")
        if held:
            plan.warnings.append(guard.message())
        return plan

    def compile_one(self, module: str) -> CompiledJob:
        """One module's job as it would be deployed (for ``graph``); reads no workspace.
        Raises MetadataValidationError with the module's issues, LakeflowJobMetaError when the
        module is unknown or has no active source."""
        self.tables.require_exists()
        desired = self._desired({module})
        if module not in desired.known:
            known = ", ".join(sorted(self.manager.desired_state().known)) or "none"
            raise LakeflowJobMetaError(f"no module {module!r} in {self.control_table} (modules: {known})")
        if desired.issues.get(module):
            raise MetadataValidationError(desired.issues[module])
        if module not in desired.compiled:
            raise LakeflowJobMetaError(f"module {module!r} is inactive or has no active source: no job")
        return desired.compiled[module]

    def run_all_modules(self, auto_run: bool = False, *, progress: ApplyProgress | None = None) -> RunResult:
        """Create or update the job of every module; prune jobs of removed modules."""
        return self.reconcile(modules=None, auto_run=auto_run, progress=progress)

    def create_or_update_job(self, module_name: str, auto_run: bool = False) -> ModuleResult:
        """Reconcile a single module (and nothing else)."""
        result = self.reconcile(modules={module_name}, auto_run=auto_run)
        for module_result in result:
            if module_result.module == module_name:
                return module_result
        return ModuleResult(module_name, PlanAction.NOOP, outcome=Outcome.SKIPPED, error="module not found")

    def reconcile(
        self,
        modules: Iterable[str] | None = None,
        *,
        auto_run: bool = False,
        check_drift: bool | None = None,
        progress: ApplyProgress | None = None,
    ) -> RunResult:
        """Plan and apply under the writer lease. ``modules`` limits the run to those modules
        (the monitor passes the ones whose metadata changed); None means all."""
        if auto_run:  # a target that cannot run jobs says so before anything is written
            refuse_auto_run(self.target.kind)
        self.target.check_owner()  # before the tool's tables are created or the lease taken
        self.tables.ensure_exists()
        lease, own_lease = self._take_lease()
        try:
            scope = self.target.scope(set(modules) if modules is not None else None)
            desired = self._desired(scope)
            run = ApplyRun(
                run_id=uuid.uuid4().hex[:16],
                auto_run=auto_run,
                check_drift=check_drift,
                applied_version=self._control_version(),
                guard=lambda change: self._refuse(change, lease),
                mass_change=self.mass_change_guard(desired),
                progress=progress or NoProgress(),
            )
            result = RunResult(run_id=run.run_id, target=desired.tracking_key)
            result.results = self.target.apply(desired, run, scope=scope)
            if run.mass_change.held:
                result.warnings.append(run.mass_change.message())
                log.warning("%s", run.mass_change.message())
            self._write_history(result)
            return result
        finally:
            if own_lease:
                lease.release()

    # -- lease and history -------------------------------------------------------------------
    def _take_lease(self) -> tuple[Lease, bool]:
        lease, own = self.lease, self.lease is None
        if lease is None:
            lease = Lease(
                self.tables.state,
                holder_id=f"orchestrator@{process_id()}",
                scope=self.table_id,
                clock=self.clock,
            )
        if lease.held:
            lease.ensure_held()  # never apply after losing the lease to another writer
        else:
            self._acquire(lease)
        return lease, own

    def _acquire(self, lease: Lease) -> None:
        """Take the writer lease, waiting at most ``lease_timeout`` seconds (logged once), then
        raise LeaseHeldError naming the holder and when its lease expires."""
        wait = self.lease_wait and self.lease_timeout != 0
        logged: list[bool] = []

        def on_wait(holder: LeaseInfo | None) -> None:
            if not logged:
                logged.append(True)
                limit = "" if self.lease_timeout is None else f" (at most {self.lease_timeout:g}s)"
                who = holder.holder if holder is not None else "another process"
                log.warning("waiting for the writer lease held by %s%s", who, limit)

        if not lease.acquire(wait=wait, timeout=self.lease_timeout, on_wait=on_wait):
            raise LeaseHeldError(lease.held_message(waited=self.lease_timeout))

    def _refuse(self, change: PlannedChange, lease: Lease) -> ModuleResult | None:
        """Stop before a module once asked to, or once another writer may have the lease."""
        if self.stop_requested.is_set():
            return ModuleResult(change.module, change.action, outcome=Outcome.SKIPPED, error="stopped")
        try:
            # A run can outlast the lease TTL: renew when due.
            lease.ensure_held(verify=False)
        except LeaseLostError as error:
            return ModuleResult(change.module, change.action, outcome=Outcome.ERROR, error=str(error))
        return None

    def _write_history(self, result: RunResult) -> None:
        rows = [
            HistoryRow(
                run_id=result.run_id,
                target=result.target,
                module_name=r.module,
                action=r.action,
                job_id=r.job_id,
                old_hash=r.old_hash,
                new_hash=r.new_hash,
                outcome=r.outcome,
                error=r.error,
                duration_ms=r.duration_ms,
                started_at=utc_datetime(self.clock.now() - r.duration_ms / 1000),  # when the module began
                writes=r.job_writes + r.other_writes,
            ).as_row()
            for r in result.results
            if r.action != PlanAction.NOOP or r.outcome != Outcome.OK or r.other_writes or r.job_writes
        ]
        if rows:
            try:
                self.tables.history.append(rows)
            except Exception as error:  # history is an audit trail; losing it must not fail the run
                log.warning("could not append %d history rows: %s", len(rows), error)

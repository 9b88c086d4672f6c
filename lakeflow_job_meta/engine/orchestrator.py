"""``Orchestrator``: desired state (the tables) -> compile -> plan and apply through a ``Target``.

Owns what every target shares: reading the desired state, compiling it for the run's environment,
the writer lease around an apply, and the history rows after it. Where the jobs live, how the
actual state is read and what pruning means belong to the target; the orchestrator never asks
which kind it holds. Each call is level-triggered: it recomputes everything from the tables and
the target, so a crashed or repeated run converges to the same jobs.

Built by :mod:`lakeflow_job_meta.wiring`; ``lakeflow_job_meta.JobOrchestrator`` is the public name.
"""

from __future__ import annotations

import enum
import fnmatch
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from lakeflow_job_meta.clock import Clock, utc_datetime
from lakeflow_job_meta.engine.desired_cache import DesiredStateCache, fingerprint
from lakeflow_job_meta.engine.lease import Lease, LeaseInfo, LeaseLostError, apply_holder_id
from lakeflow_job_meta.engine.metadata_manager import DesiredState, MetadataStore
from lakeflow_job_meta.engine.plan_file import PlanFile, moved
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
    ConfigurationError,
    JobsApiError,
    LakeflowJobMetaError,
    LeaseHeldError,
    MetadataIssue,
    MetadataValidationError,
    PlanMovedError,
)
from lakeflow_job_meta.metadata.models import Module
from lakeflow_job_meta.metadata.policy import Policy, policy_issues, with_policy_defaults
from lakeflow_job_meta.planning.acl import needs_identity
from lakeflow_job_meta.planning.blast_radius import MassChangeGuard, MassChangeLimit
from lakeflow_job_meta.planning.compiler import CompileContext, CompiledJob, compile_module
from lakeflow_job_meta.planning.plan import Plan, PlannedChange
from lakeflow_job_meta.storage.rows import HistoryRow
from lakeflow_job_meta.storage.state_store import StateKey, StateStore, environment_key
from lakeflow_job_meta.storage.tables import ToolTables
from lakeflow_job_meta.vocabulary import EnvironmentMode, Outcome, PlanAction

log = logging.getLogger(__name__)


class _Identity(enum.Enum):
    # The owner identity could not be read: such a desired state is never cached.
    UNKNOWN = "unknown"


_GLOB_CHARACTERS = frozenset("*?[")


def manual_hint(module: str) -> str:
    """What a held ``sync: manual`` change says: how to apply it."""
    return f"sync: manual: pending until `apply --module {module}`"


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
        if stamp is not None and identity is not _Identity.UNKNOWN and stamp == self._cache_stamp(context):
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
            except JobsApiError:
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
    ) -> tuple[dict[str, CompiledJob], dict[str, list[MetadataIssue]], str | _Identity | None]:
        """Compile the modules in ``scope`` (all when None) and, transitively, the modules their
        ``run_job`` tasks name: a one-module cycle of the monitor compiles one module, not all.
        Also returns the owner identity compiled in (its repr; None when no module needed one;
        ``_Identity.UNKNOWN`` when it could not be read)."""
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
        identity: str | _Identity | None = _Identity.UNKNOWN if identity_error else None
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
        except JobsApiError as error:
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
        """What an apply would do, without writing anything. ``modules`` (names, as given by
        ``--module``) limits the plan to them; a ``sync: manual`` module's change is marked as
        pending unless it is named there."""
        self.target.check_owner()
        self.tables.require_exists()
        scope = set(modules) if modules is not None else None
        self.target.prefetch(scope, check_drift)
        desired = self._desired(None)
        plan = self.target.plan(desired, scope=scope, check_drift=check_drift)
        for change in plan.changes:
            if self._held_manual(change, desired, scope):
                change.reason = f"{change.reason}; {manual_hint(change.module)}".lstrip("; ")
        guard = self.mass_change_guard(desired)
        _, held = guard.screen(plan.changes)
        for change in held:
            change.reason = f"{change.reason}; held back by the blast-radius limit".lstrip("; ")
        if held:
            plan.warnings.append(guard.message())
        return plan

    def select_modules(self, patterns: Iterable[str]) -> set[str]:
        """The modules ``--module`` patterns name (fnmatch globs), among those the metadata
        knows and those with a tracked job (a removed module can be named to prune it). A
        pattern that matches nothing is a usage error: a typo must never select nothing."""
        desired = self.manager.desired_state()
        try:
            rows = self.tables.jobs.read_all()
        except Exception:  # no jobs-tracking table yet (a control table made by SQL): none tracked
            rows = []
        tracked = {str(row.get("module_name")) for row in rows if row.get("module_name")}
        candidates = set(desired.known) | tracked
        selected: set[str] = set()
        for pattern in patterns:
            if _GLOB_CHARACTERS & set(pattern):
                found = {name for name in candidates if fnmatch.fnmatchcase(name, pattern)}
            else:
                found = {pattern} & candidates
            if not found:
                known = ", ".join(sorted(candidates)[:20]) or "none"
                raise ConfigurationError(
                    f"--module {pattern!r} matches no module of {self.control_table} (modules: {known})"
                )
            selected |= found
        return selected

    @staticmethod
    def _held_manual(change: PlannedChange, desired: DesiredJobs, named: set[str] | None) -> bool:
        """Whether a change belongs to a ``sync: manual`` module that no ``--module`` named:
        such a change is recorded and shown, never applied."""
        if named is not None and change.module in named:
            return False
        if change.action in (PlanAction.NOOP, PlanAction.ERROR) and not change.writes_outside_the_job:
            return False
        job = change.compiled or desired.compiled.get(change.module)
        return job is not None and job.sync_manual

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
        """Reconcile a single module (and nothing else). Naming it applies a ``sync: manual``
        module's change, as ``apply --module`` does."""
        result = self.reconcile(modules={module_name}, auto_run=auto_run, named={module_name})
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
        named: Iterable[str] | None = None,
        expected: PlanFile | None = None,
    ) -> RunResult:
        """Plan and apply under the writer lease. ``modules`` limits the run to those modules
        (the monitor passes the ones whose metadata changed); None means all. ``named``: the
        modules the user named (``--module``); only they apply a ``sync: manual`` module's
        change, every other run records it as pending. ``expected``: the plan file an ``apply
        --plan`` applies; a module that moved since is refused right before it would be written."""
        if auto_run:  # a target that cannot run jobs says so before anything is written
            refuse_auto_run(self.target.kind)
        self.target.check_owner()  # before the tool's tables are created or the lease taken
        self.tables.ensure_exists()
        lease, own_lease = self._take_lease()
        named_set = set(named) if named is not None else None
        try:
            scope = self.target.scope(set(modules) if modules is not None else None)
            self.target.prefetch(scope, check_drift)
            desired = self._desired(scope)
            pending: dict[str, dict[str, Any]] = {}
            pending_lock = threading.Lock()

            def guard(change: PlannedChange) -> ModuleResult | None:
                refused = self._refuse(change, lease)
                if refused is not None:
                    return refused
                if expected is not None:
                    why = moved(change, expected.modules.get(change.module))
                    if why is not None:
                        return ModuleResult(change.module, change.action, outcome=Outcome.ERROR, error=why)
                if self._held_manual(change, desired, named_set):
                    with pending_lock:
                        pending[change.module] = _pending_entry(change, self.clock.now())
                    return ModuleResult(
                        change.module,
                        change.action,
                        outcome=Outcome.PENDING,
                        job_id=change.job_id,
                        job_name=change.job_name,
                        drift=change.drift,
                        diff=[*(str(d) for d in change.diff), *change.acl_drift],
                        error=manual_hint(change.module),
                    )
                return None

            run = ApplyRun(
                run_id=uuid.uuid4().hex[:16],
                auto_run=auto_run,
                check_drift=check_drift,
                applied_version=self._control_version(),
                guard=guard,
                mass_change=self.mass_change_guard(desired),
                progress=progress or NoProgress(),
                # What the user named (or the plan file holds): a target that plans everything (a
                # bundle) leaves the rest alone. The monitor's changed modules are no such limit:
                # a bundle stays whole.
                only=named_set if expected is None else set(expected.to_apply),
            )
            result = RunResult(run_id=run.run_id, target=desired.tracking_key)
            result.results = self.target.apply(desired, run, scope=scope)
            if run.mass_change.held:
                result.warnings.append(run.mass_change.message())
                log.warning("%s", run.mass_change.message())
            self._write_history(result)
            self._record_pending(desired.tracking_key, result, pending)
            return result
        finally:
            if own_lease:
                lease.release()

    def apply_plan(
        self, plan_file: PlanFile, *, auto_run: bool = False, progress: ApplyProgress | None = None
    ) -> RunResult:
        """Apply exactly what ``plan_file`` holds, or nothing: its modules are planned again
        and any that moved (metadata, the tracked hash, or the live job) are named in a
        PlanMovedError before anything is written. A ``sync: manual`` module's change applies
        only when the plan was limited to it (``plan --module``); otherwise the plan showed it
        as pending, and it stays pending."""
        if plan_file.control_table != self.control_table:
            raise ConfigurationError(
                f"the plan was made for control table {plan_file.control_table}, not {self.control_table}"
            )
        if plan_file.target != self.target_key:
            raise ConfigurationError(
                f"the plan was made for target {plan_file.target}, not {self.target_key}"
            )
        modules = plan_file.to_apply
        if not modules:
            return RunResult(run_id=uuid.uuid4().hex[:16], target=self.target_key)
        now = self.plan(modules, check_drift=plan_file.check_drift)
        problems = [
            why for change in now.changes if (why := moved(change, plan_file.modules.get(change.module)))
        ]
        if problems:
            raise PlanMovedError(
                "the plan no longer matches; nothing was applied (run `plan --out` again): "
                + "; ".join(problems)
            )
        return self.reconcile(
            modules,
            auto_run=auto_run,
            check_drift=plan_file.check_drift,
            progress=progress,
            named=set(plan_file.named) if plan_file.named is not None else None,
            expected=plan_file,
        )

    def _record_pending(
        self, tracking_key: str, result: RunResult, held: Mapping[str, dict[str, Any]]
    ) -> None:
        """Keep the held changes of ``sync: manual`` modules in the state table (``status``
        shows them out of sync, with their diff); a module applied or found in sync is cleared.
        Written only when something changed, so a monitor holding the same change writes once."""
        try:
            document = self.state.get(StateKey.PENDING_MANUAL) or {}
        except Exception as error:  # the audit of pending changes must not fail the run
            log.warning("could not read the pending manual changes: %s", error)
            return
        entries = dict(document.get(tracking_key) or {})
        before = dict(entries)
        for r in result.results:
            if r.module in held:
                previous = entries.get(r.module) or {}
                entry = dict(held[r.module])
                if {k: v for k, v in previous.items() if k != "detected_at"} == {
                    k: v for k, v in entry.items() if k != "detected_at"
                }:
                    entry["detected_at"] = previous.get("detected_at", entry["detected_at"])
                entries[r.module] = entry
            elif r.outcome == Outcome.OK:
                entries.pop(r.module, None)
        if entries == before:
            return
        document = {**document, tracking_key: entries}
        if not entries:
            document.pop(tracking_key, None)
        try:
            self.state.put(StateKey.PENDING_MANUAL, document)
        except Exception as error:
            log.warning("could not record the pending manual changes: %s", error)

    # -- lease and history -------------------------------------------------------------------
    def _take_lease(self) -> tuple[Lease, bool]:
        lease, own = self.lease, self.lease is None
        if lease is None:
            lease = Lease(
                self.tables.state,
                holder_id=apply_holder_id(process_id()),
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
        def row(r: ModuleResult, module: str, error: str | None, writes: int) -> dict[str, Any]:
            return HistoryRow(
                run_id=result.run_id,
                target=result.target,
                module_name=module,
                action=r.action,
                job_id=r.job_id,
                old_hash=r.old_hash,
                new_hash=r.new_hash,
                outcome=r.outcome,
                error=error,
                duration_ms=r.duration_ms,
                # When the module began: modules run side by side, so "now minus duration" is right
                # only for the last to finish; a target that does not time modules gets that.
                started_at=utc_datetime(
                    r.started_at if r.started_at is not None else self.clock.now() - r.duration_ms / 1000
                ),
                writes=writes,
            ).as_row()

        rows = [
            row(r, r.module, r.error or _rename_note(r), r.job_writes + r.other_writes)
            for r in result.results
            if (r.action != PlanAction.NOOP or r.outcome != Outcome.OK or r.other_writes or r.job_writes)
            # A held sync: manual change wrote nothing; the state table keeps it for `status`
            # (a history row per monitor cycle would bury what was applied).
            and r.outcome != Outcome.PENDING
        ]
        # A rename is recorded under the old name too: that name's history ends with the rename.
        rows += [
            row(r, r.renamed_from, f"renamed to {r.module}", 0) for r in result.results if r.renamed_from
        ]
        if rows:
            try:
                self.tables.history.append(rows)
            except Exception as error:  # history is an audit trail; losing it must not fail the run
                log.warning("could not append %d history rows: %s", len(rows), error)


def _rename_note(result: ModuleResult) -> str | None:
    """The history note of a rename's row under the new name (the error column, empty otherwise)."""
    return f"renamed from {result.renamed_from}" if result.renamed_from else None


def _pending_entry(change: PlannedChange, now: float) -> dict[str, Any]:
    """What ``status`` shows of a held ``sync: manual`` change."""
    return {
        "action": str(change.action),
        "job_id": change.job_id,
        "reason": change.reason,
        "drift": change.drift,
        "diff": [*(str(d) for d in change.diff), *change.acl_drift],
        "detected_at": now,
    }

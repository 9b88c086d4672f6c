"""The ``Target`` protocol: the one seam between the orchestrator and where jobs live.

The orchestrator owns the desired state, the compile, the lease and the history; a target owns
its key, how it describes itself, how it reads the actual state, how it plans and applies one
module's change, and what pruning means for it. The orchestrator never asks which kind it holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakeflow_job_meta.engine.results import ModuleResult
from lakeflow_job_meta.errors import ConfigurationError, MetadataIssue
from lakeflow_job_meta.planning.acl import RunIdentity
from lakeflow_job_meta.planning.blast_radius import MassChangeGuard
from lakeflow_job_meta.planning.compiler import CompiledJob
from lakeflow_job_meta.planning.plan import Plan, PlannedChange
from lakeflow_job_meta.vocabulary import PrunePolicy, TargetKind

BUNDLE_PREFIX = "bundle:"


@dataclass(frozen=True)
class TargetSpec:
    """``workspace`` or ``bundle:DIR`` as the user wrote it."""

    kind: TargetKind
    bundle_dir: str | None = None

    @staticmethod
    def parse(text: str) -> TargetSpec:
        if text == TargetKind.WORKSPACE:
            return TargetSpec(TargetKind.WORKSPACE)
        if text.startswith(BUNDLE_PREFIX) and len(text) > len(BUNDLE_PREFIX):
            return TargetSpec(TargetKind.BUNDLE, text[len(BUNDLE_PREFIX) :])
        raise ConfigurationError(f"invalid target {text!r}: use 'workspace' or 'bundle:DIR'")

    def __str__(self) -> str:
        return str(self.kind) if self.kind == TargetKind.WORKSPACE else f"{BUNDLE_PREFIX}{self.bundle_dir}"


def default_target() -> TargetSpec:
    """``workspace`` inside the Databricks Runtime, a local bundle folder elsewhere. Never guessed
    from credentials."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return TargetSpec(TargetKind.WORKSPACE)
    return TargetSpec(TargetKind.BUNDLE, "bundle")


def job_json(job: CompiledJob) -> str:
    """A compiled job as canonical JSON (sorted keys): what its digest is taken over and what the
    desired-state cache stores. Its fields are plain JSON data, so no deep copy is needed."""
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def job_digest(job: CompiledJob, text: str | None = None) -> str:
    """SHA-256 of everything a compiled job holds (``text``: its :func:`job_json`, when known)."""
    return hashlib.sha256((text if text is not None else job_json(job)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JobSummary:
    """What a target can decide most modules by without the whole compiled job."""

    job_name: str
    digest: str  # job_digest of the compiled job

    @staticmethod
    def of(job: CompiledJob, text: str | None = None) -> JobSummary:
        return JobSummary(job.job_name, job_digest(job, text))


@dataclass(frozen=True)
class DesiredJobs:
    """What the orchestrator hands a target: the compiled jobs, the modules whose metadata has
    issues (their jobs keep their last good definition), and every module name the metadata knows.

    ``compiled`` may read each job on demand (the desired-state cache): a target that can decide
    by ``summary`` should, so a large unchanged metadata set is never held in memory at once."""

    compiled: Mapping[str, CompiledJob]
    issues: dict[str, list[MetadataIssue]]
    known: set[str]
    # The tracking key of this target in this environment (rows of the jobs-tracking table).
    tracking_key: str
    # The development-mode job-name prefix (a bundle maps files back to modules by it).
    name_prefix: str = ""
    # Summaries of the compiled jobs when already known (a cache hit, or just stored in it).
    summaries: Mapping[str, JobSummary] | None = None
    # Summaries computed on demand, once per module: only a target that asks pays for them.
    _computed: dict[str, JobSummary] = field(default_factory=dict, init=False, repr=False, compare=False)

    def summary(self, module: str) -> JobSummary:
        if self.summaries is not None and module in self.summaries:
            return self.summaries[module]
        found = self._computed.get(module)
        if found is None:
            found = self._computed[module] = JobSummary.of(self.compiled[module])
        return found


class ApplyProgress(Protocol):
    """Told how many modules an apply will go through and each one's result as it finishes
    (from worker threads). The CLI draws a progress bar with it; the default does nothing."""

    def start(self, total: int) -> None: ...

    def advance(self, result: ModuleResult) -> None: ...


class NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, result: ModuleResult) -> None:
        pass


@dataclass
class ApplyRun:
    """One apply, as the orchestrator runs it."""

    run_id: str
    auto_run: bool = False
    check_drift: bool | None = None
    # Delta version of the control table the desired state was read at.
    applied_version: int | None = None
    # Called before each module's change; a result means "do not apply it" (stopped, lease lost).
    guard: Callable[[PlannedChange], ModuleResult | None] = field(default=lambda change: None)
    # The blast-radius limit: targets screen their planned changes through it before writing,
    # and leave the pauses and deletes it holds back as ``held`` results.
    mass_change: MassChangeGuard = field(default_factory=lambda: MassChangeGuard(0, allow=True))
    progress: ApplyProgress = field(default_factory=NoProgress)
    # The modules the user named (``--module``, ``create_or_update_job``); None: all. A target
    # that always plans everything (a bundle) leaves the others' files as they are.
    only: set[str] | None = None


class Target(Protocol):
    """Where the jobs are. Implemented by ``WorkspaceTarget`` and ``BundleTarget``."""

    @property
    def kind(self) -> TargetKind: ...

    @property
    def key(self) -> str:
        """Identifies the target in the jobs-tracking table (``workspace:<host>``, ``bundle:<abs dir>``)."""

    @property
    def prune(self) -> PrunePolicy:
        """What happens to the job of a module that left the metadata."""

    def describe(self) -> str:
        """One line for the user: where the jobs go."""

    def owner_identity(self) -> RunIdentity | None:
        """Who owns a job whose ACL names no ``IS_OWNER``: the identity running the tool, read
        once (may raise JobsApiError); None when the target leaves it to its deployer."""

    def check_owner(self) -> None:
        """Raise ConfigurationError when the target as a whole belongs to another control table
        (a bundle folder another table wrote); called before anything is read or written."""

    def managed_jobs(self, desired: DesiredJobs) -> int:
        """How many jobs this target manages now: the base of the blast-radius limit."""

    def scope(self, modules: set[str] | None) -> set[str] | None:
        """The modules to read and compile for a run limited to ``modules`` (None: all)."""

    def prefetch(self, scope: set[str] | None, check_drift: bool | None) -> Future[Any] | None:
        """Start reading what the next plan or apply over ``scope`` needs from the target, in
        the background while the desired state is computed. Returns the read under way, or None
        where there is nothing worth reading ahead."""

    def plan(self, desired: DesiredJobs, *, scope: set[str] | None, check_drift: bool | None) -> Plan:
        """What an apply would do, without writing anything."""

    def apply(self, desired: DesiredJobs, run: ApplyRun, *, scope: set[str] | None) -> list[ModuleResult]:
        """Apply the changes; one module's failure is its result, never an exception."""


# Why a target kind cannot run jobs: asking it to (``--auto-run``, ``auto_run=True``) is a usage
# error naming this, never silently ignored (an apply that exited 0 and ran nothing).
CANNOT_RUN_JOBS: dict[TargetKind, str] = {
    TargetKind.BUNDLE: (
        "auto-run cannot apply to the bundle target: it writes job definitions into a folder and "
        "no job exists until `databricks bundle deploy`; run them after the deploy "
        "(`databricks bundle run JOB_KEY`), or use --target workspace"
    ),
}


def refuse_auto_run(kind: TargetKind) -> None:
    """Raise ConfigurationError (exit 2) when ``kind`` of target cannot run the jobs it writes."""
    reason = CANNOT_RUN_JOBS.get(kind)
    if reason is not None:
        raise ConfigurationError(reason)


def tracking_key(base: str, env_name: str | None, development: bool) -> str:
    """Production-mode environments (and no ``--env``) deploy the same job names, so they share
    tracking rows; a development environment's prefixed jobs are tracked apart."""
    return f"{base}#env={env_name}" if env_name and development else base


def issue_text(issues: Mapping[str, list[MetadataIssue]], module: str) -> str:
    return "; ".join(str(i) for i in issues[module])

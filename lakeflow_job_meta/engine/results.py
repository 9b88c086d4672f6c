"""Outcomes as data: every module gets a :class:`ModuleResult`, every run a :class:`RunResult`.
A run never aborts halfway because of one module; its failures are results, not exceptions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lakeflow_job_meta.planning.blast_radius import ALLOW_FLAG
from lakeflow_job_meta.planning.plan import PlannedChange
from lakeflow_job_meta.vocabulary import Outcome, PlanAction

# How a bundle target's key (and so a run's ``target``) starts: ``bundle:<abs dir>``.
BUNDLE_KEY_PREFIX = "bundle:"


@dataclass
class ModuleResult:
    module: str
    action: PlanAction
    outcome: Outcome = Outcome.OK
    job_id: int | None = None
    job_name: str | None = None
    error: str | None = None
    drift: bool = False
    diff: list[str] = field(default_factory=list)
    job_writes: int = 0
    other_writes: int = 0
    run_id: int | None = None
    old_hash: str | None = None
    new_hash: str | None = None
    duration_ms: int = 0
    # The failure may pass by itself (a transient API error): the monitor retries it with backoff.
    # False for invalid metadata and permanent API errors, which wait for a metadata change.
    transient: bool = False
    # A rename: the earlier module name whose job this module took over (history records both).
    renamed_from: str | None = None
    # When the module's apply began (epoch seconds), where the target times modules one by one.
    started_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "action": self.action,
            "outcome": self.outcome,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "error": self.error,
            "drift": self.drift,
            "diff": self.diff,
            "job_writes": self.job_writes,
            "other_writes": self.other_writes,
            "run_id": self.run_id,
        }


@dataclass
class RunResult:
    """Per-module results of one run. Iterating yields the module results (reference API)."""

    run_id: str
    target: str
    results: list[ModuleResult] = field(default_factory=list)
    # Run-level lines an operator must read (e.g. the mass-change hold and how to allow it).
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[ModuleResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, module: str) -> ModuleResult:
        for result in self.results:
            if result.module == module:
                return result
        raise KeyError(module)

    @property
    def ok(self) -> bool:
        return all(r.outcome not in (Outcome.ERROR, Outcome.HELD) for r in self.results)

    @property
    def job_writes(self) -> int:
        return sum(r.job_writes for r in self.results)

    @property
    def other_writes(self) -> int:
        return sum(r.other_writes for r in self.results)

    def counts(self) -> dict[PlanAction, int]:
        return dict(Counter(r.action for r in self.results))

    @property
    def on_bundle(self) -> bool:
        return self.target.startswith(BUNDLE_KEY_PREFIX)

    def writes_text(self) -> str:
        """What the run wrote, in the target's own terms: a bundle run writes files, never jobs
        (``0 job write(s)`` after creating a job file read as if nothing had happened)."""
        if self.on_bundle:
            return f"{self.other_writes} bundle file(s) written"
        return f"{self.job_writes} job write(s), {self.other_writes} other write(s)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "target": self.target,
            "ok": self.ok,
            "job_writes": self.job_writes,
            "other_writes": self.other_writes,
            "warnings": self.warnings,
            "results": [r.as_dict() for r in sorted(self.results, key=lambda r: r.module)],
        }


def held_result(change: PlannedChange) -> ModuleResult:
    """The outcome of a pause or delete the blast-radius limit held back: nothing was written."""
    return ModuleResult(
        module=change.module,
        action=change.action,
        outcome=Outcome.HELD,
        job_id=change.job_id,
        job_name=change.job_name,
        error=f"{change.action} held back by the blast-radius limit ({ALLOW_FLAG} lets it through)",
    )

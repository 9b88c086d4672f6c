"""The blast-radius limit: one bad ``DELETE FROM`` or an emptied volume must not pause a platform.

When one apply (or one monitor cycle) would pause or delete more than ``max(max_jobs,
max_fraction x managed jobs)`` jobs, every pause and delete of that run is held back and listed;
creates and updates still apply, and the run fails until an operator passes
``--allow-mass-change`` (or the metadata is restored). A YAML volume that held files and suddenly
lists none is treated the same way: its rows are kept, so nothing is pruned. Pure functions: the
engine supplies the counts and decides what "held" means for its outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lakeflow_job_meta.metadata.limits import MASS_CHANGE_MAX_FRACTION, MASS_CHANGE_MAX_JOBS
from lakeflow_job_meta.planning.plan import PlannedChange
from lakeflow_job_meta.vocabulary import PlanAction

DESTRUCTIVE_ACTIONS: frozenset[PlanAction] = frozenset({PlanAction.PAUSE, PlanAction.DELETE})
ALLOW_FLAG = "--allow-mass-change"


@dataclass(frozen=True)
class MassChangeLimit:
    """At most ``max(max_jobs, max_fraction x managed)`` pauses and deletes per run."""

    max_jobs: int = MASS_CHANGE_MAX_JOBS
    max_fraction: float = MASS_CHANGE_MAX_FRACTION

    def threshold(self, managed_jobs: int) -> float:
        return max(float(self.max_jobs), self.max_fraction * max(0, managed_jobs))

    def describe(self) -> str:
        return f"max({self.max_jobs}, {self.max_fraction:.0%} of the managed jobs)"


@dataclass
class MassChangeGuard:
    """Screens one run's planned changes, wave by wave, counting destructive ones across waves."""

    managed_jobs: int
    limit: MassChangeLimit = field(default_factory=MassChangeLimit)
    allow: bool = False
    held: list[PlannedChange] = field(default_factory=list)
    _passed: int = 0

    def screen(self, changes: Sequence[PlannedChange]) -> tuple[list[PlannedChange], list[PlannedChange]]:
        """``(to_apply, held)``: destructive changes are held when this run's total of them
        (the ones already passed included) would exceed the limit, unless allowed."""
        destructive = [c for c in changes if c.action in DESTRUCTIVE_ACTIONS]
        total = self._passed + len(destructive) + len(self.held)
        if self.allow or not destructive or total <= self.limit.threshold(self.managed_jobs):
            self._passed += len(destructive)
            return list(changes), []
        self.held.extend(destructive)
        return [c for c in changes if c.action not in DESTRUCTIVE_ACTIONS], destructive

    def message(self, held: Iterable[PlannedChange] | None = None) -> str:
        """One line naming what was held and how to let it through."""
        items = sorted(held if held is not None else self.held, key=lambda c: c.module)
        total = self._passed + len(self.held)
        listed = ", ".join(f"{c.action} {c.module}" for c in items)
        return (
            f"mass change held back: {total} of {self.managed_jobs} managed jobs would be paused or "
            f"deleted, over the limit of {self.limit.describe()}: {listed}. If this is intended, "
            f"run again with {ALLOW_FLAG} (wheel parameter allow_mass_change); else restore the metadata"
        )


def volume_emptied(known_files: int, listed_files: int) -> bool:
    """A volume that held files and now lists none: more likely an outage, a wrong mount or a
    mistaken ``rm`` than the intent to remove every job, so its rows are not deleted."""
    return known_files > 0 and listed_files == 0


def emptied_volume_message(folder: str, known_files: int) -> str:
    return (
        f"{folder} listed no YAML files but held {known_files} before: nothing is pruned. If every "
        f"file was removed on purpose, run again with {ALLOW_FLAG} (wheel parameter allow_mass_change)"
    )

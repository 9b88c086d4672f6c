"""``plan --out FILE`` and ``apply --plan FILE``: a reviewed plan, applied exactly.

The file records, per module, what the plan would do and what it was made from: the spec hash
of the metadata (``new_hash``), the hash the tool recorded for the job (``old_hash``) and the
digest of the live settings it compared with (``live_hash``, when it read them). An apply from
the file re-plans the same modules and refuses, naming each module that moved, when any of these
differ; the same check runs again under the writer lease right before each module is written,
so a change that lands between the check and the write is refused too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.planning.plan import Plan, PlannedChange
from lakeflow_job_meta.vocabulary import PlanAction

PLAN_FILE_FORMAT = "lakeflow-job-meta-plan/1"


@dataclass(frozen=True)
class PlannedModule:
    """One module as the plan saw it."""

    module: str
    action: str
    job_id: int | None = None
    new_hash: str | None = None
    old_hash: str | None = None
    live_hash: str | None = None
    writes_outside_the_job: bool = False

    @staticmethod
    def of(change: PlannedChange) -> PlannedModule:
        return PlannedModule(
            module=change.module,
            action=str(change.action),
            job_id=change.job_id,
            new_hash=_metadata_hash(change),
            old_hash=change.old_hash,
            live_hash=change.live_hash,
            writes_outside_the_job=change.writes_outside_the_job,
        )

    @property
    def applies(self) -> bool:
        """Whether an apply of the plan writes anything for this module."""
        return self.action not in (PlanAction.NOOP, PlanAction.ERROR) or self.writes_outside_the_job


@dataclass(frozen=True)
class PlanFile:
    control_table: str
    target: str
    check_drift: bool
    modules: dict[str, PlannedModule] = field(default_factory=dict)
    # The modules the plan was limited to by ``--module`` (None: all). Only they apply a
    # ``sync: manual`` module's change: the plan itself showed any other as pending.
    named: list[str] | None = None

    @property
    def to_apply(self) -> set[str]:
        return {name for name, planned in self.modules.items() if planned.applies}


def write_plan_file(
    path: str,
    plan: Plan,
    *,
    control_table: str,
    target: str,
    check_drift: bool,
    named: set[str] | None = None,
) -> PlanFile:
    """Write the plan (its JSON, plus what each module was made from) to ``path``."""
    recorded = PlanFile(
        control_table,
        target,
        check_drift,
        {c.module: PlannedModule.of(c) for c in plan.changes},
        sorted(named) if named is not None else None,
    )
    document = {
        "format": PLAN_FILE_FORMAT,
        "control_table": control_table,
        "target": target,
        "check_drift": check_drift,
        "named": recorded.named,
        "modules": [vars(m) for m in recorded.modules.values()],
        "plan": plan.as_json(),
    }
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    return recorded


def read_plan_file(path: str) -> PlanFile:
    """The plan written by ``plan --out``; ConfigurationError (exit 2) naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise ConfigurationError(f"--plan {path}: cannot read it: {error.strerror or error}") from error
    except ValueError as error:
        raise ConfigurationError(f"--plan {path}: not a plan written by `plan --out`: {error}") from error
    if not isinstance(document, Mapping) or document.get("format") != PLAN_FILE_FORMAT:
        raise ConfigurationError(
            f"--plan {path}: not a plan written by `plan --out` (format {PLAN_FILE_FORMAT})"
        )
    try:
        modules = {
            str(m["module"]): PlannedModule(**{k: m.get(k) for k in PlannedModule.__dataclass_fields__})
            for m in document["modules"]
        }
        named = document.get("named")
        return PlanFile(
            str(document["control_table"]),
            str(document["target"]),
            bool(document["check_drift"]),
            modules,
            [str(n) for n in named] if isinstance(named, list) else None,
        )
    except (KeyError, TypeError) as error:
        raise ConfigurationError(f"--plan {path}: a field is missing or malformed: {error}") from error


def moved(change: PlannedChange, planned: PlannedModule | None) -> str | None:
    """Why ``change`` (re-planned now) is not what the plan file holds for its module, or None."""
    if planned is None:
        if change.action == PlanAction.NOOP and not change.writes_outside_the_job:
            return None
        return f"{change.module}: not in the plan, but would now be {change.action}"
    if str(change.action) != planned.action:
        return f"{change.module}: the plan says {planned.action}, now it would be {change.action}"
    if _metadata_hash(change) != planned.new_hash:
        return (
            f"{change.module}: the metadata changed since the plan "
            f"(spec hash {_short(planned.new_hash)} -> {_short(_metadata_hash(change))})"
        )
    if change.old_hash != planned.old_hash:
        return f"{change.module}: job {change.job_id} was applied by another run since the plan"
    if (
        planned.live_hash is not None
        and change.live_hash is not None
        and change.live_hash != planned.live_hash
    ):
        return f"{change.module}: live job {change.job_id} was changed since the plan"
    return None


def _metadata_hash(change: PlannedChange) -> str | None:
    return change.desired_digest or change.new_hash


def _short(digest: str | None) -> str:
    return digest.split(":")[-1][:12] if digest else "none"

"""The package's words as types: plan actions, prune policies, target kinds, tracking statuses and
outcomes. A leaf module every layer may import; the CLI takes its argparse choices from here.

Each is a ``StrEnum``, so a member is its string: it compares equal to it, formats as it and is
written to JSON and Delta rows unchanged.
"""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10 (Databricks Runtime 13.3 LTS)

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` for Python 3.10: ``str()`` and ``format()`` give the value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)


class PlanAction(StrEnum):
    """What a plan or an apply does to one module's job. ``adopt`` and ``adopt_existing`` are
    only outcomes: a create that found a job of ours by name and took it over, or the one
    untagged job a module with ``adopt_existing: true`` took over. ``orphaned``: a removed
    module's job with nothing to pause, shown on every run."""

    CREATE = "create"
    UPDATE = "update"
    PAUSE = "pause"
    DELETE = "delete"
    ORPHANED = "orphaned"
    NOOP = "noop"
    ERROR = "error"
    ADOPT = "adopt"
    ADOPT_EXISTING = "adopt_existing"
    # The job of an earlier module name (``renamed_from``) renamed to the module with one reset.
    RENAME = "rename"


# The actions a plan can hold, in the order its summary counts them.
PLAN_ACTIONS: tuple[PlanAction, ...] = (
    PlanAction.CREATE,
    PlanAction.UPDATE,
    PlanAction.PAUSE,
    PlanAction.DELETE,
    PlanAction.ORPHANED,
    PlanAction.NOOP,
    PlanAction.ERROR,
)


class PrunePolicy(StrEnum):
    """What happens to the job of a module that left the metadata."""

    PAUSE = "pause"
    DELETE = "delete"
    KEEP = "keep"


class TargetKind(StrEnum):
    WORKSPACE = "workspace"
    BUNDLE = "bundle"


class TrackingStatus(StrEnum):
    """``status`` of a jobs-tracking row. The pending ones are written between a create or adopt
    and the removal of duplicate copies; a module still in one at the next run has its duplicates
    removed first. ``created`` is a finished create, checked once more at the next run: a create
    whose first attempt timed out on the client can still commit after our own check."""

    OK = "ok"
    ERROR = "error"
    PAUSED = "paused"
    # A removed module's job with nothing to pause: left as it is, flagged on every run.
    ORPHANED = "orphaned"
    CREATING = "creating"
    ADOPTING = "adopting"
    CREATED = "created"


PENDING_STATUSES = frozenset({TrackingStatus.CREATING, TrackingStatus.ADOPTING, TrackingStatus.CREATED})


def tracking_status(text: str | None) -> TrackingStatus | None:
    """The status a jobs-tracking row holds; None when it holds none (``''``) or one this version
    does not know. Either is neither ``ok`` nor pending: the next apply rewrites the row."""
    try:
        return TrackingStatus(text)
    except ValueError:
        return None


class Outcome(StrEnum):
    """How applying one module ended."""

    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"
    # A pause or delete held back by the blast-radius limit: not applied, and the run fails.
    HELD = "held"
    # A change of a ``sync: manual`` module that no ``--module`` named: recorded (``status``
    # shows it out of sync with its diff), not applied, and not a failure.
    PENDING = "pending"


class EnvironmentMode(StrEnum):
    """An environment's declared ``mode``: development prefixes job names and pauses schedules."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


def choices(enum_type: type[StrEnum]) -> list[str]:
    """The values of ``enum_type``, for argparse ``choices`` and error messages."""
    return [member.value for member in enum_type]


# Module applies in flight at once on the workspace target. Each waits on two or three round
# trips in a row (name lookup, create, permissions), so sixteen keep a 100 ms round trip busy
# (docs/BENCHMARKS.md); should a workspace answer 429, the shared rate limiter slows them all.
DEFAULT_MAX_WORKERS = 16


class AlertEvent(StrEnum):
    """What the monitor alerts on (the policy's ``alerts.webhooks[].events`` names these). Each
    but ``drift_restored`` is a state: it alerts when it starts and again when it recovers."""

    APPLY_FAILED = "apply_failed"
    REJECTED = "rejected"
    MASS_CHANGE_HELD = "mass_change_held"
    DRIFT_RESTORED = "drift_restored"
    LEASE_LOST = "lease_lost"
    LAG = "lag"
    RUN_FAILED = "run_failed"
    RUN_TOO_LONG = "run_too_long"
    RUN_QUEUED_TOO_LONG = "run_queued_too_long"
    RUN_SKIPPED = "run_skipped"


class AlertFormat(StrEnum):
    """A webhook's body: Slack's ``{"text": ...}`` or the alert as plain JSON."""

    SLACK = "slack"
    JSON = "json"

"""Which alerts a cycle raises: pure state changes, so "one alert per change" is decided in one
place and tested without threads or HTTP.

A *condition* is a state that holds now (``run_failed`` for module ``sales``). The tracker keeps
the conditions that hold, keyed by event and subject. A condition that starts alerts once; one
that stops alerts its recovery once; one that keeps holding (the second failed night, a new
message) says nothing more. Each observation names what it examined (``checked``): a condition
of a subject nobody looked at this cycle neither starts nor recovers, so a partial reconcile
never "recovers" the modules it did not touch. One-shot events (``drift_restored``) alert every
time they happen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lakeflow_job_meta.planning.health import HealthState, ModuleHealth
from lakeflow_job_meta.vocabulary import AlertEvent

# Every subject of an event was examined.
ALL = None

HEALTH_EVENTS: dict[HealthState, AlertEvent] = {
    HealthState.FAILING: AlertEvent.RUN_FAILED,
    HealthState.TOO_LONG: AlertEvent.RUN_TOO_LONG,
    HealthState.QUEUED_TOO_LONG: AlertEvent.RUN_QUEUED_TOO_LONG,
    HealthState.SKIPPED: AlertEvent.RUN_SKIPPED,
}


@dataclass(frozen=True)
class Condition:
    event: AlertEvent
    subject: str
    """A module, a file, or the control table for fleet-wide events."""
    message: str

    @property
    def key(self) -> str:
        return f"{self.event}|{self.subject}"


@dataclass(frozen=True)
class Alert:
    event: AlertEvent
    subject: str
    message: str
    recovered: bool = False

    @property
    def title(self) -> str:
        kind = "recovered" if self.recovered else "alert"
        return f"[{kind}] {self.event} {self.subject}"

    def as_dict(self) -> dict[str, object]:
        return {
            "event": str(self.event),
            "subject": self.subject,
            "message": self.message,
            "recovered": self.recovered,
        }


def health_conditions(health: Mapping[str, ModuleHealth]) -> list[Condition]:
    """The run conditions of every unhealthy module (its worst problem)."""
    conditions = []
    for module, judged in sorted(health.items()):
        event = HEALTH_EVENTS.get(judged.state)
        if event is not None:
            message = judged.problems[0][1] if judged.problems else str(judged.state)
            conditions.append(Condition(event, module, message))
    return conditions


class AlertTracker:
    """The conditions that hold (restorable from a saved dict, so a restart re-alerts nothing)."""

    def __init__(self, active: Mapping[str, str] | None = None):
        self.active: dict[str, str] = dict(active or {})

    def observe(
        self,
        conditions: Iterable[Condition],
        checked: Mapping[AlertEvent, set[str] | None],
        one_shot: Iterable[Condition] = (),
    ) -> list[Alert]:
        """The alerts of this observation. ``checked`` maps each examined event to the
        subjects examined (``ALL``: every subject)."""
        alerts: list[Alert] = []
        now = {c.key: c for c in conditions if _examined(c.key, checked)}
        for key, condition in now.items():
            if key not in self.active:
                alerts.append(Alert(condition.event, condition.subject, condition.message))
        for key, message in sorted(self.active.items()):
            if key not in now and _examined(key, checked):
                event, subject = _split(key)
                alerts.append(Alert(event, subject, f"recovered: {message}", recovered=True))
                del self.active[key]
        self.active.update({key: c.message for key, c in now.items()})
        alerts += [Alert(c.event, c.subject, c.message) for c in one_shot]
        return alerts


def _split(key: str) -> tuple[AlertEvent, str]:
    event, subject = key.split("|", 1)
    return AlertEvent(event), subject


def _examined(key: str, checked: Mapping[AlertEvent, set[str] | None]) -> bool:
    event, subject = _split(key)
    if event not in checked:
        return False
    subjects = checked[event]
    return subjects is ALL or subject in subjects

"""One alert per state change, one on recovery; nothing for what was not examined."""

from __future__ import annotations

from lakeflow_job_meta.planning.alerts import ALL, AlertTracker, Condition
from lakeflow_job_meta.vocabulary import AlertEvent

FAILED = AlertEvent.RUN_FAILED
APPLY = AlertEvent.APPLY_FAILED


def test_a_failing_module_alerts_once_then_once_on_recovery() -> None:
    tracker = AlertTracker()
    first = tracker.observe([Condition(FAILED, "sales", "run 1 FAILED")], {FAILED: ALL})
    assert [(a.event, a.subject, a.recovered) for a in first] == [(FAILED, "sales", False)]
    # Still failing (a second night, another message): nothing.
    assert tracker.observe([Condition(FAILED, "sales", "run 2 FAILED")], {FAILED: ALL}) == []
    recovered = tracker.observe([], {FAILED: ALL})
    assert [(a.subject, a.recovered) for a in recovered] == [("sales", True)]
    assert recovered[0].message == "recovered: run 2 FAILED"
    assert tracker.observe([], {FAILED: ALL}) == [] and tracker.active == {}


def test_subjects_not_examined_neither_alert_nor_recover() -> None:
    tracker = AlertTracker({f"{APPLY}|a": "boom"})
    # A partial reconcile of module b says nothing about a.
    assert tracker.observe([], {APPLY: {"b"}}) == []
    # Runs were not read this cycle: run conditions stay as they were.
    assert tracker.observe([], {}) == [] and f"{APPLY}|a" in tracker.active
    assert [a.recovered for a in tracker.observe([], {APPLY: {"a"}})] == [True]


def test_one_shot_events_alert_every_time_and_the_state_survives_a_restart() -> None:
    drift = Condition(AlertEvent.DRIFT_RESTORED, "m", "restored")
    tracker = AlertTracker()
    assert len(tracker.observe([], {}, [drift])) == 1
    assert len(tracker.observe([], {}, [drift])) == 1
    tracker.observe([Condition(FAILED, "x", "bad")], {FAILED: ALL})
    restarted = AlertTracker(tracker.active)
    assert restarted.observe([Condition(FAILED, "x", "bad")], {FAILED: ALL}) == []

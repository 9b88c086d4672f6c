"""The blast-radius limit as pure functions: which destructive changes a run holds back."""

from __future__ import annotations

from lakeflow_job_meta.planning.blast_radius import (
    ALLOW_FLAG,
    MassChangeGuard,
    MassChangeLimit,
    volume_emptied,
)
from lakeflow_job_meta.planning.plan import PlannedChange


def changes(**actions: str) -> list[PlannedChange]:
    return [PlannedChange(module=m, action=a) for m, a in actions.items()]


def test_threshold_is_max_of_count_and_fraction():
    limit = MassChangeLimit()
    assert limit.threshold(4) == 2 and limit.threshold(10) == 2 and limit.threshold(20) == 4
    assert MassChangeLimit(max_jobs=0, max_fraction=0.5).threshold(10) == 5


def test_up_to_the_limit_passes():
    guard = MassChangeGuard(managed_jobs=10)
    planned = changes(a="pause", b="delete", c="update", d="create")
    assert guard.screen(planned) == (planned, [])
    assert guard.held == []


def test_over_the_limit_holds_every_destructive_change_and_applies_the_rest():
    guard = MassChangeGuard(managed_jobs=6)
    planned = changes(a="pause", b="pause", c="delete", d="update", e="noop")
    to_apply, held = guard.screen(planned)
    assert [c.module for c in to_apply] == ["d", "e"]
    assert [c.module for c in held] == ["a", "b", "c"]
    message = guard.message()
    assert ALLOW_FLAG in message and "allow_mass_change" in message
    assert "3 of 6 managed jobs" in message and "pause a, pause b, delete c" in message
    # a later wave of the same run is held too, even one destructive change
    assert guard.screen(changes(f="pause")) == ([], [PlannedChange(module="f", action="pause")])


def test_counted_across_waves_and_allowed_on_request():
    guard = MassChangeGuard(managed_jobs=10)
    assert guard.screen(changes(a="pause", b="pause"))[1] == []
    assert [c.module for c in guard.screen(changes(c="delete"))[1]] == ["c"]
    allowed = MassChangeGuard(managed_jobs=4, allow=True)
    planned = changes(a="pause", b="pause", c="pause", d="pause")
    assert allowed.screen(planned) == (planned, [])


def test_configurable_limit():
    guard = MassChangeGuard(managed_jobs=100, limit=MassChangeLimit(max_jobs=1, max_fraction=0.01))
    assert guard.screen(changes(a="pause"))[1] == []
    assert len(guard.screen(changes(b="pause"))[1]) == 1


def test_emptied_volume():
    assert volume_emptied(known_files=3, listed_files=0)
    assert not volume_emptied(known_files=3, listed_files=1)
    assert not volume_emptied(known_files=0, listed_files=0)

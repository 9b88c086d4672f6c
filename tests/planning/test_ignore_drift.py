"""The ``ignore_drift`` overlay and path rules (pure)."""

from __future__ import annotations

from lakeflow_job_meta.metadata.drift_paths import drift_path_problem
from lakeflow_job_meta.planning.ignore_drift import with_live_values

DESIRED = {"name": "j", "schedule": {"quartz_cron_expression": "0 0 1 * * ?", "pause_status": "UNPAUSED"}}


def test_overlay_takes_the_live_value_and_drops_what_live_lacks() -> None:
    live = {"name": "j", "schedule": {"quartz_cron_expression": "x", "pause_status": "PAUSED"}}
    result = with_live_values(DESIRED, live, ["schedule.pause_status", "max_concurrent_runs"])
    assert result == {
        "name": "j",
        "schedule": {"quartz_cron_expression": "0 0 1 * * ?", "pause_status": "PAUSED"},
    }
    assert DESIRED["schedule"]["pause_status"] == "UNPAUSED"  # the input is not changed
    assert with_live_values(DESIRED, {"name": "j"}, ["schedule.pause_status"]) == {
        "name": "j",
        "schedule": {"quartz_cron_expression": "0 0 1 * * ?"},
    }


def test_overlay_without_live_settings_is_the_desired_settings() -> None:
    assert with_live_values(DESIRED, None, ["schedule.pause_status"]) == DESIRED


def test_paths() -> None:
    assert drift_path_problem("max_concurrent_runs") is None
    assert drift_path_problem("tags.team") is None
    assert "did you mean 'max_concurrent_runs'" in (drift_path_problem("max_concurent_runs") or "")
    assert "ownership tag" in (drift_path_problem("tags.ljm_table") or "")
    assert "tags.KEY" in (drift_path_problem("tags") or "")
    assert "tool's own" in (drift_path_problem("name") or "")

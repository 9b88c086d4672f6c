"""Acceptance of run health and alerts (issue 18): a monitor against the Jobs API emulator with
injected run failures fills the runs table, marks the module unhealthy, sends exactly one alert
to a real local webhook sink (``http.server`` on loopback) and one recovery alert after a good
run. Time is a FakeClock; delivery is awaited with the dispatcher's ``drain`` (no sleeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeflow_job_meta.engine.alerts import ALERTS_TARGET
from lakeflow_job_meta.engine.status import read_status
from lakeflow_job_meta.storage import open_tables
from tests.emulator.server import JobsEmulator
from tests.run_world import (
    Sink,
    build_world,
    cycle,
    failed_run,
    good_run,
    job_id_of,
    ms,
)


def test_failed_runs_alert_once_and_a_good_run_recovers(
    tmp_path: Path, jobs_emulator: JobsEmulator, workspace_client: Any, sink: Sink, monkeypatch
) -> None:
    world = build_world(tmp_path, jobs_emulator, workspace_client, sink.url, monkeypatch)
    try:
        first = cycle(world, advance=0)
        assert first.health is not None and first.unhealthy == {}  # judged, no runs yet
        assert sink.bodies == []
        job_id = job_id_of(world)

        failed_run(world, job_id)
        report = cycle(world)
        tables = open_tables(world.ctl)
        (row,) = tables.runs.read_all()
        assert (row["job_id"], row["module_name"], row["result_state"]) == (job_id, "nightly_sales", "FAILED")
        assert row["error"] == "cell 3: KeyError" and row["trigger"] == "PERIODIC"
        assert report.unhealthy == {"nightly_sales": "failing"}
        assert [b["event"] for b in sink.bodies] == ["run_failed"]
        assert (
            sink.bodies[0]["subject"] == "nightly_sales" and "cell 3: KeyError" in sink.bodies[0]["message"]
        )

        # A second failed night: still failing, no second alert; one list call per interval.
        failed_run(world, job_id, message="cell 3: KeyError again")
        calls = jobs_emulator.count("jobs/runs/list")
        report = cycle(world)
        assert jobs_emulator.count("jobs/runs/list") == calls + 1
        assert report.health["nightly_sales"].consecutive_failures == 2
        assert len(sink.bodies) == 1

        # Not due: no list call at all.
        report = cycle(world, advance=10)
        assert jobs_emulator.count("jobs/runs/list") == calls + 1 and report.health is None

        good_run(world, job_id)
        report = cycle(world, advance=51)
        assert report.unhealthy == {}
        assert [(b["event"], b["recovered"]) for b in sink.bodies] == [
            ("run_failed", False),
            ("run_failed", True),
        ]
        alerts = [r for r in tables.history.read_all() if r["target"] == ALERTS_TARGET]
        assert sorted(r["action"] for r in alerts) == ["alert:run_failed", "recovered:run_failed"]
        assert len(tables.runs.read_all()) == 3

        status = read_status(tables, world.ctl, runs=tables.runs.read_all(), now=world.clock.now())
        (module,) = status["modules"]  # alerts are recorded in history, but are not modules
        assert module["module"] == "nightly_sales" and module["health"]["state"] == "healthy"
    finally:
        world.monitor.stop()
        world.monitor.close()


def test_a_run_longer_than_the_health_rule_alerts_the_slack_hook_too(
    tmp_path: Path, jobs_emulator: JobsEmulator, workspace_client: Any, sink: Sink, monkeypatch
) -> None:
    world = build_world(tmp_path, jobs_emulator, workspace_client, sink.url, monkeypatch)
    try:
        cycle(world, advance=0)
        job_id = job_id_of(world)
        world.emu.add_run(job_id, start_time=ms(world.clock.now() - 10))
        assert cycle(world).unhealthy == {}  # running for 71 s
        report = cycle(world, advance=900)  # still running: re-read from its start
        assert report.unhealthy == {"nightly_sales": "too_long"}
        json_body, slack_body = sink.bodies
        assert json_body["event"] == "run_too_long" and "limit 600 s" in json_body["message"]
        assert slack_body["text"].startswith(":rotating_light: [alert] run_too_long nightly_sales")
    finally:
        world.monitor.stop()
        world.monitor.close()

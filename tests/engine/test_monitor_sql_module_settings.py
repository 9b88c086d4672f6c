"""The monitor with module settings written to the tables by SQL (the modules table's
``settings`` column), cycle by cycle on the FakeClock: a ``sync: manual`` module's change is
recorded and not applied; a rename is one reset of the same job, never a pause."""

from __future__ import annotations

import json
from collections import Counter

from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.state_store import StateKey, StateStore
from tests.helpers.monitor_env import MonitorEnv, converge, notebook_row, tracked_job_ids

SCHEDULE = {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"}


def settings_row(module: str, settings: dict) -> dict:
    return {"module_name": module, "settings": json.dumps(settings), "is_active": True}


def test_a_manual_module_change_is_recorded_and_not_applied(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    env.tables.modules.merge([settings_row("alpha", {"sync": "manual"})])
    monitor = env.monitor(volume=False)
    converge(monitor)
    created = tracked_job_ids(env.tables)
    assert set(created) == {"beta"}  # a new manual module is not created either
    env.emu.reset_counters()

    env.tables.modules.merge([settings_row("beta", {"sync": "manual", "tags": {"team": "sales"}})])
    report = monitor.check_and_update()
    assert report.error is None and report.modules_reconciled == ["beta"]
    assert report.run is not None and report.run.ok
    assert report.run["beta"].outcome == "pending"
    assert env.emu.writes() == 0
    store = StateStore(env.tables.state, control_table_id(env.ctl), now=env.clock.now)
    pending = store.get(StateKey.PENDING_MANUAL)
    (entries,) = pending.values()
    assert set(entries) == {"alpha", "beta"}
    assert entries["beta"]["action"] == "update" and entries["beta"]["job_id"] == created["beta"]
    assert any("team" in line for line in entries["beta"]["diff"])
    assert "(pending: sync manual)" in report.summary()


def test_a_rename_by_sql_is_one_reset_of_the_same_job(env: MonitorEnv) -> None:
    env.tables.control.merge(
        [notebook_row("a1", "alpha"), notebook_row("b1", "beta"), notebook_row("c1", "gamma")]
    )
    env.tables.modules.merge([settings_row(m, {"schedule": SCHEDULE}) for m in ("alpha", "beta", "gamma")])
    monitor = env.monitor(volume=False)
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    env.emu.reset_counters()

    env.tables.control.merge([notebook_row("a1", "alpha_v2")])  # the row moves to the new name
    env.tables.modules.merge(
        [settings_row("alpha_v2", {"schedule": SCHEDULE, "renamed_from": ["alpha"]})],
        [{"module_name": "alpha"}],
    )
    report = monitor.check_and_update()
    assert report.error is None and not report.full
    assert report.modules_reconciled == ["alpha", "alpha_v2"]
    assert env.emu.write_counts() == Counter({"jobs/reset": 1})
    assert tracked_job_ids(env.tables) == {
        "alpha_v2": ids["alpha"],
        "beta": ids["beta"],
        "gamma": ids["gamma"],
    }
    assert env.emu.job(ids["alpha"])["settings"]["name"] == "alpha_v2"


def test_a_held_manual_change_writes_no_history_row(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha")])
    env.tables.modules.merge([settings_row("alpha", {"sync": "manual"})])
    monitor = env.monitor(volume=False)
    report = converge(monitor)
    assert report.run is not None and report.run["alpha"].outcome == "pending"
    assert [r for r in env.tables.history.read_all() if r["module_name"] == "alpha"] == []

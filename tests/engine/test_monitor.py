"""MetadataMonitor against real delta-rs tables, real files, real watchdog and the Jobs API
emulator through the real SDK. Time goes through FakeClock; the one test of the real loop runs
it on a clock whose sleeps end only when a file event wakes them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.engine.monitor import PROGRESS_KEY, VOLUME_KEY, CycleReport
from lakeflow_job_meta.storage.tables import ToolTables
from tests.fakes import FakeClock, WakeOnlyClock
from tests.helpers.monitor_env import (
    MonitorEnv,
    converge,
    job_ids_by_name,
    module_yaml,
    notebook_paths,
    notebook_row,
    tracked_job_ids,
    write_file,
)
from tests.helpers.waiting import SAFETY_NET_SECONDS, wait_for

# ---------------------------------------------------------------------------------- helpers


def raw_insert(control_path: str, rows: list[dict[str, Any]]) -> None:
    """Append rows with delta-rs directly, as ``INSERT INTO t VALUES (...)`` with the 8 reference
    columns would: the audit columns are NULL (locally there are no SQL DEFAULTs)."""
    import deltalake
    import pyarrow as pa

    from lakeflow_job_meta.storage.delta_rs import arrow_schema
    from lakeflow_job_meta.storage.tables import CONTROL_SPEC

    schema = arrow_schema(CONTROL_SPEC)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    deltalake.write_deltalake(control_path, pa.table(columns, schema=schema), mode="append")


def versions(tables: ToolTables) -> dict[str, int]:
    return {table.spec.kind: table.version() for table in tables.all()}


class TableSpy:
    """Counts calls of the scanning and writing methods of every table the monitor uses."""

    METHODS = ("read_all", "changes_since", "merge", "append", "compare_and_set")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tables: ToolTables):
        self.calls: Counter = Counter()
        for table in tables.all():
            for name in self.METHODS:
                original = getattr(table, name)
                monkeypatch.setattr(table, name, self._wrap(table.spec.kind, name, original))

    def _wrap(self, kind: str, name: str, original: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls[(kind, name)] += 1
            return original(*args, **kwargs)

        return wrapper


# ---------------------------------------------------------------------------------- 1. insert


def test_inserted_row_updates_exactly_that_module_with_one_write(env: MonitorEnv) -> None:
    env.tables.control.merge(
        [notebook_row("a1", "alpha"), notebook_row("b1", "beta"), notebook_row("c1", "gamma")]
    )
    monitor = env.monitor(volume=False)
    first = converge(monitor)
    assert sorted(r.module for r in first.run if r.action == "create") == ["alpha", "beta", "gamma"]
    ids = tracked_job_ids(env.tables)
    before = {module: env.emu.job(job_id) for module, job_id in ids.items()}
    env.emu.reset_counters()

    # What `INSERT INTO etl_control VALUES ('b2', 'beta', 'notebook', 2, '{}', '{}', '...', true)`
    # leaves behind: one appended row, audit columns NULL.
    raw_insert(env.ctl, [notebook_row("b2", "beta", "/Workspace/b2", order=2)])
    report = monitor.check_and_update()

    assert report.error is None and report.table_changed and not report.full
    assert report.modules_reconciled == ["beta"]
    assert env.emu.writes() == 1
    assert env.emu.write_counts() == Counter({"jobs/reset": 1})
    after = {module: env.emu.job(job_id) for module, job_id in ids.items()}
    assert after["alpha"] == before["alpha"] and after["gamma"] == before["gamma"]
    assert after["beta"] != before["beta"]
    assert sorted(notebook_paths(after["beta"])) == ["/Workspace/b2", "/Workspace/x"]
    assert len(env.emu.jobs()) == 3

    # The same through the storage API (a MERGE with source_file NULL): again one write.
    env.emu.reset_counters()
    env.tables.control.merge([notebook_row("c1", "gamma", "/Workspace/gamma_v2")])
    report = monitor.check_and_update()
    assert report.modules_reconciled == ["gamma"]
    assert env.emu.writes() == 1
    assert notebook_paths(env.emu.job(ids["gamma"])) == ["/Workspace/gamma_v2"]
    assert env.emu.job(ids["alpha"]) == before["alpha"]


def test_modules_table_change_reconciles_that_module(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    monitor = env.monitor(volume=False)
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    env.emu.reset_counters()
    env.tables.modules.merge(
        [{"module_name": "alpha", "settings": json.dumps({"tags": {"team": "sales"}}), "is_active": True}]
    )
    report = monitor.check_and_update()
    assert report.modules_reconciled == ["alpha"]
    assert env.emu.writes() == 1
    assert env.emu.job(ids["alpha"])["settings"]["tags"]["team"] == "sales"
    assert "team" not in (env.emu.job(ids["beta"])["settings"].get("tags") or {})


# ---------------------------------------------------------------------------------- 2. idle


def test_idle_cycles_scan_nothing_write_nothing_call_nothing(
    env: MonitorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha")])
    write_file(env.volume / "team" / "beta.yaml", module_yaml("beta"))
    monitor = env.monitor()
    report = converge(monitor)
    assert report.files_added == ["team/beta.yaml"]
    assert sorted(job_ids_by_name(env.emu)) == ["alpha", "beta"]
    before = versions(monitor.tables)
    env.emu.reset_counters()
    spy = TableSpy(monkeypatch, monitor.tables)

    for _ in range(5):
        env.clock.advance(3)  # 15 s in all: less than TTL/3, so no lease renewal is due
        report = monitor.check_and_update()
        assert report.error is None and report.idle and not report.full and report.lease_held

    assert spy.calls == Counter(), spy.calls  # no read_all, no changes_since, no write of any table
    assert versions(monitor.tables) == before
    assert env.emu.request_counts() == Counter()

    # Past TTL/3 the lease is renewed: one state-table CAS, nothing else, still no API call.
    env.clock.advance(monitor.lease.renew_every)
    report = monitor.check_and_update()
    assert report.idle and report.lease_held
    assert spy.calls == Counter({("state", "compare_and_set"): 1}), spy.calls
    after = versions(monitor.tables)
    assert after == {**before, "state": before["state"] + 1}
    assert env.emu.request_counts() == Counter()


def test_maintenance_only_versions_are_idle(env: MonitorEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """OPTIMIZE and VACUUM (auto-compaction, predictive optimization on Databricks) add versions
    that change no row: no feed read, no state write, no reconcile, no API call."""
    from deltalake import DeltaTable

    env.tables.control.merge([notebook_row("a1", "alpha")])
    env.tables.control.merge([notebook_row("b1", "beta")])
    monitor = env.monitor(volume=False)
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    env.emu.reset_counters()
    state_version = env.tables.state.version()
    spy = TableSpy(monkeypatch, monitor.tables)

    control = DeltaTable(env.ctl)
    control.optimize.compact()
    control.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    operations = [c.operation for c in env.tables.control.history(3)]
    assert operations == ["VACUUM END", "VACUUM START", "OPTIMIZE"]
    env.clock.advance(3)
    report = monitor.check_and_update()

    assert report.error is None and report.idle and not report.table_changed
    assert report.control_version == env.tables.control.version()
    assert spy.calls == Counter(), spy.calls
    assert env.tables.state.version() == state_version
    assert env.emu.request_counts() == Counter()

    # A real change after them is still seen, from the feed, for that module only.
    env.tables.control.merge([notebook_row("b1", "beta", "/Workspace/b2")])
    report = monitor.check_and_update()
    assert report.table_changed and report.modules_reconciled == ["beta"]
    assert notebook_paths(env.emu.job(ids["beta"])) == ["/Workspace/b2"]


# ---------------------------------------------------------------------------------- 3. YAML


def test_dropped_yaml_wakes_the_loop_and_follows_edits_and_deletion(env: MonitorEnv) -> None:
    """The real loop: file events, not the interval, drive it. Its clock never ends a sleep by
    itself (only a wake does), so every cycle after the first was started by a file event."""
    # A second file stays throughout: a volume emptied of every file prunes nothing (issue 9).
    write_file(env.volume / "other.yaml", module_yaml("other", "/Workspace/other"))
    monitor = env.monitor(clock=WakeOnlyClock(), check_interval_seconds=30)
    assert monitor.watcher is not None and monitor.watcher.mode == "events"
    reports: list[CycleReport] = []
    original = monitor.check_and_update

    def recording_check(**kwargs: Any) -> CycleReport:
        report = original(**kwargs)
        reports.append(report)
        return report

    monitor.check_and_update = recording_check  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            monitor.run_continuous()
        except BaseException as error:  # pragma: no cover - surfaced by the assertion below
            errors.append(error)

    thread = threading.Thread(target=run, name="monitor-loop", daemon=True)
    thread.start()
    try:
        wait_for(lambda: reports, "the first (full) cycle")
        assert reports[0].full and reports[0].error is None

        write_file(env.volume / "sales.yaml", module_yaml("sales", "/Workspace/v1"))
        ids = wait_for(lambda: env.emu.job_ids("sales"), "the job of a dropped file")
        assert len(ids) == 1
        job_id = ids[0]
        assert notebook_paths(env.emu.job(job_id)) == ["/Workspace/v1"]

        # Modified in place (same inode, no rename).
        text = module_yaml("sales", "/Workspace/v2")
        with open(env.volume / "sales.yaml", "w") as fh:
            fh.write(text)
        wait_for(
            lambda: notebook_paths(env.emu.job(job_id)) == ["/Workspace/v2"], "the in-place edit applied"
        )

        # Deleted: its rows go and its job is paused (prune=pause), not deleted.
        os.remove(env.volume / "sales.yaml")
        wait_for(
            lambda: env.emu.job(job_id)["settings"]["schedule"]["pause_status"] == "PAUSED",
            "the deleted file's job paused",
        )
        rows = env.tables.control.read_all()
        assert [r for r in rows if r["module_name"] == "sales"] == []
        assert env.emu.job_ids("sales") == [job_id]
        wait_for(lambda: any(r.files_deleted == ["sales.yaml"] for r in reports), "the cycle's report")
        assert all(r.error is None for r in reports)
    finally:
        monitor.stop()
        thread.join(SAFETY_NET_SECONDS)
    assert not thread.is_alive(), "stop() did not end run_continuous"
    assert errors == []
    assert monitor.iteration < 20  # woken by events, not spinning


def test_bad_yaml_next_to_good_ones(env: MonitorEnv) -> None:
    write_file(env.volume / "a.yaml", module_yaml("alpha"))
    write_file(env.volume / "b.yaml", module_yaml("beta", "/Workspace/beta_v1"))
    monitor = env.monitor()
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    beta_rows = sorted(
        (r for r in env.tables.control.read_all() if r["module_name"] == "beta"), key=lambda r: r["source_id"]
    )
    beta_job = env.emu.job(ids["beta"])
    env.emu.reset_counters()

    # b.yaml breaks (line 10 has a non-integer execution_order); c.yaml is new and good; a.yaml
    # changes and is good.
    bad = module_yaml("beta", "/Workspace/beta_v2").replace("execution_order: 1", "execution_order: first")
    assert bad.splitlines()[9].strip() == "execution_order: first"
    write_file(env.volume / "b.yaml", bad)
    write_file(env.volume / "c.yaml", module_yaml("gamma"))
    write_file(env.volume / "a.yaml", module_yaml("alpha", "/Workspace/alpha_v2"))
    report = monitor.check_and_update()

    assert report.error is None
    assert report.files_added == ["c.yaml"]
    assert report.files_modified == ["a.yaml", "b.yaml"]
    assert list(report.files_rejected) == ["b.yaml"]
    messages = report.files_rejected["b.yaml"]
    assert any(re.search(r"(^|/)b\.yaml:10: .*execution_order", m) for m in messages), messages
    assert not report.ok  # a rejected file makes the cycle not-ok (reported), never an exception
    # The good ones applied ...
    assert notebook_paths(env.emu.job(ids["alpha"])) == ["/Workspace/alpha_v2"]
    assert len(env.emu.job_ids("gamma")) == 1
    assert env.emu.writes() == 2  # alpha reset + gamma create
    # ... the bad one's rows and job are as they were.
    beta_rows_after = sorted(
        (r for r in env.tables.control.read_all() if r["module_name"] == "beta"), key=lambda r: r["source_id"]
    )
    assert beta_rows_after == beta_rows
    assert env.emu.job(ids["beta"]) == beta_job

    # A rejected file is not re-read every cycle; fixing it applies it.
    env.emu.reset_counters()
    report = monitor.check_and_update()
    assert report.idle and report.files_rejected == {}
    write_file(env.volume / "b.yaml", module_yaml("beta", "/Workspace/beta_v2"))
    report = monitor.check_and_update()
    assert report.files_modified == ["b.yaml"] and report.ok
    assert notebook_paths(env.emu.job(ids["beta"])) == ["/Workspace/beta_v2"]
    assert env.emu.writes() == 1


def test_same_size_same_mtime_edit_is_caught_by_the_full_resync(env: MonitorEnv) -> None:
    path = write_file(env.volume / "a.yaml", module_yaml("alpha", "/Workspace/aaaa"))
    monitor = env.monitor(full_resync_seconds=600)
    converge(monitor)
    job_id = tracked_job_ids(env.tables)["alpha"]
    st = path.stat()
    with open(path, "r+") as fh:  # same length, then the old mtime put back
        fh.write(module_yaml("alpha", "/Workspace/bbbb"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns

    env.clock.advance(60)
    report = monitor.check_and_update()
    assert report.idle  # a quick (stat) scan cannot see it
    env.clock.advance(600)
    report = monitor.check_and_update()
    assert report.full and report.files_modified == ["a.yaml"]
    assert notebook_paths(env.emu.job(job_id)) == ["/Workspace/bbbb"]


def test_deleted_file_prune_delete_policy(env: MonitorEnv) -> None:
    write_file(env.volume / "a.yaml", module_yaml("alpha"))
    write_file(env.volume / "b.yaml", module_yaml("beta"))
    monitor = env.monitor(prune="delete")
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    env.emu.reset_counters()
    os.remove(env.volume / "b.yaml")
    report = monitor.check_and_update()
    assert report.files_deleted == ["b.yaml"]
    assert report.modules_reconciled == ["beta"]
    assert env.emu.write_counts() == Counter({"jobs/delete": 1})
    assert env.emu.job(ids["beta"]) is None and env.emu.job(ids["alpha"]) is not None
    assert {r["module_name"] for r in env.tables.control.read_all()} == {"alpha"}


# ---------------------------------------------------------------------------------- 5. restart


def test_restart_resumes_from_persisted_versions(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    write_file(env.volume / "g.yaml", module_yaml("gamma"))
    first = env.monitor()
    converge(first)
    first.check_and_update()
    first.close()
    state = {
        row["key"]: json.loads(row["value"])
        for row in env.tables.state.read_all()
        if row["key"] in (PROGRESS_KEY, VOLUME_KEY)
    }
    progress = state[PROGRESS_KEY]
    assert (progress["control_version"], progress["modules_version"]) == (
        env.tables.control.version(),
        env.tables.modules.version(),
    )
    assert list(state[VOLUME_KEY]["files"]) == ["g.yaml"]
    jobs_before = env.emu.jobs()
    env.emu.reset_counters()

    second = env.monitor()
    report = second.check_and_update()
    assert second._processed == (progress["control_version"], progress["modules_version"])
    assert report.full and report.error is None and report.run is not None
    assert not report.files_added  # the volume snapshot was restored: nothing re-parsed
    assert {r.action for r in report.run} == {"noop"}
    assert env.emu.writes() == 0
    assert env.emu.jobs() == jobs_before
    # and then idle
    env.emu.reset_counters()
    assert second.check_and_update().idle
    assert env.emu.request_counts() == Counter()
    second.close()

    # A change made while no monitor ran is applied by the next one's first (full) cycle.
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/while_down")])
    third = env.monitor()
    report = third.check_and_update()
    assert report.full
    assert env.emu.writes() == 1
    assert notebook_paths(env.emu.job(tracked_job_ids(env.tables)["alpha"])) == ["/Workspace/while_down"]


# ---------------------------------------------------------------------------------- 6. backoff


def test_unreadable_control_table_backs_off_and_recovers(env: MonitorEnv, caplog) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha")])
    control = Path(env.ctl)
    hidden = control.with_name("etl_control.away")
    events: list[str] = []
    loop_sleeps: list[float] = []

    def meanwhile(seconds: float) -> None:
        if seconds < 1:  # the scanner's settle interval, not the loop's wait
            return
        loop_sleeps.append(seconds)
        n = len(loop_sleeps)
        if n == 1:  # after the first good cycle: the table goes away
            control.rename(hidden)
            events.append("gone")
        elif n == 5:  # after four failed cycles: it is back, with a change made meanwhile
            hidden.rename(control)
            env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/after_outage")])
            events.append("back")

    clock = FakeClock(on_sleep=meanwhile)
    monitor = env.monitor(clock=clock, volume=False, check_interval_seconds=10)
    reports: list[CycleReport] = []
    original = monitor.check_and_update

    def recording_check(**kwargs: Any) -> CycleReport:
        reports.append(original(**kwargs))
        return reports[-1]

    monitor.check_and_update = recording_check  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="lakeflow_job_meta.monitor"):
        monitor.run_continuous(max_iterations=7)

    assert events == ["gone", "back"]
    assert [r.error is None for r in reports] == [True, False, False, False, False, True, True]
    for failed in reports[1:5]:
        assert "etl_control" in failed.error, failed.error
    # 10 s after a good cycle, then doubling while the table is unreadable, then back to 10 s.
    assert loop_sleeps == [10, 10, 20, 40, 80, 10, 10][: len(loop_sleeps)]
    assert len(loop_sleeps) == 6  # no sleep after the last iteration
    assert any("error:" in rec.getMessage() for rec in caplog.records)
    # Recovered: the change made during the outage is applied.
    job_id = tracked_job_ids(env.tables)["alpha"]
    assert notebook_paths(env.emu.job(job_id)) == ["/Workspace/after_outage"]
    assert reports[5].run is not None and reports[5].run.job_writes == 1


def test_backoff_is_capped(env: MonitorEnv) -> None:
    monitor = env.monitor(volume=False, check_interval_seconds=60)
    failing = CycleReport(iteration=1, error="StorageError: gone")
    delays = []
    for failures in range(1, 15):
        monitor._failures = failures
        delays.append(monitor._next_delay(failing))
    assert delays[:4] == [60, 120, 240, 300]
    assert max(delays) == 300


# ---------------------------------------------------------------------------------- 7. resync


def test_full_resync_restores_drift(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    monitor = env.monitor(volume=False, full_resync_seconds=600)
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    wanted = env.emu.job(ids["alpha"])["settings"]
    env.emu.edit_job(ids["alpha"], {"max_concurrent_runs": 7, "description": "edited in the UI"})
    env.emu.reset_counters()

    env.clock.advance(300)
    assert monitor.check_and_update().idle  # drift is only looked for by the full resync
    assert env.emu.request_counts() == Counter()

    env.clock.advance(301)
    report = monitor.check_and_update()
    assert report.full and report.run is not None
    by_module = {r.module: r for r in report.run}
    assert by_module["alpha"].action == "update" and by_module["alpha"].drift
    assert by_module["beta"].action == "noop"
    assert env.emu.writes() == 1
    assert env.emu.job(ids["alpha"])["settings"] == wanted
    # The resync period starts again from there.
    env.emu.reset_counters()
    env.clock.advance(599)
    assert monitor.check_and_update().idle
    assert env.emu.request_counts() == Counter()


# ---------------------------------------------------------------------------------- lease


def test_second_monitor_waits_then_takes_over_after_ttl(env: MonitorEnv, caplog) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha")])
    first = env.monitor(volume=False, lease_ttl_seconds=30, holder_id="first")
    second = env.monitor(volume=False, lease_ttl_seconds=30, holder_id="second")
    converge(first)
    env.emu.reset_counters()

    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v2")])
    with caplog.at_level("WARNING", logger="lakeflow_job_meta.monitor"):
        waiting = second.check_and_update()
    assert not waiting.lease_held and waiting.run is None
    assert env.emu.request_counts() == Counter()
    assert any(
        "another monitor holds the writer lease" in r.getMessage() and "first" in r.getMessage()
        for r in caplog.records
    )
    assert first.check_and_update().run.job_writes == 1

    # The first dies without releasing (no close()); the second takes over once the TTL passed.
    env.clock.advance(20)
    assert not second.check_and_update().lease_held
    env.clock.advance(11)
    caplog.clear()
    with caplog.at_level("WARNING", logger="lakeflow_job_meta.monitor"):
        took = second.check_and_update()
    assert took.lease_held and took.full  # a new holder starts with a full reconcile
    assert {r.action for r in took.run} == {"noop"}
    assert any("took over the writer lease" in r.getMessage() for r in caplog.records)
    # The first, if it comes back, no longer applies anything.
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v3")])
    env.emu.reset_counters()
    assert not first.check_and_update().lease_held
    assert env.emu.writes() == 0
    assert second.check_and_update().run.job_writes == 1
    assert env.emu.writes() == 1
    first.lease._held = False  # it lost the lease; keep the fixture's close() from releasing it


def test_stop_mid_run_does_not_mark_versions_processed(env: MonitorEnv) -> None:
    env.tables.control.merge([notebook_row("a1", "alpha")])
    monitor = env.monitor(volume=False)
    converge(monitor)
    processed = monitor._processed
    target = monitor.orchestrator.target
    target.options = replace(target.options, max_workers=1)
    env.tables.control.merge([notebook_row(f"n{i}", f"module{i}") for i in range(3)])
    original = monitor.orchestrator.target.gateway.create

    def create_then_stop(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        monitor.stop()  # as SIGTERM would, while this module is in flight
        return result

    monitor.orchestrator.target.gateway.create = create_then_stop  # type: ignore[method-assign]
    report = monitor.check_and_update()
    outcomes = sorted(r.outcome for r in report.run)
    assert outcomes == ["ok", "skipped", "skipped"]
    assert monitor._processed == processed  # retried by the next start
    assert len(env.emu.jobs()) == 2


def test_status_reports_versions_lag_and_lease(env: MonitorEnv) -> None:
    from lakeflow_job_meta.engine.status import read_status, render_status

    env.tables.control.merge([notebook_row("a1", "alpha")])
    monitor = env.monitor(volume=False, holder_id="status-test")
    converge(monitor)
    status = read_status(env.tables, env.ctl, now=env.clock.now())
    assert status["lag_versions"] == 0
    assert status["applied_control_version"] == env.tables.control.version()
    assert status["monitor"]["holder"] == "status-test" and status["monitor"]["state"] == "running"
    assert [m["module"] for m in status["modules"]] == ["alpha"]
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v2")])
    status = read_status(env.tables, env.ctl, now=env.clock.now())
    assert status["lag_versions"] == 1
    assert "(lag 1 version)" in render_status(status)


def wait_until_file_events_stop(watcher: Any) -> None:
    """Block until the watcher's inotify threads have ended, as they do once the root folder is
    deleted: a join on the threads (an event), never a sleep or a deadline."""
    observer = watcher._observer
    assert observer is not None
    for emitter in list(observer.emitters):
        emitter.join()
    assert not watcher.running


def test_volume_path_removed_and_recreated_is_polled_then_watched_again(env: MonitorEnv) -> None:
    write_file(env.volume / "a.yaml", module_yaml("alpha"))
    monitor = env.monitor()
    converge(monitor)
    assert monitor.watcher is not None and monitor.watcher.running
    watcher = monitor.watcher
    shutil.rmtree(env.volume)
    # Synchronise with the watchdog thread noticing the deletion (it does so on its own time),
    # so each cycle below sees the same watcher state on every machine, however loaded.
    wait_until_file_events_stop(watcher)
    report = monitor.check_and_update()  # cannot watch again yet: polled
    assert report.error is None and report.files_deleted == []  # a vanished root deletes nothing
    assert len(env.emu.job_ids("alpha")) == 1
    assert not watcher.running
    env.volume.mkdir()
    write_file(env.volume / "a.yaml", module_yaml("alpha"))
    write_file(env.volume / "b.yaml", module_yaml("beta"))
    report = monitor.check_and_update()
    assert report.files_added == ["b.yaml"]
    assert len(env.emu.job_ids("beta")) == 1
    assert monitor.watcher is watcher and watcher.running  # watched again


def test_loop_wakes_to_renew_the_lease_when_the_interval_is_longer_than_the_ttl(env: MonitorEnv) -> None:
    """Defaults: a 60 s interval and a 60 s TTL. Sleeping the full interval would let the lease
    lapse between cycles (another monitor could take over) and make every cycle a full one."""
    env.tables.control.merge([notebook_row("a1", "alpha")])
    monitor = env.monitor(volume=False, check_interval_seconds=60, lease_ttl_seconds=60)
    reports: list[CycleReport] = []
    original = monitor.check_and_update

    def recording_check(**kwargs: Any) -> CycleReport:
        reports.append(original(**kwargs))
        holder = monitor.lease.holder_info()
        assert holder is not None and holder.holder == monitor.lease.holder_id
        assert holder.expires_at > env.clock.now()  # never lapsed: nobody else could take it
        if len(reports) == 1:
            env.emu.reset_counters()  # the first cycle creates the job
        return reports[-1]

    monitor.check_and_update = recording_check  # type: ignore[method-assign]
    monitor.run_continuous(max_iterations=10)
    loop_sleeps = [s for s in env.clock.sleeps if s >= 1]
    assert loop_sleeps and max(loop_sleeps) <= monitor.lease.renew_every
    assert [r.full for r in reports] == [True] + [False] * 9
    assert all(r.lease_held and r.error is None for r in reports)
    assert env.emu.request_counts() == Counter()  # no full reconcile after the first cycle


def test_a_change_during_a_full_resync_is_applied_by_the_next_cycle_without_waiting(
    env: MonitorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resync read its rows at the start: a row inserted while it applies is not in it, and
    the monitor must not sleep a whole check interval before applying it."""
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    monitor = env.monitor(volume=False, full_resync_seconds=600, check_interval_seconds=30)
    converge(monitor)
    ids = tracked_job_ids(env.tables)
    env.clock.advance(601)  # the next cycle is a full resync
    reconcile = monitor.orchestrator.reconcile
    inserted: list[bool] = []

    def reconcile_and_meanwhile_insert(*args: Any, **kwargs: Any) -> Any:
        result = reconcile(*args, **kwargs)
        if not inserted:  # a user's INSERT lands while the resync is still applying
            inserted.append(True)
            raw_insert(env.ctl, [notebook_row("b2", "beta", "/Workspace/b2", order=2)])
        return result

    monkeypatch.setattr(monitor.orchestrator, "reconcile", reconcile_and_meanwhile_insert)
    env.clock.sleeps.clear()
    monitor.run_continuous(max_iterations=monitor.iteration + 2)
    assert inserted and env.clock.sleeps[0] == 0.0  # no interval between the two cycles
    assert sorted(notebook_paths(env.emu.job(ids["beta"]))) == ["/Workspace/b2", "/Workspace/x"]


def test_a_change_arriving_while_a_full_resync_reads_the_workspace_is_applied_before_the_read_ends(
    env: MonitorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full resync of a large workspace spends most of its time in the bulk read. A row
    inserted meanwhile is applied one check interval later, by itself, while the read still
    runs; the resync then writes that job no second time."""
    modules = [f"mod{i:02d}" for i in range(22)]  # enough to read the listing, not job by job
    env.tables.control.merge([notebook_row(f"s{m}", m) for m in modules])
    monitor = env.monitor(volume=False, full_resync_seconds=600, check_interval_seconds=30)
    converge(monitor)
    env.clock.advance(601)  # the next cycle is a full resync
    target = monitor.orchestrator.target
    gate = threading.Event()
    read_snapshot = target._read_snapshot

    def gated_read(*args: Any) -> Any:
        assert gate.wait(timeout=60), "the test never released the bulk read"
        return read_snapshot(*args)

    monkeypatch.setattr(target, "_read_snapshot", gated_read)
    advance_fake_clock = env.clock.sleep
    intervals: list[float] = []

    def sleep_and_meanwhile(seconds: float, wake: threading.Event | None = None) -> bool:
        intervals.append(seconds)
        if len(intervals) == 1:  # a user's INSERT lands while the read is held
            raw_insert(env.ctl, [notebook_row("smod05b", "mod05", "/Workspace/b2", order=2)])
        elif len(intervals) == 2:  # the change was applied by then: let the read finish
            gate.set()
        return advance_fake_clock(seconds, wake)

    monkeypatch.setattr(env.clock, "sleep", sleep_and_meanwhile)
    report = monitor.check_and_update()
    assert report.error is None and report.full
    assert [r.module for run in report.applied_meanwhile for r in run if r.job_writes] == ["mod05"]
    assert intervals[0] == 30  # one check interval after the resync began, not after it ended
    assert report.run is not None and report.run.ok and report.run.job_writes == 0
    ids = tracked_job_ids(env.tables)
    assert sorted(notebook_paths(env.emu.job(ids["mod05"]))) == ["/Workspace/b2", "/Workspace/x"]

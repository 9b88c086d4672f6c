"""The API down for a while: the monitor keeps cycling, backs off, and once the API is back
applies everything that changed meanwhile, with nothing lost and no duplicate. (Two monitors on
one table and an unreadable table are covered by tests/engine/test_monitor.py and
tests/engine/test_monitor_process.py.)"""

from __future__ import annotations

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataMonitor
from lakeflow_job_meta.adapters.retrying import RetryPolicy
from lakeflow_job_meta.engine.monitor import MAX_BACKOFF_SECONDS
from tests.emulator import Fault
from tests.helpers.monitor_env import MonitorEnv, notebook_paths, notebook_row, tracked_job_ids
from tests.reliability.helpers import assert_one_job_per_module

pytestmark = pytest.mark.reliability


def test_the_api_down_for_a_while_then_everything_changed_meanwhile_is_applied(env: MonitorEnv):
    env.tables.control.merge([notebook_row(f"{m}1", m) for m in ("alpha", "beta", "gamma")])
    orchestrator = JobOrchestrator(
        env.ctl,
        env.client,
        target="workspace",
        clock=env.clock,
        retry_policy=RetryPolicy(sleep=env.clock.sleep),
    )
    monitor = MetadataMonitor(
        env.ctl,
        check_interval_seconds=10,
        orchestrator=orchestrator,
        clock=env.clock,
        full_resync_seconds=600,
    )
    env.monitors.append(monitor)
    assert monitor.check_and_update().run.ok

    # The API goes down: every call fails with a plain 500 (the SDK gives up at once).
    env.emu.faults.add(Fault(endpoint="*", kind="500", times=None))
    env.tables.control.merge([notebook_row("alpha1", "alpha", "/Workspace/changed_while_down")])
    env.tables.control.merge([notebook_row("delta1", "delta")])
    reports = []
    for _ in range(40):  # 400 s down
        reports.append(monitor.check_and_update())
        env.clock.advance(10)
    failed = [r for r in reports if r.run is not None]
    assert failed and all(not r.run.ok for r in failed)
    assert all(r.error is None for r in reports)  # module failures, not a broken loop
    # Backing off: far fewer attempts than cycles.
    assert len(failed) <= 8, [r.iteration for r in failed]
    down_requests = sum(env.emu.request_counts().values())

    env.emu.faults.clear()
    env.emu.reset_counters()
    for _ in range(int(MAX_BACKOFF_SECONDS / 10) + 2):  # within one capped backoff
        monitor.check_and_update()
        env.clock.advance(10)
    assert_one_job_per_module(env.emu, env.ctl, {"alpha", "beta", "gamma", "delta"})
    ids = tracked_job_ids(env.tables)
    assert notebook_paths(env.emu.job(ids["alpha"])) == ["/Workspace/changed_while_down"]
    assert env.emu.write_counts()["jobs/create"] == 1 and env.emu.write_counts()["jobs/reset"] == 1
    assert down_requests < 200, down_requests
    # Nothing left behind: idle again, no retries pending.
    assert monitor._read_state("progress")["retrying"] == []

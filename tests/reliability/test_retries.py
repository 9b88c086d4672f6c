"""Retries that converge, against the Jobs API emulator through the real SDK.

Idempotent calls are retried on transient failures beyond what the SDK retries (a plain 500 on a
GET); ``jobs/create`` never is; the retry budget bounds the extra requests of a run; the monitor
backs off transient failures exponentially and leaves permanent ones alone until the module's
metadata changes. No test waits: the retry policy sleeps on a recording fake.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from lakeflow_job_meta import JobOrchestrator
from lakeflow_job_meta.adapters.databricks_jobs import sdk_errors
from lakeflow_job_meta.adapters.retrying import RetryPolicy
from lakeflow_job_meta.engine.monitor import MAX_BACKOFF_SECONDS
from lakeflow_job_meta.errors import (
    JobsApiError,
    PermanentApiError,
    RateLimitedError,
    ReplyLostError,
    TransientApiError,
)
from tests.emulator import Fault
from tests.fakes import FakeClock, RecordingSleep
from tests.helpers.monitor_env import MonitorEnv, notebook_row, tracked_job_ids
from tests.helpers.workspace_world import ATTEMPTS, World

pytestmark = pytest.mark.reliability


def policy(**kwargs: Any) -> tuple[RetryPolicy, RecordingSleep]:
    sleep = RecordingSleep()
    return RetryPolicy(sleep=sleep, **kwargs), sleep


def converged(world: World) -> None:
    result = world.orchestrator().run_all_modules()
    assert result.ok, [r.as_dict() for r in result if not r.ok]


def test_a_plain_500_on_a_get_is_retried_and_the_module_succeeds(world: World):
    converged(world)
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/get", kind="500", times=2))  # the SDK gives up on each
    world.emu.reset_counters()
    retry, sleep = policy()
    result = world.orchestrator(max_workers=1, retry_policy=retry).run_all_modules()
    assert result.ok, [r.as_dict() for r in result if not r.ok]
    assert world.emu.faults.fired_count("500", "jobs/get") == 2
    assert world.emu.write_counts() == Counter({"jobs/reset": 1})
    assert len(sleep.waits) == 2 and retry.retries_used == 2
    # jittered exponential backoff: the second wait is drawn from a doubled range
    assert 0.25 <= sleep.waits[0] <= 0.5 and 0.5 <= sleep.waits[1] <= 1.0


def test_a_failed_reset_is_resent_with_the_same_body(world: World):
    converged(world)
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/reset", kind="500", times=1))
    world.emu.reset_counters()
    result = world.orchestrator(retry_policy=policy()[0]).run_all_modules()
    assert result.ok and result.job_writes == 1
    bodies = [r.body for r in world.emu.requests if r.endpoint == "jobs/reset"]
    assert len(bodies) == 2 and bodies[0] == bodies[1]


def test_a_create_is_never_blindly_resent(world: World):
    """A plain 500 on jobs/create: the module fails this run (the create may have landed; the
    next run adopts by name and tags), and exactly one create request was sent."""
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="500", times=1))
    result = world.orchestrator(max_workers=1, retry_policy=policy()[0]).run_all_modules()
    (failed,) = [r for r in result if "jobs/create" in (r.error or "")]
    assert failed.transient  # a 500: the monitor retries it later
    creates = world.emu.count("jobs/create")
    assert creates == len(world.emu.jobs()) + 1  # every create sent once; the failed one not resent
    converged(world)
    assert {m: len(ids) for m, ids in world.ours().items()} == dict.fromkeys(world.ours(), 1)
    assert len(world.ours()) == 5


def test_a_permanent_error_is_not_retried(world: World):
    converged(world)
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/reset", kind="400", times=None))
    world.emu.reset_counters()
    retry, sleep = policy()
    result = world.orchestrator(retry_policy=retry).run_all_modules()
    (failed,) = [r for r in result if not r.ok]
    assert "InvalidParameterValue" in (failed.error or "") and not failed.transient
    assert world.emu.count("jobs/reset") == 1 and sleep.waits == []


def test_the_retry_budget_bounds_the_extra_requests_of_a_run(world: World):
    """The API answers every call with a plain 500: each call is tried at most ``max_attempts``
    times, and the whole run sends at most ``budget`` retries, then gives up until next run."""
    converged(world)
    world.emu.faults.add(Fault(endpoint="jobs/*", kind="500", times=None))
    world.emu.reset_counters()
    without = world.orchestrator(retry_policy=policy(budget=0)[0]).run_all_modules()
    baseline = sum(world.emu.request_counts().values())
    assert not without.ok and baseline >= 5
    world.emu.reset_counters()
    retry, sleep = policy(budget=5)
    result = world.orchestrator(retry_policy=retry).run_all_modules()
    assert not result.ok and all(r.transient for r in result if not r.ok)
    assert retry.retries_used == 5 and len(sleep.waits) == 5
    assert sum(world.emu.request_counts().values()) == baseline + 5
    # the next run has its budget back
    world.emu.faults.clear()
    assert world.orchestrator(retry_policy=retry).run_all_modules().ok


def test_every_sdk_failure_is_mapped_once_by_type():
    from databricks.sdk.errors import BadRequest, InternalError, NotFound, TooManyRequests
    from requests import ConnectionError as RequestsConnectionError

    def mapped(error: BaseException) -> JobsApiError:
        with pytest.raises(JobsApiError) as caught, sdk_errors("jobs/get 1"):
            raise error
        assert caught.value.__cause__ is error
        return caught.value

    assert type(mapped(InternalError("x"))) is TransientApiError and mapped(InternalError("x")).retry_here
    assert type(mapped(TooManyRequests("x"))) is RateLimitedError
    assert type(mapped(BadRequest("x"))) is PermanentApiError and mapped(BadRequest("x")).permanent
    assert type(mapped(NotFound("x"))) is PermanentApiError
    lost = mapped(RequestsConnectionError("reset by peer"))
    assert type(lost) is ReplyLostError and not lost.retry_here and not lost.permanent
    assert type(mapped(TimeoutError("Timed out after 0:00:45"))) is ReplyLostError  # how the SDK gives up
    with pytest.raises(ValueError), sdk_errors("jobs/get 1"):  # a bug is not an API error
        raise ValueError("a bug")


# ----------------------------------------------------------------------------------- monitor


def fast_orchestrator(env: MonitorEnv, clock: FakeClock) -> JobOrchestrator:
    return JobOrchestrator(
        env.ctl, env.client, target="workspace", clock=clock, retry_policy=RetryPolicy(sleep=clock.sleep)
    )


def monitor_for(env: MonitorEnv, interval: float = 10, **kwargs: Any):
    from lakeflow_job_meta import MetadataMonitor

    monitor = MetadataMonitor(
        env.ctl,
        check_interval_seconds=interval,
        orchestrator=fast_orchestrator(env, env.clock),
        clock=env.clock,
        **kwargs,
    )
    env.monitors.append(monitor)
    return monitor


def test_monitor_leaves_a_permanent_failure_alone_until_its_metadata_changes(env: MonitorEnv):
    env.tables.control.merge([notebook_row("a1", "alpha"), notebook_row("b1", "beta")])
    monitor = monitor_for(env, full_resync_seconds=3600)
    assert monitor.check_and_update().run.ok
    env.emu.faults.add(Fault(endpoint="jobs/reset", kind="400", times=None))
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v2")])
    env.emu.reset_counters()
    failed = monitor.check_and_update()
    assert failed.run is not None and not failed.run.ok and failed.modules_reconciled == ["alpha"]
    assert monitor._read_state("progress")["retrying"] == []
    # An otherwise idle monitor spends nothing on it: 30 cycles, 10 s apart, no request.
    env.emu.reset_counters()
    for _ in range(30):
        env.clock.advance(10)
        assert monitor.check_and_update().idle
    assert sum(env.emu.request_counts().values()) == 0
    # The metadata changes: the module is tried again, at once.
    env.emu.faults.clear()
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v3")])
    fixed = monitor.check_and_update()
    assert fixed.modules_reconciled == ["alpha"] and fixed.run.ok
    assert env.emu.write_counts() == Counter({"jobs/reset": 1})


def test_monitor_retries_a_transient_failure_with_exponential_backoff_to_a_cap(env: MonitorEnv):
    env.tables.control.merge([notebook_row("a1", "alpha")])
    monitor = monitor_for(env, full_resync_seconds=10_000)
    assert monitor.check_and_update().run.ok
    env.emu.faults.add(Fault(endpoint="jobs/reset", kind="500", times=None))
    env.tables.control.merge([notebook_row("a1", "alpha", "/Workspace/v2")])
    assert not monitor.check_and_update().run.ok
    attempts_at: list[float] = []
    start = env.clock.now()
    for _ in range(150):  # 1500 s of 10 s cycles
        env.clock.advance(10)
        report = monitor.check_and_update()
        if report.run is not None:
            attempts_at.append(env.clock.now() - start)
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert len(attempts_at) >= 6
    # the gaps double (20, 40, 80, 160 s, give or take a cycle and the retry sleeps), then stay at the cap
    assert all(later >= earlier - 5 for earlier, later in itertools.pairwise(gaps)), gaps
    assert gaps[0] < 40 and max(gaps) <= MAX_BACKOFF_SECONDS + 20, gaps
    # each attempt costs at most one call's attempts of jobs/reset: bounded, no storm
    assert env.emu.count("jobs/reset") <= (len(attempts_at) + 1) * ATTEMPTS
    # the API recovers: the next due attempt applies the change
    env.emu.faults.clear()
    env.clock.advance(MAX_BACKOFF_SECONDS + 10)
    assert monitor.check_and_update().run.ok
    job = env.emu.job(tracked_job_ids(env.tables)["alpha"])
    assert job["settings"]["tasks"][0]["notebook_task"]["notebook_path"] == "/Workspace/v2"


def test_an_apply_that_failed_in_a_monitor_cycle_is_retried_without_a_new_version(world: World):
    """The Delta versions of a failed apply count as processed, so the failed module itself is
    retried on the next cycles (with backoff) instead of waiting for the full resync."""
    from lakeflow_job_meta import MetadataMonitor

    clock = FakeClock()
    monitor = MetadataMonitor(
        world.control,
        check_interval_seconds=10,
        orchestrator=world.orchestrator(clock=clock),
        clock=clock,
    )
    assert monitor.check_and_update().run.ok
    world.edit_yaml("base_parameters: {load_mode: streaming}", "base_parameters: {load_mode: batch}")
    world.emu.faults.add(Fault(endpoint="jobs/reset", kind="500", times=ATTEMPTS))  # outlasts our retries
    world.emu.reset_counters()

    failed = monitor.check_and_update()
    assert failed.run is not None and not failed.run.ok
    assert world.emu.writes() == 0
    assert monitor._read_state("progress")["retrying"] == ["clickstream_continuous"]

    clock.advance(10)
    retried = monitor.check_and_update()
    assert not retried.table_changed
    assert retried.modules_reconciled == ["clickstream_continuous"]
    assert retried.run is not None and retried.run.ok
    assert world.emu.write_counts() == {"jobs/reset": 1}

    clock.advance(10)
    assert monitor.check_and_update().idle  # nothing left to retry

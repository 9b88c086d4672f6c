"""A create whose reply was lost, and the job-creation rate limit, through the real SDK over HTTP
against the emulator.

A lost reply (a read timeout, a reset connection) may hide a create that landed: the tool never
sends it again but looks the job up by name and ownership tags and adopts it in the same run, so
every run ends with exactly one job. What the SDK does first differs across the releases
pyproject.toml allows (before 0.167 it resends a POST whose read timed out): each test asserts
the installed release's behaviour, and CI runs this file on both ends of the range.

The job rate limit is a definite 400 ``INVALID_STATE`` rejection (nothing landed): the create is
sent again after a jittered backoff, within the run's retry budget. No test waits: the SDK's
clock and the retry policy's sleep are fakes; only the read timeout itself is a real socket
timeout of one second.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from databricks.sdk.errors import InvalidParameterValue, InvalidState

from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs, sdk_errors
from lakeflow_job_meta.adapters.retrying import RetryPolicy, is_rate_limited
from lakeflow_job_meta.errors import (
    JobsApiError,
    PermanentApiError,
    RateLimitedError,
    ReplyLostError,
    TransientApiError,
)
from tests.emulator import Fault
from tests.emulator.faults import JOB_RATE_LIMIT_MESSAGE
from tests.fakes import InstantSdkClock, RecordingSleep
from tests.helpers.workspace_world import World
from tests.reliability.helpers import instant_client
from tests.sdk_behaviour import RESENDS_POST_AFTER_READ_TIMEOUT

pytestmark = pytest.mark.reliability

MODULE = "warehouse_refresh"


def apply_one(world: World, retry: RetryPolicy | None = None) -> Any:
    retry = retry if retry is not None else RetryPolicy(sleep=RecordingSleep())
    return world.orchestrator(max_workers=1, retry_policy=retry).create_or_update_job(MODULE)


def assert_one_tracked_job(world: World, job_id: int) -> None:
    assert world.ours()[MODULE] == [job_id]
    assert world.tracked()[MODULE]["job_id"] == job_id


# ------------------------------------------------------------------------------- lost replies


def test_a_create_whose_read_timed_out_converges_to_one_job_in_the_same_run(world: World):
    """The create commits and the reply never comes (the client's read times out). Before 0.167
    the SDK resends it and the tool deletes the first copy; from 0.167 the SDK raises the timeout
    and the tool adopts the job that landed. Either way: one job, tracked, in this run."""
    world.client = instant_client(world.emu, http_timeout_seconds=1)
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="stall_after_commit", delay=60))
    result = apply_one(world)
    assert result.ok, result.as_dict()
    assert_one_tracked_job(world, result.job_id)
    writes = world.emu.write_counts()
    if RESENDS_POST_AFTER_READ_TIMEOUT:
        assert (writes["jobs/create"], writes["jobs/delete"]) == (2, 1)
    else:
        assert (writes["jobs/create"], writes["jobs/delete"]) == (1, 0)
    assert world.emu.faults.fired_count("stall_after_commit") == 1


def test_a_create_whose_connection_was_reset_until_the_sdk_gave_up_is_adopted_in_the_same_run(world: World):
    """The create commits, its connection is reset, and every resend is refused until the SDK's
    retry deadline passes (its TimeoutError): the reply is lost, the job is adopted."""
    world.client = instant_client(world.emu, retry_timeout_seconds=5)
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit", times=1))
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="drop_before", times=None))
    result = apply_one(world)
    assert result.ok, result.as_dict()
    assert_one_tracked_job(world, result.job_id)
    assert world.emu.count("jobs/create") >= 2  # the SDK resent after the reset, never us
    clock = world.client.config.clock
    assert isinstance(clock, InstantSdkClock) and sum(clock.sleeps) >= 5  # its deadline passed
    assert world.emu.write_counts()["jobs/delete"] == 0


@pytest.mark.parametrize(
    ("fault", "kwargs"),
    [
        ("stall_after_commit", {"http_timeout_seconds": 1}),
        ("drop_after_commit", {"retry_timeout_seconds": 2}),
    ],
)
def test_the_gateway_reports_a_lost_create_reply_as_reply_lost(jobs_emulator, fault: str, kwargs: dict):
    if fault == "stall_after_commit" and RESENDS_POST_AFTER_READ_TIMEOUT:
        pytest.skip("this SDK release resends a POST whose read timed out: no error reaches the tool")
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind=fault, delay=60, times=None))
    gateway = WorkspaceJobs(instant_client(jobs_emulator, **kwargs))
    with pytest.raises(ReplyLostError, match=r"^jobs/create: reply lost, outcome unknown: ") as caught:
        gateway.create({"name": "lost"})
    assert isinstance(caught.value, TransientApiError) and not caught.value.retry_here
    assert len(jobs_emulator.jobs()) >= 1  # it landed although no reply came back


@pytest.mark.parametrize(
    "error",
    [
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError("connection reset by peer"),
        TimeoutError("Timed out after 0:00:05"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_transport_failure_becomes_reply_lost(error: BaseException):
    with pytest.raises(ReplyLostError) as caught, sdk_errors("jobs/create"):
        raise error
    assert caught.value.__cause__ is error and not caught.value.permanent
    assert str(caught.value).startswith(f"jobs/create: reply lost, outcome unknown: {type(error).__name__}: ")


# ------------------------------------------------------------------------------ job rate limit


def mapped(error: BaseException) -> BaseException:
    """What the gateway raises for an SDK error: its one mapping."""
    with pytest.raises(JobsApiError) as caught, sdk_errors("jobs/create"):
        raise error
    return caught.value


def test_the_job_rate_limit_is_classified_rate_limited_and_only_that_400():
    limited = InvalidState(JOB_RATE_LIMIT_MESSAGE, error_code="INVALID_STATE")
    assert is_rate_limited(limited) and isinstance(mapped(limited), RateLimitedError)
    other_state = InvalidState("The job is in an invalid state.", error_code="INVALID_STATE")
    assert not is_rate_limited(other_state) and isinstance(mapped(other_state), PermanentApiError)
    bad = InvalidParameterValue("rate limit: exceeding rate limit", error_code="INVALID_PARAMETER_VALUE")
    assert not is_rate_limited(bad) and isinstance(mapped(bad), PermanentApiError)


def test_the_job_rate_limit_is_waited_out_and_the_create_sent_again(world: World):
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="job_rate_limit", times=2))
    sleep = RecordingSleep()
    retry = RetryPolicy(sleep=sleep)
    result = apply_one(world, retry)
    assert result.ok, result.as_dict()
    assert_one_tracked_job(world, result.job_id)
    assert world.emu.count("jobs/create") == 3 and retry.retries_used == 2
    # jittered exponential backoff ("equal jitter": half the backoff, plus up to as much again)
    assert 0.25 <= sleep.waits[0] <= 0.5 and 0.5 <= sleep.waits[1] <= 1.0


def test_a_job_rate_limit_that_outlasts_the_attempts_is_a_transient_error_until_it_lifts(world: World):
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="job_rate_limit", times=None))
    retry = RetryPolicy(sleep=RecordingSleep())
    failed = apply_one(world, retry)
    assert failed.outcome == "error" and failed.transient  # the monitor retries it with backoff
    assert "exceeding rate limit" in (failed.error or "")
    assert world.emu.count("jobs/create") == retry.max_attempts and world.emu.jobs() == {}
    world.emu.faults.clear()
    result = apply_one(world)
    assert result.ok and world.emu.writes("jobs/create") == 1
    assert_one_tracked_job(world, result.job_id)


def test_the_job_rate_limit_retries_draw_on_the_runs_budget(world: World):
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="job_rate_limit", times=None))
    retry = RetryPolicy(sleep=RecordingSleep(), budget=1)
    assert apply_one(world, retry).outcome == "error"
    assert world.emu.count("jobs/create") == 2 and retry.retries_used == 1


def test_a_definite_400_other_than_the_rate_limit_is_never_resent(world: World):
    world.emu.faults.add(Fault(endpoint="jobs/create", kind="400", times=None))
    retry = RetryPolicy(sleep=RecordingSleep())
    failed = apply_one(world, retry)
    assert failed.outcome == "error" and not failed.transient
    assert world.emu.count("jobs/create") == 1 and retry.retries_used == 0

"""The one gateway to the Jobs API (``adapters/databricks_jobs.py``), through the real SDK against
the emulator: the listing read a page at a time, a failed page retried by itself, one mkdirs per
folder, a create that knows whether it went out twice, and one rate limiter for the client."""

from __future__ import annotations

import threading
from typing import Any

from lakeflow_job_meta.adapters.databricks_jobs import WorkspaceJobs
from lakeflow_job_meta.adapters.gateway import JOBS_PAGE_SIZE
from lakeflow_job_meta.adapters.retrying import RateLimiter, RetryPolicy
from tests.emulator import Fault
from tests.emulator.server import JobsEmulator
from tests.fakes import FakeClock
from tests.reliability.helpers import instant_client


def gateway(emu: JobsEmulator, **kwargs: Any) -> WorkspaceJobs:
    return WorkspaceJobs(instant_client(emu), retry=RetryPolicy(sleep=lambda seconds: None), **kwargs)


def read_listing(jobs: WorkspaceJobs) -> list[int]:
    ids: list[int] = []
    token = None
    while True:
        page = jobs.list_page(token)
        ids += [job.job_id for job in page.jobs]
        token = page.next_page_token
        if not token:
            return ids


def test_the_listing_is_read_a_page_at_a_time_and_a_failed_page_alone_is_retried(jobs_emulator):
    jobs = gateway(jobs_emulator)
    created = sorted(jobs.create({"name": f"job{i:03d}"}).job_id for i in range(2 * JOBS_PAGE_SIZE + 5))
    jobs_emulator.reset_counters()
    # The second page fails once with a plain 500 (the SDK does not retry it).
    jobs_emulator.faults.add(Fault(endpoint="jobs/list", kind="500", after=1, times=1))
    assert sorted(read_listing(jobs)) == created
    # three pages and one resend of the failed one: never the whole listing again
    assert jobs_emulator.count("jobs/list") == 4
    assert jobs.retry.retries_used == 1


def test_one_mkdirs_per_folder_and_again_when_the_folder_was_removed(jobs_emulator):
    jobs = gateway(jobs_emulator)
    for name in ("a.sql", "b.sql", "c.sql"):
        jobs.write_file(f"/Workspace/ljm/sql/{name}", "select 1")
    assert jobs_emulator.count("workspace/mkdirs") == 1
    assert jobs_emulator.count("workspace/import") == 3
    jobs.client.workspace.delete("/Workspace/ljm/sql", recursive=True)  # someone removed it
    jobs.write_file("/Workspace/ljm/sql/d.sql", "select 2")
    assert jobs_emulator.count("workspace/mkdirs") == 2


def test_a_create_says_whether_the_sdk_sent_it_more_than_once(jobs_emulator):
    jobs = gateway(jobs_emulator)
    assert not jobs.create({"name": "once"}).resent
    # A 429 the SDK waits out and resends: two requests went out (a copy could exist).
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="429", times=1))
    assert jobs.create({"name": "twice"}).resent
    assert jobs_emulator.count("jobs/create") == 3


def test_one_limiter_keeps_every_worker_of_a_client_under_the_rate(jobs_emulator):
    clock = FakeClock()  # the limiter's waits are read, never waited
    limiter = RateLimiter(5.0, clock=clock.monotonic, sleep=clock.sleep)
    jobs = gateway(jobs_emulator, limiter=limiter)
    workers = [threading.Thread(target=lambda: [jobs.get(1) for _ in range(5)]) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent = jobs_emulator.count("jobs/get")
    assert sent == 20
    # 20 requests at 5 a second: the last one starts no earlier than 3.8 s after the first.
    assert sum(clock.sleeps) >= (sent - 1) / 5.0 - 1e-9


def test_a_429_pauses_the_whole_client_for_the_wait_it_names(jobs_emulator):
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock.monotonic, sleep=clock.sleep)
    jobs = gateway(jobs_emulator, limiter=limiter)
    jobs_emulator.faults.add(Fault(endpoint="jobs/get", kind="429", retry_after=7, times=1))
    jobs.get(1)  # the SDK resends it after its own wait; the limiter saw the 429 first
    # The resend (and any other worker's request) waited out the seven seconds on the limiter.
    assert any(abs(wait - 7) < 1e-6 for wait in clock.sleeps), clock.sleeps
    assert jobs_emulator.count("jobs/get") == 2

"""Crash consistency: an apply SIGKILLed at random points (just before or just after an API call
or a tracking-table write), restarted each time, at least 20 times, with the metadata changing
in between. In the end: exactly one job per module, a tracking table that names exactly those
jobs, and a run with nothing to write."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta import JobOrchestrator, MetadataManager
from tests.emulator.server import JobsEmulator
from tests.example_files import EXAMPLE_MODULES, EXAMPLES, REPO
from tests.fakes import AFTER_ANY_REAL_CLOCK, FakeClock
from tests.reliability.helpers import assert_one_job_per_module, instant_client, modules_yaml, ours_by_module

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

KILLS = 20


def restart_time(iteration: int) -> float:
    """When the ``iteration``-th apply runs: after the killed one's writer lease (60 s) expired."""
    return AFTER_ANY_REAL_CLOCK + 120.0 * iteration


class Worker:
    """The pre-warmed apply process (tests/reliability/crash_worker.py)."""

    def __init__(self, workdir: Path):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "PYTHONPATH": str(REPO)}
        self.stderr = open(workdir / "worker.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "reliability" / "crash_worker.py")],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def apply(self, control: str, host: str, kill_at: int, now: float) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        command = {"control": control, "host": host, "kill_at": kill_at, "now": now}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the worker died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)
        self.stderr.close()


def assert_tracking_consistent(manager: MetadataManager, emulator: JobsEmulator, control: str) -> None:
    """Whenever a process dies: no job is tracked twice, and a tracked job that exists is ours,
    for that module (a dead process never leaves the table pointing at a foreign job)."""
    ours = ours_by_module(emulator, control)
    rows = [row for row in manager.tables.jobs.read_all() if row.get("job_id") is not None]
    ids = [int(row["job_id"]) for row in rows]
    assert len(ids) == len(set(ids)), rows
    for row in rows:
        if emulator.job(int(row["job_id"])) is not None:
            assert int(row["job_id"]) in ours.get(row["module_name"], []), row


def test_an_apply_killed_at_random_points_and_restarted_converges(
    tmp_path: Path, jobs_emulator: JobsEmulator
):
    rng = random.Random(20261201)
    control = str(tmp_path / "ctl")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "examples.yaml").write_text(EXAMPLES.read_text())
    manager = MetadataManager(control)
    manager.ensure_exists()
    count = 4

    def write_generated(version: int) -> None:
        text = modules_yaml(count, prefix="gen", sources=2)
        changed = f"/Workspace/gen{version % count:03d}/0"
        (volume / "generated.yaml").write_text(text.replace(changed, f"{changed}_v{version}"))
        manager.sync_from_volume(str(volume))

    write_generated(0)
    worker = Worker(tmp_path)
    outcomes = []
    try:
        iteration = 0
        while sum(o["killed"] for o in outcomes) < KILLS:
            iteration += 1
            assert iteration <= 3 * KILLS, outcomes
            if iteration % 4 == 0:  # the metadata moves on between crashes: a new or changed module
                count += iteration % 8 == 0
                write_generated(iteration)
            outcomes.append(
                worker.apply(control, jobs_emulator.url, rng.randint(1, 48), restart_time(iteration))
            )
            assert outcomes[-1]["killed"] or outcomes[-1]["code"] in (0, 1), outcomes[-1]
            assert_tracking_consistent(manager, jobs_emulator, control)
        final = worker.apply(control, jobs_emulator.url, 0, restart_time(iteration + 1))
    finally:
        worker.close()
    assert final == {"killed": False, "code": 0}, (tmp_path / "worker.log").read_text()[-3000:]
    assert sum(o["killed"] for o in outcomes) >= KILLS

    modules = EXAMPLE_MODULES | {f"gen{m:03d}" for m in range(count)}
    assert_one_job_per_module(jobs_emulator, control, modules)
    assert len(jobs_emulator.jobs()) == len(modules)
    client = instant_client(jobs_emulator)
    clock = FakeClock(start=restart_time(iteration + 2))
    JobOrchestrator(control, client, target="workspace", clock=clock).run_all_modules()  # settles "created"
    jobs_emulator.reset_counters()
    again = JobOrchestrator(control, client, target="workspace", clock=clock).run_all_modules()
    assert again.ok and {r.action for r in again} == {"noop"}, [r.as_dict() for r in again]
    assert jobs_emulator.writes() == 0
    statuses = {row["status"] for row in manager.tables.jobs.read_all()}
    assert statuses == {"ok"}, statuses

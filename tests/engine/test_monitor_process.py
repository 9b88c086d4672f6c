"""The monitor as a real process: ``python -m lakeflow_job_meta monitor`` (and the wheel entry
point) talking to the Jobs API emulator, which runs in the test process, through the real SDK
configured only by ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``. SIGKILL, SIGTERM, two monitors on one
control table, ``--once``.

Every wait is on a real signal (a request the emulator saw, a log line, a process exit), and
where a signal must land at a chosen point the emulator holds the child's request there until the
test has sent it; nothing sleeps to synchronise and nothing is timed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeflow_job_meta.main import translate_parameters
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.vocabulary import DEFAULT_MAX_WORKERS
from tests.emulator.faults import Fault
from tests.emulator.server import JobsEmulator
from tests.helpers.monitor_env import (
    job_ids_by_name,
    module_yaml,
    notebook_paths,
    notebook_row,
    tracked_job_ids,
    write_file,
)
from tests.helpers.waiting import SAFETY_NET_SECONDS, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


class Child:
    """One monitor process; its stderr goes to a file the test reads while it runs."""

    def __init__(self, argv: list[str], emu: JobsEmulator, workdir: Path, name: str):
        self.log_path = workdir / f"{name}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()/kill()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "DATABRICKS_HOST": emu.url,
            "DATABRICKS_TOKEN": "x",
        }
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str) -> None:
        def seen() -> bool:
            if text in self.log:
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"exited {self.proc.returncode} before logging {text!r}:\n{self.log}")
            return False

        wait_for(seen, f"{text!r} in the log")

    def wait(self) -> int:
        """The exit code (a process still running after the safety net fails the test)."""
        try:
            return self.proc.wait(SAFETY_NET_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {SAFETY_NET_SECONDS:g}s:\n{self.log}") from None
        finally:
            self.log_file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(SAFETY_NET_SECONDS)
        self.log_file.close()


@pytest.fixture
def spawn(tmp_path: Path, jobs_emulator: JobsEmulator) -> Iterator:
    children: list[Child] = []

    def start(*args: str, name: str = "monitor", module: bool = True) -> Child:
        argv = ["-m", "lakeflow_job_meta", *args] if module else list(args)
        child = Child(argv, jobs_emulator, tmp_path, f"{name}{len(children)}")
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


@pytest.fixture
def ctl(tmp_path: Path) -> str:
    path = str(tmp_path / "etl_control")
    open_tables(path).ensure_exists()
    return path


def monitor_args(ctl: str, *extra: str) -> list[str]:
    return ["monitor", "--control-table", ctl, "--target", "workspace", *extra]


def insert_modules(ctl: str, n: int, path: str = "/Workspace/x") -> list[str]:
    modules = [f"module{i}" for i in range(n)]
    open_tables(ctl).control.merge([notebook_row(f"s{i}", m, path) for i, m in enumerate(modules)])
    return modules


def assert_one_job_per_module(emu: JobsEmulator, ctl: str, modules: list[str]) -> None:
    by_name = job_ids_by_name(emu)
    assert sorted(by_name) == sorted(modules), by_name
    assert all(len(ids) == 1 for ids in by_name.values()), by_name
    tracked = tracked_job_ids(open_tables(ctl))
    assert tracked == {name: ids[0] for name, ids in by_name.items()}


# ---------------------------------------------------------------------------------- (a) SIGKILL


def test_sigkill_between_create_and_record_then_restart_converges_without_duplicates(
    ctl: str, spawn, jobs_emulator: JobsEmulator
) -> None:
    modules = insert_modules(ctl, 3)
    # One module at a time; the first create commits and its reply is held until the client is
    # gone: the kill lands after the job exists and before the monitor could record it.
    jobs_emulator.faults.add(
        Fault(endpoint="jobs/create", kind="stall_after_commit", delay=SAFETY_NET_SECONDS, times=None)
    )
    args = ("--check-interval-seconds", "1", "--lease-ttl-seconds", "3", "--max-workers", "1")
    child = spawn(*monitor_args(ctl, *args))
    wait_for(lambda: jobs_emulator.jobs(), "the first jobs/create to commit")
    child.proc.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    created = jobs_emulator.jobs()
    assert len(created) == 1 and jobs_emulator.count("jobs/create") == 1
    assert tracked_job_ids(open_tables(ctl)) == {}

    jobs_emulator.faults.clear()
    jobs_emulator.reset_counters()
    # --once waits for the dead monitor's lease (TTL 3 s) if still live, then does a full
    # reconcile, which finds the unrecorded jobs by name and ownership tags.
    again = spawn(*monitor_args(ctl, "--once"))
    assert again.wait() == 0, again.log
    assert "adopt" in again.log
    assert_one_job_per_module(jobs_emulator, ctl, modules)
    # The jobs created before the kill were adopted, not created again.
    assert set(created) <= set(jobs_emulator.jobs())
    assert jobs_emulator.writes("jobs/create") == len(modules) - len(created)


# ---------------------------------------------------------------------------------- (b) SIGTERM


def test_sigterm_finishes_the_modules_in_flight_and_exits_0(
    ctl: str, spawn, jobs_emulator: JobsEmulator
) -> None:
    modules = insert_modules(ctl, DEFAULT_MAX_WORKERS + 4)  # more than the apply workers: some never start
    # Every create is held until the monitor has taken the SIGTERM: the workers are all busy
    # then, so the modules still queued can only be skipped.
    held = threading.Event()
    jobs_emulator.faults.add(
        Fault(endpoint="jobs/create", kind="slow", gate=held, delay=SAFETY_NET_SECONDS, times=None)
    )
    child = spawn(*monitor_args(ctl, "--check-interval-seconds", "1"))
    try:
        wait_for(lambda: jobs_emulator.count("jobs/create") >= 1, "the first jobs/create")
        child.proc.send_signal(signal.SIGTERM)
        child.wait_log("received SIGTERM")
    finally:
        held.set()
    assert child.wait() == 0, child.log
    # Every module that was in flight finished and was recorded; the others were not started.
    created = jobs_emulator.jobs()
    tracked = tracked_job_ids(open_tables(ctl))
    assert 1 <= len(created) < len(modules)
    assert sorted(tracked.values()) == sorted(created)
    # Its lease was released on the way out: the next start need not wait for the TTL.
    jobs_emulator.faults.clear()
    again = spawn(*monitor_args(ctl, "--once", "--no-wait"))
    assert again.wait() == 0, again.log
    assert_one_job_per_module(jobs_emulator, ctl, modules)


# ---------------------------------------------------------------------------------- (c) two monitors


def test_two_monitors_one_applies_the_other_takes_over_after_the_ttl(
    ctl: str, spawn, jobs_emulator: JobsEmulator
) -> None:
    modules = insert_modules(ctl, 2)
    common = ("--check-interval-seconds", "0.5", "--lease-ttl-seconds", "3")
    first = spawn(*monitor_args(ctl, *common), name="first")
    wait_for(lambda: len(tracked_job_ids(open_tables(ctl))) == 2, "the first monitor to apply")
    second = spawn(*monitor_args(ctl, *common), name="second")
    second.wait_log("another monitor holds the writer lease")

    # While both run, a change is applied once, by the first.
    jobs_emulator.reset_counters()
    open_tables(ctl).control.merge([notebook_row("s0", "module0", "/Workspace/v2")])
    job0 = tracked_job_ids(open_tables(ctl))["module0"]
    wait_for(lambda: notebook_paths(jobs_emulator.job(job0)) == ["/Workspace/v2"], "the change applied")
    first.wait_log("module0=update")
    assert "job write" not in second.log  # the waiting monitor applied nothing
    assert jobs_emulator.writes() == 1

    first.proc.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    second.wait_log("took over the writer lease")  # once the dead holder's TTL ran out
    # The new holder applies: a full reconcile (nothing to do) and then new changes.
    open_tables(ctl).control.merge([notebook_row("s1", "module1", "/Workspace/v3")])
    job1 = tracked_job_ids(open_tables(ctl))["module1"]
    wait_for(lambda: notebook_paths(jobs_emulator.job(job1)) == ["/Workspace/v3"], "the second applies")
    second.wait_log("module1=update")
    assert jobs_emulator.writes() == 2
    assert_one_job_per_module(jobs_emulator, ctl, modules)
    second.proc.send_signal(signal.SIGTERM)
    assert second.wait() == 0


# ---------------------------------------------------------------------------------- (d) --once


def test_once_runs_one_full_cycle_and_exits_0(
    ctl: str, spawn, jobs_emulator: JobsEmulator, tmp_path: Path
) -> None:
    modules = insert_modules(ctl, 2)
    volume = tmp_path / "volume"
    volume.mkdir()
    write_file(volume / "y.yaml", module_yaml("from_yaml"))
    child = spawn(*monitor_args(ctl, "--once", "--volume-path", str(volume)))
    assert child.wait() == 0, child.log
    assert "full resync" in child.log and "cycle 1" in child.log and "cycle 2" not in child.log
    assert_one_job_per_module(jobs_emulator, ctl, [*modules, "from_yaml"])

    jobs_emulator.reset_counters()
    again = spawn(*monitor_args(ctl, "--once", "--volume-path", str(volume), "--log-format", "json"))
    assert again.wait() == 0, again.log
    assert jobs_emulator.writes() == 0
    assert '"full": true' in again.log and '"job_writes": 0' in again.log


def test_once_exits_1_when_a_module_fails(ctl: str, spawn, jobs_emulator: JobsEmulator) -> None:
    insert_modules(ctl, 1)
    jobs_emulator.faults.add(Fault(endpoint="jobs/create", kind="500", times=None))
    child = spawn(*monitor_args(ctl, "--once"))
    assert child.wait() == 1, child.log


# ---------------------------------------------------------------------------------- (e) wheel entry


def test_wheel_entry_point_takes_underscore_parameters(ctl: str, spawn, jobs_emulator: JobsEmulator) -> None:
    modules = insert_modules(ctl, 2)
    entry = "from lakeflow_job_meta.main import main; main()"
    child = spawn(
        "-c",
        entry,
        f"--control_table={ctl}",
        "--check_interval_seconds=1",
        "--max_iterations=1",
        "--target=workspace",
        module=False,
    )
    assert child.wait() == 0, child.log
    assert_one_job_per_module(jobs_emulator, ctl, modules)

    # A failed run must fail the task: Databricks ignores the entry point's return value.
    jobs_emulator.faults.add(Fault(endpoint="jobs/reset", kind="500", times=None))
    open_tables(ctl).control.merge([notebook_row("s0", "module0", "/Workspace/v2")])
    failing = spawn("-c", entry, f"--control_table={ctl}", "--once=true", "--target=workspace", module=False)
    assert failing.wait() == 1, failing.log


def test_translate_parameters_underscores_and_empty_means_unset() -> None:
    assert translate_parameters(
        [
            "--control_table=main.ops.etl_control",
            "--volume_path=/Volumes/main/ops/metadata",
            "--check_interval_seconds=60",
            "--max_iterations=",
        ]
    ) == [
        "monitor",
        "--control-table=main.ops.etl_control",
        "--volume-path=/Volumes/main/ops/metadata",
        "--check-interval-seconds=60",
    ]
    assert translate_parameters(["--max_iterations=3", "--once=false", "--no_wait=true"]) == [
        "monitor",
        "--max-iterations=3",
        "--no-wait",
    ]
    from lakeflow_job_meta.cli.main import build_parser

    args = build_parser().parse_args(translate_parameters(["--control_table=t", "--max_iterations="]))
    assert args.max_iterations is None  # run_continuous(max_iterations=None): forever
    with pytest.raises(SystemExit):
        translate_parameters(["--no_such_parameter=1"])


def test_signal_counts_are_not_confused_by_idle_cycles(ctl: str, spawn, jobs_emulator: JobsEmulator) -> None:
    """A running monitor with nothing to do makes no API request at all after its first cycle."""
    insert_modules(ctl, 1)
    # Idle cycles log at DEBUG: --debug shows them.
    child = spawn("--debug", *monitor_args(ctl, "--check-interval-seconds", "0.2"))
    child.wait_log("cycle 1,")
    jobs_emulator.reset_counters()
    child.wait_log("cycle 10,")
    assert jobs_emulator.request_counts() == Counter()
    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == 0

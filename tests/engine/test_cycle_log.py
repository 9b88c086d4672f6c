"""Logs for a monitor that runs for a year: idle cycles at DEBUG, a heartbeat every 10 minutes,
problems once (again only when they change), JSON lines for shippers, a handler in notebooks.

Real monitor, real delta-rs tables, real files, the emulator through the SDK; time is FakeClock.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta.logs import EVENT, JsonFormatter, ensure_handler
from tests.emulator import Fault
from tests.helpers.monitor_env import MonitorEnv, module_yaml, notebook_row, write_file

pytest.importorskip("deltalake")

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "lakeflow_job_meta"


def _info_or_above(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def test_100_idle_cycles_write_no_info_line_then_one_heartbeat(
    env: MonitorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.tables.control.merge([notebook_row("s1", "alpha")])
    monitor = env.monitor(volume=False)
    with caplog.at_level(logging.DEBUG, logger=PACKAGE):
        first = monitor.check_and_update()
        assert first.run is not None and first.run.ok
        assert any("alpha=create" in m for m in _info_or_above(caplog))  # a change: INFO
        caplog.clear()
        for _ in range(100):
            env.clock.advance(5)
            assert monitor.check_and_update().idle
        assert _info_or_above(caplog) == []
        assert sum(", idle (" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) == 100

        env.clock.advance(100)  # 600 s since the monitor started: the heartbeat is due
        monitor.check_and_update()
        infos = _info_or_above(caplog)
    assert len(infos) == 1, infos
    assert infos[0].startswith("heartbeat: 102 cycle(s) in 600 s, control v1 modules v0")
    assert "1 module(s)" in infos[0] and "lag 0 version(s)" in infos[0]


def test_a_rejected_file_is_a_warning_once_until_its_problem_changes(
    env: MonitorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = env.monitor()
    bad = module_yaml("beta").replace("execution_order: 1", 'execution_order: "1"')
    write_file(env.volume / "beta.yaml", bad)
    with caplog.at_level(logging.DEBUG, logger=PACKAGE):
        report = monitor.check_and_update()
        assert list(report.files_rejected) == ["beta.yaml"]
        assert "idle" not in report.summary()
        for _ in range(3):
            env.clock.advance(700)  # each one a full resync that sees the same bad file
            monitor.check_and_update(force_full=True)
        rejected = [r for r in caplog.records if r.getMessage().startswith("rejected ")]
        assert len(rejected) == 1 and rejected[0].levelno == logging.WARNING
        assert "execution_order" in rejected[0].getMessage()

        write_file(
            env.volume / "beta.yaml", bad.replace('"1"', "1").replace("task_type: notebook", "task_type: nb")
        )
        monitor.check_and_update()
        rejected = [r for r in caplog.records if r.getMessage().startswith("rejected ")]
    assert len(rejected) == 2  # the problem changed: said again
    assert "unknown task type 'nb'" in rejected[1].getMessage() or "task_type" in rejected[1].getMessage()


def test_a_module_failing_the_same_way_is_a_warning_once(
    env: MonitorEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.emu.faults.add(Fault(endpoint="jobs/create", kind="500", times=None))
    env.tables.control.merge([notebook_row("s1", "alpha")])
    monitor = env.monitor(volume=False)
    with caplog.at_level(logging.DEBUG, logger=PACKAGE):
        for _ in range(5):
            monitor.check_and_update()
            env.clock.advance(400)  # past every retry backoff
        failures = [r for r in caplog.records if r.getMessage().startswith("module alpha:")]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert env.emu.count("jobs/create") >= 3  # it did retry, quietly


def test_json_lines_carry_the_cycle() -> None:
    record = logging.LogRecord(PACKAGE, logging.INFO, __file__, 1, "cycle %d", (7,), None)
    setattr(record, EVENT, {"cycle": {"iteration": 7, "full": True}})
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "cycle 7"
    assert document["level"] == "INFO"
    assert document["cycle"] == {"iteration": 7, "full": True}
    assert document["time"].endswith("+00:00")


def test_ensure_handler_only_when_nothing_would_print(monkeypatch: pytest.MonkeyPatch) -> None:
    package = logging.getLogger(PACKAGE)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(package, "level", logging.NOTSET)
    added = ensure_handler()
    assert added is not None and package.handlers == [added] and package.level == logging.INFO
    assert ensure_handler() is None  # idempotent
    monkeypatch.setattr(package, "handlers", [])
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
    assert ensure_handler() is None  # the application configured logging: leave it


@pytest.mark.slow
def test_monitor_from_a_notebook_prints_its_cycles(tmp_path: Path) -> None:
    """No logging configured (as in a notebook): the cycle line reaches stdout."""
    code = (
        "from lakeflow_job_meta import MetadataMonitor\n"
        f"m = MetadataMonitor({str(tmp_path / 'ctl')!r}, target={'bundle:' + str(tmp_path / 'b')!r})\n"
        "m.run_continuous(max_iterations=1)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    environ["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "INFO cycle 1, control v0 modules v0, full resync" in proc.stdout

"""Words a new user can act on: the monitor's state says whether it crashed or completed, a
Ctrl-C stop is logged at INFO (a normal stop, not a problem), validation messages name the fix
(tabs, a misspelt task type), and sizes read as people read them."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import pytest

from lakeflow_job_meta.metadata.limits import human_size
from tests.cli_run import run_cli


def test_a_crashed_monitor_is_stopped_a_clean_one_completed() -> None:
    from lakeflow_job_meta.engine.status import _monitor, render_status

    crashed = _monitor(
        {"holder": "monitor@h:1", "acquired_at": 10.0, "renewed_at": 20.0, "expires_at": 80.0}, now=100.0
    )
    clean = _monitor(
        {"holder": "monitor@h:1", "acquired_at": 10.0, "renewed_at": 20.0, "expires_at": 20.0}, now=100.0
    )
    assert crashed["state"] == "stopped (lease expired)"
    assert clean["state"] == "stopped (last run completed)"
    base = {"control_table": "t", "control_version": 1, "applied_control_version": 1, "lag_versions": 0,
            "last_good_cycle_at": None, "rejected_files": {}, "modules": []}  # fmt: skip
    assert "Monitor: STOPPED" in render_status({**base, "monitor": crashed})
    assert "Monitor: not running; its last run (monitor@h:1) completed" in render_status(
        {**base, "monitor": clean}
    )


def test_ctrl_c_is_a_normal_stop_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    from lakeflow_job_meta.engine.monitor import install_signal_handlers

    class Stoppable:
        stopped = False

        def stop(self) -> None:
            self.stopped = True

    monitor = Stoppable()
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        install_signal_handlers(monitor)  # type: ignore[arg-type]
        with caplog.at_level(logging.INFO, logger="lakeflow_job_meta"):
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])
    assert monitor.stopped
    (record,) = [r for r in caplog.records if "received SIGINT" in r.getMessage()]
    assert record.levelno == logging.INFO


def test_messages_a_new_user_can_act_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("modules:\n  - module_name: m\n\tsources: []\n", encoding="utf-8")
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "modules:\n  - module_name: m\n    sources:\n      - source_id: s\n        source_type: x\n"
        "        execution_order: 1\n        transformation_config: {task_type: notebok, notebook_path: /Workspace/n}\n",
        encoding="utf-8",
    )
    code, out, _ = run_cli(capsys, "validate", str(tabs), str(typo), "--json")
    assert code == 1
    messages = [e["message"] for e in json.loads(out)["errors"]]
    assert any(m.endswith("YAML does not allow tabs for indentation, use spaces") for m in messages), messages
    assert any(m.endswith("got the string \"notebok\" (did you mean 'notebook'?)") for m in messages), (
        messages
    )


def test_sizes_read_as_people_read_them() -> None:
    assert human_size(200) == "200 bytes"
    assert human_size(1024 * 1024) == "1 MiB"
    assert human_size(64 * 1024) == "64 KiB"
    assert human_size(2_000_012) == "1.9 MiB (2000012 bytes)"

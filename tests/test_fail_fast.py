"""Fail fast and clearly: before planning against a workspace, one cheap authenticated call.
An unreachable host, refused credentials or a missing permission end within 30 s with one line
naming the host (never the token) and exit 2; no plan is printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeflow_job_meta.cli.main import main
from tests.emulator import Fault, JobsEmulator
from tests.example_files import EXAMPLES, REPO

pytest.importorskip("deltalake")

TOKEN = "dapi-FAILFAST-0123456789abcdef"
DEAD_HOST = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    table = str(tmp_path_factory.mktemp("t") / "etl_control")
    assert main(["load", str(EXAMPLES), "--control-table", table]) == 0
    return table


def test_plan_and_apply_against_an_unreachable_host_exit_2_within_30_s(loaded: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "HOME": str(tmp_path),
            "DATABRICKS_HOST": DEAD_HOST,
            "DATABRICKS_TOKEN": TOKEN,
        }
    )
    started = time.monotonic()
    children = {
        command: subprocess.Popen(
            [sys.executable, "-m", "lakeflow_job_meta", command, "--control-table", loaded, "--target", "workspace"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )
        for command in ("plan", "apply")
    }  # fmt: skip
    for command, child in children.items():
        out, err = child.communicate(timeout=60)
        elapsed = time.monotonic() - started
        assert child.returncode == 2, (command, out, err)
        assert elapsed < 30, f"{command} took {elapsed:.1f} s"
        assert out == ""  # no plan it could not compute
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == [f"error: cannot reach the Databricks workspace {DEAD_HOST}: connection refused"], err
        assert TOKEN not in err


def test_refused_credentials_exit_2_naming_the_host(
    loaded: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with JobsEmulator(token="the-right-token") as emu:
        url = emu.url
        monkeypatch.setenv("DATABRICKS_HOST", url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        started = time.monotonic()
        assert main(["plan", "--control-table", loaded, "--target", "workspace"]) == 2
        assert time.monotonic() - started < 30
        assert emu.writes() == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: the Databricks workspace {url} refused the credentials: ")
    assert err.count("\n") == 1 and TOKEN not in err


def test_missing_permission_exit_2(
    loaded: str,
    jobs_emulator: JobsEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jobs_emulator.faults.add(Fault(endpoint="jobs/list", kind="403", times=None))
    monkeypatch.setenv("DATABRICKS_HOST", jobs_emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    assert main(["apply", "--control-table", loaded, "--target", "workspace"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"error: no permission to list jobs in the Databricks workspace {jobs_emulator.url}: "
    )
    assert jobs_emulator.writes() == 0 and TOKEN not in err

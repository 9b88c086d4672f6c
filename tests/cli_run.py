"""Run the CLI in-process and capture what it printed, or as a real ``python -m`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta.cli.main import main
from tests.example_files import REPO


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``lakeflow-job-meta ARGV``."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def emulated_workspace(monkeypatch: pytest.MonkeyPatch, emulator: object, tmp_path: Path) -> tuple[Path, str]:
    """Point the CLI at the Jobs API emulator (as a user would: environment variables) from
    ``tmp_path``; returns an empty volume folder and a local control table path there."""
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-test-0123456789abcdef")
    monkeypatch.chdir(tmp_path)
    volume = tmp_path / "volume"
    volume.mkdir()
    return volume, str(tmp_path / "etl_control")


def run_subprocess(*argv: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    full_env.update({"PYTHONPATH": str(REPO), "HOME": str(cwd), "NO_COLOR": "1"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lakeflow_job_meta", *argv],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

"""Run the CLI in-process and capture what it printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.cli.main import main


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

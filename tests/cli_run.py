"""Run the CLI in-process and capture what it printed."""

from __future__ import annotations

import pytest

from lakeflow_job_meta.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``lakeflow-job-meta ARGV``."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err

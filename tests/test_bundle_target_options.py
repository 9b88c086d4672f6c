"""What the bundle target cannot do, it says: an option that cannot apply to it (``--auto-run``,
``status --runs``) is a usage error naming why (exit 2), never silently ignored, and refused
before anything is written; the no-policy warning is said once per control table; a bundle run
counts the files it wrote, not job writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from tests.cli_run import run_cli
from tests.example_files import EXAMPLES_DIR

pytest.importorskip("deltalake")

EXAMPLES = str(EXAMPLES_DIR / "metadata_examples.yaml")
WARNING = "warning: no policy given (--policy): every run_as identity, code path and permission is allowed"


@pytest.fixture
def table(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    ctl = str(tmp_path / "ctl")
    (tmp_path / "m.yaml").write_text(Path(EXAMPLES).read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli(capsys, "load", str(tmp_path / "m.yaml"), "--control-table", ctl)[0] == 0
    return ctl


def test_apply_auto_run_on_a_bundle_is_a_usage_error(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "apply", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}", "--auto-run"
    )
    assert code == 2 and out == ""
    assert "error: auto-run cannot apply to the bundle target" in err and "databricks bundle deploy" in err
    assert not (tmp_path / "b").exists()  # refused before anything is written


def test_monitor_auto_run_on_a_bundle_is_refused_at_start(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "monitor", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}", "--once", "--auto-run"
    )  # fmt: skip
    assert code == 2 and "auto-run cannot apply to the bundle target" in err


def test_run_all_modules_auto_run_on_a_bundle_raises(table: str, tmp_path: Path) -> None:
    from lakeflow_job_meta import JobOrchestrator

    orchestrator = JobOrchestrator(table, target=f"bundle:{tmp_path / 'b'}")
    with pytest.raises(ConfigurationError, match="auto-run cannot apply to the bundle target"):
        orchestrator.run_all_modules(auto_run=True)
    assert not (tmp_path / "b").exists()
    assert orchestrator.run_all_modules().ok  # without auto_run the same call applies


def test_status_runs_on_a_bundle_only_table_says_why(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, "apply", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}")[0] == 0
    code, out, err = run_cli(capsys, "status", "--control-table", table, "--runs")
    assert code == 2 and out == ""
    assert (
        f"--runs reads each job's latest run from a workspace, and the jobs of {table} are only in bundle folders"
        in err
    )
    assert "authentication" not in err.lower()
    assert run_cli(capsys, "status", "--control-table", table)[0] == 0  # without --runs: fine


def test_the_no_policy_warning_is_said_once_per_table_for_a_bundle(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"bundle:{tmp_path / 'b'}"
    first = run_cli(capsys, "plan", "--control-table", table, "--target", target)[2]
    assert WARNING in first.splitlines()
    for command in ("plan", "apply", "plan"):
        assert (
            "no policy given" not in run_cli(capsys, command, "--control-table", table, "--target", target)[2]
        )
    # Another control table has not been told yet.
    other = str(tmp_path / "other")
    assert run_cli(capsys, "load", EXAMPLES, "--control-table", other)[0] == 0
    assert (
        WARNING
        in run_cli(capsys, "plan", "--control-table", other, "--target", f"bundle:{tmp_path / 'c'}")[2]
    )


def test_a_bundle_apply_and_monitor_count_files_not_job_writes(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"bundle:{tmp_path / 'b'}"
    code, out, _ = run_cli(capsys, "apply", "--control-table", table, "--target", target)
    assert code == 0 and "Apply complete: 5 created; 6 bundle file(s) written." in out
    assert "job write(s)" not in out
    metadata = tmp_path / "m.yaml"
    text = (
        Path(EXAMPLES).read_text(encoding="utf-8").replace("timeout_seconds: 7200", "timeout_seconds: 3600")
    )
    metadata.write_text(text, encoding="utf-8")
    assert run_cli(capsys, "load", str(metadata), "--control-table", table)[0] == 0
    code, _, err = run_cli(capsys, "monitor", "--control-table", table, "--target", target, "--once")
    assert code == 0
    (cycle,) = [line for line in err.splitlines() if "module(s) checked" in line]
    assert "1 bundle file(s) written" in cycle and "sales_daily=update" in cycle and "job write" not in cycle

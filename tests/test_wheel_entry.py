"""The wheel entry point ``lakeflow-job-meta-monitor`` (``python_wheel_task``): its ``--help``,
the required ``control_table`` inside the Databricks Runtime, and empty parameters refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.main import PARAMETERS, help_text, main, translate_parameters

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_parameter_and_examples() -> None:
    text = help_text()
    for parameter in PARAMETERS:
        assert f"  --{parameter.name}=" in text
        assert parameter.help in text
    assert "\nExamples:\n" in text


@pytest.mark.slow
def test_help_runs_as_a_process_and_exits_0(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env["PYTHONPATH"] = str(REPO)
    for flag in ("--help", "-h"):
        proc = subprocess.run(
            [sys.executable, "-m", "lakeflow_job_meta.main", flag],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: lakeflow-job-meta-monitor --control_table=")
        assert proc.stderr == ""
    assert list(tmp_path.iterdir()) == []  # help creates no default table


def test_control_table_is_required_inside_databricks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    with pytest.raises(SystemExit) as raised:
        main(["--once=true"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: control_table is required (catalog.schema.table); it is empty or missing\n"
    assert list(tmp_path.iterdir()) == []


def test_outside_databricks_the_local_default_still_applies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("deltalake")
    monkeypatch.chdir(tmp_path)
    # No control table off Databricks: the embedded default; one clean cycle on it.
    assert main(["--once=true", "--target=bundle:b"]) == 0
    assert (tmp_path / ".lakeflow_job_meta").is_dir()


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["--control_table="], "control_table"),
        (["--control_table=  ", "--once=true"], "control_table"),
        (["--control_table=./ctl", "--volume_path=", "--once=true"], "volume_path"),
        (["--control_table=./ctl", "--policy=", "--once=true"], "policy"),
        (["--control_table=./ctl", "--target=", "--once=true"], "target"),
        (["--control_table=./ctl", "--once="], "once"),
    ],
)
@pytest.mark.parametrize("runtime", [False, True])
def test_an_empty_parameter_is_a_usage_error_never_a_default(
    argv: list[str],
    name: str,
    runtime: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Before: ``--control_table=`` ran the monitor on the local default table (and its default
    bundle folder), ``--policy=`` ran it without a policy. Now exit 2 naming the parameter, and
    nothing is created."""
    monkeypatch.chdir(tmp_path)
    if runtime:
        monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    else:
        monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: parameter {name} is empty;") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_empty_max_iterations_still_means_run_forever() -> None:
    """The one documented empty value (examples/monitor_bundle passes ``max_iterations: ""``)."""
    assert translate_parameters(["--control_table=t", "--max_iterations="]) == [
        "monitor",
        "--control-table=t",
    ]
    with pytest.raises(ConfigurationError, match="parameter volume_path is empty"):
        translate_parameters(["--control_table=t", "--volume_path="])

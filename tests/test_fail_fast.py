"""Fail fast and clearly: before planning against a workspace, one cheap authenticated call.
An unreachable host, refused credentials or a missing permission end within 30 s with one line
naming the host (never the token) and exit 2; no plan is printed. "Within 30 s" is counted on
the injected clock: the waits the CLI and its SDK client would make add up to less."""

from __future__ import annotations

import pytest

from lakeflow_job_meta.cli.main import main
from tests.emulator import Fault, JobsEmulator
from tests.example_files import EXAMPLES
from tests.fakes import FakeClock

pytest.importorskip("deltalake")
pytestmark = pytest.mark.emulator

TOKEN = "dapi-FAILFAST-0123456789abcdef"
DEAD_HOST = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> str:
    table = str(tmp_path_factory.mktemp("t") / "etl_control")
    assert main(["load", str(EXAMPLES), "--control-table", table]) == 0
    return table


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_against_an_unreachable_host_exit_2_within_30_s(
    command: str, loaded: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", DEAD_HOST)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    clock = FakeClock()  # every wait of the CLI and its SDK client, recorded instead of slept
    assert main([command, "--control-table", loaded, "--target", "workspace"], clock=clock) == 2
    assert sum(clock.sleeps) < 30, clock.sleeps
    out, err = capsys.readouterr()
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
        clock = FakeClock()
        assert main(["plan", "--control-table", loaded, "--target", "workspace"], clock=clock) == 2
        assert clock.sleeps == []  # refused at once: nothing retried
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

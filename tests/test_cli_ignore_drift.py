"""Per-field drift exceptions (issue 17, item 3), through the CLI against the Jobs API emulator:
a field listed under ``ignore_drift`` is the UI's: a live change of it is neither reported nor
restored, and a reset made for another reason keeps its live value. Paths are validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import emulated_workspace, run_cli

pytest.importorskip("deltalake")

SCHEDULE = '    schedule: {quartz_cron_expression: "0 0 1 * * ?", timezone_id: UTC, pause_status: UNPAUSED}\n'


def module_yaml(ignore: str, *source_ids: str) -> str:
    sources = "".join(
        f"      - source_id: {sid}\n        source_type: x\n        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/{sid}}}\n"
        for sid in source_ids
    )
    return (
        "modules:\n  - module_name: nightly\n"
        + SCHEDULE
        + "    max_concurrent_runs: 1\n"
        + "    tags: {team: data}\n"
        + (f"    ignore_drift: {ignore}\n" if ignore else "")
        + f"    sources:\n{sources}"
    )


@pytest.fixture
def ws(jobs_emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    volume, ctl = emulated_workspace(monkeypatch, jobs_emulator, tmp_path)

    def load(text: str) -> None:
        (volume / "m.yaml").write_text(text)
        code, _, err = run_cli(capsys, "load", str(volume), "--control-table", ctl, "--sync")
        assert code == 0, err

    def cli(command: str, *argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, command, "--control-table", ctl, "--target", "workspace", *argv)

    return load, cli


def _ui_edit(settings: dict) -> None:
    settings["schedule"]["pause_status"] = "PAUSED"
    settings["max_concurrent_runs"] = 5
    settings["tags"]["team"] = "ui"


def test_ignored_fields_are_neither_reported_nor_restored(ws, jobs_emulator) -> None:
    load, cli = ws
    load(module_yaml("[schedule.pause_status, max_concurrent_runs, tags.team]", "a1"))
    assert cli("apply")[0] == 0
    (job_id,) = jobs_emulator.jobs()
    jobs_emulator.edit_job(job_id, _ui_edit)

    code, out, err = cli("plan", "--json")
    assert code == 0, err
    (change,) = json.loads(out)["changes"]
    assert (change["action"], change["drift"], change["diff"]) == ("noop", False, [])
    before = jobs_emulator.writes()
    code, out, err = cli("apply")
    assert code == 0, err
    assert jobs_emulator.writes() == before

    # A metadata change resets the job once and keeps the UI's values of the ignored fields.
    load(module_yaml("[schedule.pause_status, max_concurrent_runs, tags.team]", "a1", "a2"))
    code, out, err = cli("plan")
    assert code == 0, err
    assert "max_concurrent_runs" not in out and "pause_status" not in out
    assert cli("apply")[0] == 0
    assert jobs_emulator.writes("jobs/reset") == 1
    settings = jobs_emulator.job(job_id)["settings"]
    assert settings["schedule"]["pause_status"] == "PAUSED"
    assert settings["max_concurrent_runs"] == 5
    assert settings["tags"]["team"] == "ui"
    assert {t["task_key"] for t in settings["tasks"]} == {"a1", "a2"}


def test_without_ignore_drift_the_same_edit_is_restored(ws, jobs_emulator) -> None:
    load, cli = ws
    load(module_yaml("", "a1"))
    assert cli("apply")[0] == 0
    (job_id,) = jobs_emulator.jobs()
    jobs_emulator.edit_job(job_id, _ui_edit)
    _code, out, _ = cli("plan")
    assert "[drift]" in out and "max_concurrent_runs" in out
    assert cli("apply")[0] == 0
    settings = jobs_emulator.job(job_id)["settings"]
    assert (settings["schedule"]["pause_status"], settings["max_concurrent_runs"]) == ("UNPAUSED", 1)


def test_unknown_path_is_an_error_with_file_line_field_and_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(module_yaml("[max_concurrent_runs, schedule.pause_stauts, tags.ljm_module, tasks]", "a1"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert (
        f"{path}:6: modules[0].ignore_drift[1]: unknown job-settings path 'schedule.pause_stauts'; "
        "did you mean 'schedule.pause_status'?"
    ) in out
    assert f"{path}:6: modules[0].ignore_drift[2]: 'tags.ljm_module' is an ownership tag" in out
    assert f"{path}:6: modules[0].ignore_drift[3]: 'tasks' is the tool's own" in out
    assert "ignore_drift[0]" not in out

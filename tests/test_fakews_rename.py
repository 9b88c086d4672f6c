"""Rename on Databricks' own fake workspace (issue 17, item 1 acceptance): a module with a
schedule renamed with ``renamed_from`` keeps its job id with one write, no create and no pause,
through the workspace target; and a bundle the tool wrote, deployed with the Databricks CLI,
renamed and deployed again, updates the same job. Part of the ``fakews`` lane."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_run import run_cli
from tests.fakews import DATABRICKS_CLI, FakeWorkspace, missing_tools

pytest.importorskip("deltalake")

pytestmark = [
    pytest.mark.fakews,
    pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools())),
]

SCHEDULE = '    schedule: {quartz_cron_expression: "0 0 1 * * ?", timezone_id: UTC}\n'


def document(name: str, renamed_from: str | None = None) -> str:
    return (
        f"modules:\n  - module_name: {name}\n"
        + SCHEDULE
        + (f"    renamed_from: [{renamed_from}]\n" if renamed_from else "")
        + "    sources:\n      - source_id: s1\n        source_type: x\n        execution_order: 1\n"
        "        transformation_config: {task_type: notebook, notebook_path: /Workspace/nb/s1}\n"
    )


@pytest.fixture
def env(fakews: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    token = fakews.new_token()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_HOST", fakews.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", token)
    return {"DATABRICKS_HOST": fakews.url, "DATABRICKS_TOKEN": token}


def _project(tmp_path: Path) -> tuple[Path, str]:
    volume = tmp_path / "volume"
    volume.mkdir()
    return volume, str(tmp_path / "etl_control")


def _load(capsys: pytest.CaptureFixture[str], volume: Path, ctl: str, text: str) -> None:
    (volume / "m.yaml").write_text(text)
    code, _, err = run_cli(capsys, "load", str(volume), "--control-table", ctl, "--sync")
    assert code == 0, err


def _job_ids(fakews: FakeWorkspace, token: str) -> dict[str, int]:
    return {j.settings.name: j.job_id for j in fakews.client(token).jobs.list()}


def test_workspace_rename_is_one_reset_of_the_same_job(
    fakews: FakeWorkspace, env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    volume, ctl = _project(tmp_path)
    _load(capsys, volume, ctl, document("nightly_sales"))
    assert run_cli(capsys, "apply", "--control-table", ctl, "--target", "workspace")[0] == 0
    (job_id,) = _job_ids(fakews, env["DATABRICKS_TOKEN"]).values()

    _load(capsys, volume, ctl, document("sales_nightly", renamed_from="nightly_sales"))
    mark = fakews.mark()
    code, out, err = run_cli(capsys, "--json", "apply", "--control-table", ctl, "--target", "workspace")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert (result["action"], result["job_id"]) == ("rename", job_id)
    writes = fakews.writes(mark)
    assert [w.path for w in writes] == ["/api/2.2/jobs/reset"]
    assert _job_ids(fakews, env["DATABRICKS_TOKEN"]) == {"sales_nightly": job_id}


def test_bundle_rename_deploys_onto_the_same_job(
    fakews: FakeWorkspace, env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    volume, ctl = _project(tmp_path)
    bundle = tmp_path / "bundle"
    home = tmp_path / "cli_home"
    home.mkdir()
    cli_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DATABRICKS_BUNDLE_ENGINE": "direct",
        **env,
    }

    def export_and_deploy() -> None:
        code, _, err = run_cli(capsys, "export-bundle", "--control-table", ctl, "--output", str(bundle))
        assert code == 0, err
        proc = subprocess.run(
            [str(DATABRICKS_CLI), "bundle", "deploy"], cwd=bundle, env=cli_env, capture_output=True, text=True
        )
        assert proc.returncode == 0, (proc.stdout, proc.stderr)

    _load(capsys, volume, ctl, document("nightly_sales"))
    export_and_deploy()
    (job_id,) = _job_ids(fakews, env["DATABRICKS_TOKEN"]).values()
    _load(capsys, volume, ctl, document("sales_nightly", renamed_from="nightly_sales"))
    export_and_deploy()
    assert _job_ids(fakews, env["DATABRICKS_TOKEN"]) == {"sales_nightly": job_id}

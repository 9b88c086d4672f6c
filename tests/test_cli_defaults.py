"""A file's ``defaults:`` block (issue 17, item 4), through the CLI: merged under every module
of the file (job settings) and every task (``tasks:``), the module's or task's own value winning,
shown resolved by ``validate --show`` and by ``plan``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import emulated_workspace, run_cli

pytest.importorskip("deltalake")


def document(retries: int = 2) -> str:
    return f"""\
defaults:
  max_concurrent_runs: 1
  tags: {{team: data, cost_center: "42"}}
  email_notifications: {{on_failure: [oncall@example.com]}}
  tasks:
    max_retries: {retries}
    timeout_seconds: 3600
modules:
  - module_name: sales
    max_concurrent_runs: 3
    tags: {{team: sales}}
    sources:
      - source_id: s1
        source_type: x
        execution_order: 1
        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/s1, max_retries: 0}}
  - module_name: ml
    sources:
      - source_id: m1
        source_type: x
        execution_order: 1
        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/m1}}
"""


def test_validate_show_prints_every_module_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(document())
    code, out, err = run_cli(capsys, "validate", "--show", "--json", str(path))
    assert code == 0, err
    modules = {m["module_name"]: m for m in json.loads(out)["modules"]}
    sales, ml = modules["sales"], modules["ml"]
    assert sales["max_concurrent_runs"] == 3 and ml["max_concurrent_runs"] == 1  # own value wins
    assert sales["tags"] == {"team": "sales", "cost_center": "42"}  # mappings merge key by key
    assert ml["tags"] == {"team": "data", "cost_center": "42"}
    assert ml["email_notifications"] == {"on_failure": ["oncall@example.com"]}
    (s1,) = sales["sources"]
    (m1,) = ml["sources"]
    assert (s1["transformation_config"]["max_retries"], s1["transformation_config"]["timeout_seconds"]) == (
        0,
        3600,
    )
    assert (m1["transformation_config"]["max_retries"], m1["transformation_config"]["timeout_seconds"]) == (
        2,
        3600,
    )

    code, out, err = run_cli(capsys, "validate", "--show", str(path))
    assert code == 0, err
    assert f"# {path}" in out and "module_name: ml" in out and "max_retries: 2" in out
    assert "valid: 1 file(s)" in out


def test_a_bad_default_is_reported_once_at_the_defaults_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(document().replace("  tasks:\n    max_retries: 2", "  tasks:\n    max_retries: many"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert f"{path}:6: defaults.tasks.max_retries: must be an integer >= -1" in out
    assert "modules[" not in out  # not again in every module
    path.write_text(document().replace("  max_concurrent_runs: 1\n", "  max_retries: 1\n", 1))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1 and f"{path}:2: defaults: unknown field 'max_retries'" in out


def test_defaults_reach_the_jobs_and_plan_shows_their_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs_emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, ctl = emulated_workspace(monkeypatch, jobs_emulator, tmp_path)
    (volume / "m.yaml").write_text(document())
    assert run_cli(capsys, "load", str(volume), "--control-table", ctl, "--sync")[0] == 0
    assert run_cli(capsys, "apply", "--control-table", ctl, "--target", "workspace")[0] == 0
    by_name = {j["settings"]["name"]: j["settings"] for j in jobs_emulator.jobs().values()}
    assert by_name["ml"]["tasks"][0]["max_retries"] == 2
    assert by_name["ml"]["tags"]["cost_center"] == "42"

    (volume / "m.yaml").write_text(document(retries=5))
    assert run_cli(capsys, "load", str(volume), "--control-table", ctl, "--sync")[0] == 0
    code, out, err = run_cli(capsys, "plan", "--control-table", ctl, "--target", "workspace", "--json")
    assert code == 0, err
    changes = {c["module"]: c for c in json.loads(out)["changes"]}
    assert changes["sales"]["action"] == "noop"  # its task sets max_retries itself
    assert changes["ml"]["action"] == "update"
    assert any("max_retries" in d["path"] for d in changes["ml"]["diff"])


def test_variables_reach_the_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    text = document().replace("defaults:\n", "variables:\n  team: {default: data}\ndefaults:\n", 1)
    path.write_text(text.replace("tags: {team: data,", "tags: {team: '${var.team}',"))
    code, out, err = run_cli(capsys, "validate", "--show", "--json", "--var", "team=ops", str(path))
    assert code == 0, err
    modules = {m["module_name"]: m for m in json.loads(out)["modules"]}
    assert modules["ml"]["tags"]["team"] == "ops"

"""Stable identity and rename (issue 17, item 1), through the CLI: a module that lists its old
name under ``renamed_from`` takes over the old name's job with one reset (same job id, its run
history kept), on the workspace target (Jobs API emulator) and the bundle target (the resource
key stays the same, so ``bundle deploy`` keeps the job). A rename never pauses, never counts
against the blast-radius limit, and a rename whose old job is not ours is a conflict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli_run import emulated_workspace, run_cli

pytest.importorskip("deltalake")

SCHEDULE = '    schedule: {quartz_cron_expression: "0 0 1 * * ?", timezone_id: UTC}\n'


def module_yaml(name: str, source_id: str, renamed_from: str | None = None, extra: str = "") -> str:
    return (
        f"  - module_name: {name}\n"
        + SCHEDULE
        + extra
        + (f"    renamed_from: [{renamed_from}]\n" if renamed_from else "")
        + f"    sources:\n      - source_id: {source_id}\n        source_type: x\n        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/{source_id}}}\n"
    )


class Project:
    def __init__(self, capsys: pytest.CaptureFixture[str], volume: Path, ctl: str, target: str):
        self.capsys, self.volume, self.ctl, self.target = capsys, volume, ctl, target

    def load(self, *modules: str) -> None:
        (self.volume / "m.yaml").write_text("modules:\n" + "".join(modules))
        code, _, err = run_cli(self.capsys, "load", str(self.volume), "--control-table", self.ctl, "--sync")
        assert code == 0, err

    def cli(self, command: str, *argv: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, command, "--control-table", self.ctl, "--target", self.target, *argv)


@pytest.fixture
def ws(
    capsys: pytest.CaptureFixture[str], jobs_emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Project:
    volume, ctl = emulated_workspace(monkeypatch, jobs_emulator, tmp_path)
    return Project(capsys, volume, ctl, "workspace")


def test_rename_keeps_the_job_with_one_reset(
    ws: Project, jobs_emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.load(module_yaml("nightly_sales", "s1"), module_yaml("other", "o1"))
    assert ws.cli("apply")[0] == 0
    (job_id,) = jobs_emulator.job_ids("nightly_sales")
    jobs_emulator.reset_counters()

    ws.load(module_yaml("sales_nightly", "s1", renamed_from="nightly_sales"), module_yaml("other", "o1"))
    code, out, err = ws.cli("plan", "--json")
    assert code == 0, err
    changes = {c["module"]: c for c in json.loads(out)["changes"]}
    assert set(changes) == {"sales_nightly", "other"}  # the old name is not planned as removed
    assert (changes["sales_nightly"]["action"], changes["sales_nightly"]["job_id"]) == ("update", job_id)
    assert "renamed from nightly_sales" in changes["sales_nightly"]["reason"]
    code, out, _ = ws.cli("plan")
    assert "Plan: 0 to create, 1 to update, 0 to delete/pause, 1 unchanged." in out

    code, out, err = ws.cli("apply")
    assert code == 0, err
    assert f"~ sales_nightly: rename (job {job_id}) (renamed from nightly_sales)" in out
    assert jobs_emulator.writes() == 1 and jobs_emulator.writes("jobs/reset") == 1
    assert jobs_emulator.writes("jobs/create") == 0 and jobs_emulator.writes("jobs/update") == 0
    settings = jobs_emulator.job(job_id)["settings"]
    assert settings["name"] == "sales_nightly"
    assert settings["tags"]["ljm_module"] == "sales_nightly"
    assert settings["schedule"].get("pause_status", "UNPAUSED") == "UNPAUSED"
    assert len(jobs_emulator.jobs()) == 2

    code, out, _ = run_cli(capsys, "history", "--control-table", ws.ctl, "--json")
    rows = {(r["module_name"], r["action"], r["error"]) for r in json.loads(out)["history"]}
    assert {
        ("sales_nightly", "rename", "renamed from nightly_sales"),
        ("nightly_sales", "rename", "renamed to sales_nightly"),
    } <= rows
    code, out, _ = run_cli(capsys, "history", "--control-table", ws.ctl, "--module", "nightly_sales")
    assert "nightly_sales: rename ok" in out and "renamed to sales_nightly" in out and "error" not in out

    before = jobs_emulator.writes()
    code, out, _ = ws.cli("apply")
    assert code == 0 and jobs_emulator.writes() == before
    assert "Apply complete: 2 unchanged; 0 job write(s)" in out

    code, out, _ = run_cli(capsys, "status", "--control-table", ws.ctl)
    assert "nightly_sales (renamed to sales_nightly)" in out
    assert "orphaned" not in out and "error" not in out


def test_renames_never_count_against_the_blast_radius(ws: Project, jobs_emulator) -> None:
    names = ("a", "b", "c")
    ws.load(*(module_yaml(n, f"{n}1") for n in names))
    assert ws.cli("apply")[0] == 0
    ids = {n: jobs_emulator.job_ids(n)[0] for n in names}
    ws.load(*(module_yaml(f"{n}_renamed", f"{n}1", renamed_from=n) for n in names))
    code, _out, err = ws.cli("apply")
    assert code == 0, err  # three of three jobs "removed" would be held back; renames are not
    assert {jobs_emulator.job_ids(f"{n}_renamed")[0] for n in names} == set(ids.values())
    assert jobs_emulator.writes("jobs/create") == 3 and jobs_emulator.writes("jobs/update") == 0


def test_a_rename_whose_old_job_is_not_ours_is_a_conflict(
    ws: Project, jobs_emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.load(module_yaml("nightly_sales", "s1"))
    assert ws.cli("apply")[0] == 0
    (job_id,) = jobs_emulator.job_ids("nightly_sales")
    jobs_emulator.edit_job(job_id, {"tags": {"owner": "someone"}})  # someone took the job over
    jobs_emulator.reset_counters()

    ws.load(module_yaml("sales_nightly", "s1", renamed_from="nightly_sales"))
    code, out, _ = ws.cli("apply")
    assert code == 1
    assert "rename conflict" in out and f"job {job_id}" in out
    assert jobs_emulator.writes() == 0  # not reset, not adopted, and no new job either
    assert jobs_emulator.job(job_id)["settings"]["name"] == "nightly_sales"
    # The error is recorded on the old name's row; the new name claims no job it does not hold.
    code, out, _ = run_cli(capsys, "status", "--control-table", ws.ctl, "--json")
    modules = {m["module"]: m for m in json.loads(out)["modules"]}
    assert [t["job_id"] for t in modules["sales_nightly"]["targets"] if t["status"]] == []
    (old,) = modules["nightly_sales"]["targets"]
    assert old["status"] == "error" and "rename conflict" in old["last_error"]


def test_a_rename_that_failed_after_its_reset_is_finished_by_the_next_apply(
    ws: Project, jobs_emulator
) -> None:
    from tests.emulator.faults import Fault

    ws.load(module_yaml("nightly_sales", "s1"))
    assert ws.cli("apply")[0] == 0
    (job_id,) = jobs_emulator.job_ids("nightly_sales")
    grant = "    permissions: [{group_name: analysts, permission_level: CAN_VIEW}]\n"
    ws.load(module_yaml("sales_nightly", "s1", renamed_from="nightly_sales", extra=grant))
    # The reset lands, then the permissions write fails for good: the run stops halfway.
    jobs_emulator.faults.add(Fault(endpoint="permissions/jobs/*", kind=400, times=None, method="PUT"))
    assert ws.cli("apply")[0] == 1
    assert jobs_emulator.faults.fired_count() >= 1 and jobs_emulator.writes("jobs/reset") == 1
    jobs_emulator.faults.clear()
    code, out, err = ws.cli("apply")
    assert code == 0, (out, err)
    assert jobs_emulator.job_ids("sales_nightly") == [job_id]
    assert jobs_emulator.writes("jobs/create") == 1 and jobs_emulator.writes("jobs/update") == 0
    code, out, _ = ws.cli("plan", "--json")
    assert [(c["module"], c["action"]) for c in json.loads(out)["changes"]] == [("sales_nightly", "noop")]


def test_renamed_from_a_module_that_still_exists_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("modules:\n" + module_yaml("a", "a1") + module_yaml("b", "b1", renamed_from="a"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert f"{path}:11: modules[1].renamed_from[0]: module 'a' still exists" in out


# -- the bundle target ------------------------------------------------------------------------


def test_bundle_rename_keeps_the_resource_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    bundle = tmp_path / "bundle"
    project = Project(capsys, volume, str(tmp_path / "etl_control"), f"bundle:{bundle}")
    project.load(module_yaml("nightly_sales", "s1"), module_yaml("a", "a1"), module_yaml("b", "b1"))
    assert project.cli("apply")[0] == 0

    project.load(
        module_yaml("sales_nightly", "s1", renamed_from="nightly_sales"),
        module_yaml("a", "a1"),
        module_yaml("b", "b1"),
    )
    assert project.cli("apply", "--module", "a")[0] == 0  # the rename is not in scope: nothing moves
    assert (bundle / "resources" / "nightly_sales.job.yml").exists()
    assert not (bundle / "resources" / "sales_nightly.job.yml").exists()
    code, out, err = project.cli("plan", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert {c["module"]: c["action"] for c in plan["changes"] if c["action"] != "noop"} == {
        "sales_nightly": "update"
    }
    assert (plan["summary"]["create"], plan["summary"]["pause"], plan["summary"]["delete"]) == (0, 0, 0)

    code, out, err = project.cli("apply")
    assert code == 0, err
    assert "sales_nightly: rename" in out
    resources = bundle / "resources"
    assert not (resources / "nightly_sales.job.yml").exists()
    document = yaml.safe_load((resources / "sales_nightly.job.yml").read_text())
    ((key, job),) = document["resources"]["jobs"].items()
    assert key == "nightly_sales"  # the deployed job keeps its key, so its id and history
    assert job["name"] == "sales_nightly"
    assert job["schedule"].get("pause_status", "UNPAUSED") == "UNPAUSED"
    code, out, _ = project.cli("plan")
    assert "No changes" in out


def test_bundle_run_job_names_a_renamed_module_by_its_kept_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    bundle = tmp_path / "bundle"
    project = Project(capsys, volume, str(tmp_path / "etl_control"), f"bundle:{bundle}")
    umbrella = (
        "  - module_name: umbrella\n    sources:\n      - source_id: run_it\n        source_type: x\n"
        "        execution_order: 1\n        transformation_config:\n          task_type: run_job\n"
        "          run_job_task: {{module_name: {target}}}\n"
    )
    project.load(module_yaml("nightly_sales", "s1"), umbrella.format(target="nightly_sales"))
    assert project.cli("apply")[0] == 0
    project.load(
        module_yaml("sales_nightly", "s1", renamed_from="nightly_sales"),
        umbrella.format(target="sales_nightly"),
    )
    code, _, err = project.cli("apply")
    assert code == 0, err
    document = yaml.safe_load((bundle / "resources" / "umbrella.job.yml").read_text())
    (task,) = document["resources"]["jobs"]["umbrella"]["tasks"]
    assert task["run_job_task"]["job_id"] == "${resources.jobs.nightly_sales.id}"


def test_a_rename_onto_a_name_another_job_has_is_a_conflict(ws: Project, jobs_emulator) -> None:
    ws.load(module_yaml("nightly_sales", "s1"))
    assert ws.cli("apply")[0] == 0
    (job_id,) = jobs_emulator.job_ids("nightly_sales")
    other = jobs_emulator.add_job({"name": "sales_nightly", "tasks": []})
    jobs_emulator.reset_counters()
    ws.load(module_yaml("sales_nightly", "s1", renamed_from="nightly_sales"))
    code, out, _ = ws.cli("apply")
    assert code == 1
    assert f"rename conflict: 'sales_nightly' is already the name of job {other}" in out
    assert jobs_emulator.writes() == 0
    assert jobs_emulator.job(job_id)["settings"]["name"] == "nightly_sales"

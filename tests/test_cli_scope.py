"""Scoped and manual changes (issue 17, item 2), through the CLI against the Jobs API emulator
and the bundle target: ``plan/apply --module`` (globs), ``sync: manual`` held and recorded until
``apply --module`` names it, and ``plan --out`` / ``apply --plan`` refusing a plan that moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_run import run_cli

pytest.importorskip("deltalake")

TOKEN = "dapi-scope-0123456789abcdef"


def module_yaml(name: str, *source_ids: str, extra: str = "") -> str:
    sources = "".join(
        f"      - source_id: {sid}\n        source_type: x\n        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/{sid}}}\n"
        for sid in source_ids
    )
    return f"  - module_name: {name}\n{extra}    sources:\n{sources}"


@pytest.fixture
def workspace(jobs_emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("DATABRICKS_HOST", jobs_emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return jobs_emulator


class Setup:
    """A volume of three modules loaded into a local control table."""

    def __init__(self, capsys: pytest.CaptureFixture[str], tmp_path: Path):
        self.capsys = capsys
        self.volume = tmp_path / "volume"
        self.volume.mkdir()
        self.ctl = str(tmp_path / "etl_control")

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *argv)

    def write(self, name: str, text: str) -> None:
        (self.volume / f"{name}.yaml").write_text("modules:\n" + text)

    def load(self) -> None:
        code, _, err = self.cli("load", str(self.volume), "--control-table", self.ctl, "--sync")
        assert code == 0, err

    def ws(self, command: str, *argv: str) -> tuple[int, str, str]:
        return self.cli(command, "--control-table", self.ctl, "--target", "workspace", *argv)


@pytest.fixture
def setup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Setup:
    s = Setup(capsys, tmp_path)
    s.write("sales", module_yaml("sales_daily", "s1") + module_yaml("sales_weekly", "w1"))
    s.write("ml", module_yaml("ml_features", "f1"))
    s.load()
    return s


def ids_by_name(emulator) -> dict[str, int]:
    return {job["settings"]["name"]: job_id for job_id, job in emulator.jobs().items()}


def test_module_globs_touch_only_those_modules(setup: Setup, workspace) -> None:
    code, out, err = setup.ws("plan", "--module", "sales_*", "--json")
    assert code == 0, err
    assert {c["module"] for c in json.loads(out)["changes"]} == {"sales_daily", "sales_weekly"}

    code, out, err = setup.ws("apply", "--module", "sales_*")
    assert code == 0, err
    assert set(ids_by_name(workspace)) == {"sales_daily", "sales_weekly"}
    assert workspace.writes("jobs/create") == 2

    code, out, err = setup.ws("apply", "--module", "ml_features", "--module", "sales_daily")
    assert code == 0, err
    assert set(ids_by_name(workspace)) == {"sales_daily", "sales_weekly", "ml_features"}
    assert workspace.writes("jobs/create") == 3


def test_module_that_matches_nothing_is_a_usage_error(setup: Setup, workspace) -> None:
    code, _out, err = setup.ws("apply", "--module", "sales_dialy")
    assert code == 2
    assert "--module 'sales_dialy' matches no module" in err
    assert workspace.writes() == 0
    code, _, err = setup.ws("plan", "--module", "nothing_*")
    assert code == 2 and "matches no module" in err


def test_module_keeps_the_blast_radius_limit(setup: Setup, workspace) -> None:
    daily = '    schedule: {quartz_cron_expression: "0 0 1 * * ?", timezone_id: UTC}\n'
    setup.write(
        "sales", "".join(module_yaml(f"sales_{n}", n, extra=daily) for n in ("daily", "weekly", "monthly"))
    )
    setup.load()
    assert setup.ws("apply")[0] == 0
    (setup.volume / "sales.yaml").unlink()
    setup.load()
    code, out, err = setup.ws("apply", "--module", "sales_*")
    assert code == 1  # three of four jobs paused at once: held back, --module or not
    assert "held back" in out or "held" in err
    assert workspace.writes("jobs/update") == 0


def test_sync_manual_is_held_until_apply_module(setup: Setup, workspace) -> None:
    assert setup.ws("apply")[0] == 0
    ids = ids_by_name(workspace)
    setup.write("ml", module_yaml("ml_features", "f1", "f2", extra="    sync: manual\n"))
    setup.load()

    code, out, err = setup.ws("plan")
    assert code == 0, err
    assert "sync: manual: pending until `apply --module ml_features`" in out

    before = workspace.writes()
    code, out, err = setup.ws("apply")
    assert code == 0, err  # held, not failed
    assert "~ ml_features: update pending" in out
    assert "pending (sync: manual)" in out
    assert workspace.writes() == before

    code, out, err = setup.cli("status", "--control-table", setup.ctl)
    assert code == 0, err
    assert "OUT OF SYNC (sync: manual): update pending" in out
    assert "apply --module ml_features" in out
    assert "f2" in out  # the diff names the new task

    code, out, err = setup.ws("apply", "--module", "ml_*")
    assert code == 0, err
    assert workspace.writes("jobs/reset") == 1
    assert ids_by_name(workspace)["ml_features"] == ids["ml_features"]
    tasks = {t["task_key"] for t in workspace.job(ids["ml_features"])["settings"]["tasks"]}
    assert tasks == {"f1", "f2"}
    code, out, _ = setup.cli("status", "--control-table", setup.ctl)
    assert "OUT OF SYNC" not in out


def test_sync_manual_new_module_is_not_created_by_a_plain_apply(setup: Setup, workspace) -> None:
    setup.write("extra", module_yaml("by_hand", "h1", extra="    sync: manual\n"))
    setup.load()
    code, out, err = setup.ws("apply")
    assert code == 0, err
    assert "by_hand" not in ids_by_name(workspace)
    code, out, err = setup.cli("status", "--control-table", setup.ctl, "--json")
    module = next(m for m in json.loads(out)["modules"] if m["module"] == "by_hand")
    assert module["targets"][0]["pending"]["action"] == "create"


def test_plan_out_then_apply_plan(setup: Setup, workspace, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    code, _out, err = setup.ws("plan", "--out", str(plan_file))
    assert code == 0, err
    assert json.loads(plan_file.read_text())["format"] == "lakeflow-job-meta-plan/1"
    code, _out, err = setup.ws("apply", "--plan", str(plan_file))
    assert code == 0, err
    assert workspace.writes("jobs/create") == 3


def test_apply_plan_refuses_when_the_metadata_moved(setup: Setup, workspace, tmp_path: Path) -> None:
    assert setup.ws("apply")[0] == 0
    setup.write("ml", module_yaml("ml_features", "f1", "f2"))
    setup.load()
    plan_file = tmp_path / "plan.json"
    assert setup.ws("plan", "--out", str(plan_file))[0] == 0
    setup.write("ml", module_yaml("ml_features", "f1", "f3"))
    setup.load()
    before = workspace.writes()
    code, _out, err = setup.ws("apply", "--plan", str(plan_file))
    assert code == 1
    assert "ml_features: the metadata changed since the plan" in err
    assert workspace.writes() == before


def test_apply_plan_refuses_when_the_live_job_moved(setup: Setup, workspace, tmp_path: Path) -> None:
    assert setup.ws("apply")[0] == 0
    ids = ids_by_name(workspace)
    setup.write("ml", module_yaml("ml_features", "f1", "f2"))
    setup.load()
    plan_file = tmp_path / "plan.json"
    assert setup.ws("plan", "--out", str(plan_file))[0] == 0
    workspace.edit_job(ids["ml_features"], {"max_concurrent_runs": 7})
    before = workspace.writes()
    code, _out, err = setup.ws("apply", "--plan", str(plan_file))
    assert code == 1
    assert f"ml_features: live job {ids['ml_features']} was changed since the plan" in err
    assert workspace.writes() == before


def test_apply_plan_and_module_together_is_a_usage_error(setup: Setup, tmp_path: Path) -> None:
    code, _, err = setup.cli(
        "apply", "--control-table", setup.ctl, "--plan", str(tmp_path / "p.json"), "--module", "x"
    )
    assert code == 2 and "leave out --module" in err


def test_apply_plan_of_another_file_format_is_a_usage_error(setup: Setup, workspace, tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text("{}")
    code, _, err = setup.ws("apply", "--plan", str(bad))
    assert code == 2 and "not a plan written by `plan --out`" in err


# -- the bundle target ------------------------------------------------------------------------


def test_bundle_module_and_manual(setup: Setup, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    target = f"bundle:{bundle}"
    code, _, err = setup.cli(
        "apply", "--control-table", setup.ctl, "--target", target, "--module", "sales_daily"
    )
    assert code == 0, err
    assert sorted(p.name for p in (bundle / "resources").glob("*.job.yml")) == ["sales_daily.job.yml"]

    assert setup.cli("apply", "--control-table", setup.ctl, "--target", target)[0] == 0
    job_file = bundle / "resources" / "ml_features.job.yml"
    before = job_file.read_text()
    setup.write("ml", module_yaml("ml_features", "f1", "f2", extra="    sync: manual\n"))
    setup.load()
    code, out, err = setup.cli("apply", "--control-table", setup.ctl, "--target", target)
    assert code == 0, err
    assert "ml_features: update pending" in out
    assert job_file.read_text() == before

    plan_file = tmp_path / "plan.json"
    code, out, err = setup.cli(
        "plan",
        "--control-table",
        setup.ctl,
        "--target",
        target,
        "--module",
        "ml_features",
        "--out",
        str(plan_file),
    )
    assert code == 0, err
    code, out, err = setup.cli(
        "apply", "--control-table", setup.ctl, "--target", target, "--plan", str(plan_file)
    )
    assert code == 0, err
    assert "f2" in job_file.read_text()


# -- the monitor ------------------------------------------------------------------------------


def test_monitor_records_a_manual_change_and_applies_nothing(setup: Setup, workspace) -> None:
    code, _, err = setup.ws("monitor", "--once")
    assert code == 0, err
    ids = ids_by_name(workspace)
    assert set(ids) == {"sales_daily", "sales_weekly", "ml_features"}

    setup.write("ml", module_yaml("ml_features", "f1", "f2", extra="    sync: manual\n"))
    setup.load()
    before = workspace.writes()
    code, out, err = setup.ws("monitor", "--once", "--json")
    assert code == 0, err  # a held manual change is not a failure of the cycle
    report = json.loads(out)
    assert report["actions"]["ml_features"] == "update"
    assert workspace.writes() == before

    code, out, err = setup.cli("status", "--control-table", setup.ctl, "--json")
    assert code == 0, err
    module = next(m for m in json.loads(out)["modules"] if m["module"] == "ml_features")
    pending = module["targets"][0]["pending"]
    assert pending["action"] == "update" and pending["job_id"] == ids["ml_features"]
    assert any("f2" in line for line in pending["diff"])

    # A second cycle holds it again without writing the state anew, and still writes no job.
    assert setup.ws("monitor", "--once")[0] == 0
    assert workspace.writes() == before

    assert setup.ws("apply", "--module", "ml_features")[0] == 0
    assert workspace.writes("jobs/reset") == 1
    code, out, _ = setup.cli("status", "--control-table", setup.ctl, "--json")
    module = next(m for m in json.loads(out)["modules"] if m["module"] == "ml_features")
    assert module["targets"][0]["pending"] is None


def test_apply_plan_of_an_unscoped_plan_keeps_a_manual_change_pending(
    setup: Setup, workspace, tmp_path: Path
) -> None:
    assert setup.ws("apply")[0] == 0
    setup.write("ml", module_yaml("ml_features", "f1", "f2", extra="    sync: manual\n"))
    setup.load()
    everything, scoped = tmp_path / "all.json", tmp_path / "ml.json"
    assert setup.ws("plan", "--out", str(everything))[0] == 0
    assert setup.ws("plan", "--module", "ml_features", "--out", str(scoped))[0] == 0
    before = workspace.writes()
    code, out, err = setup.ws("apply", "--plan", str(everything))
    assert code == 0, err
    assert "ml_features: update pending" in out and workspace.writes() == before
    code, out, err = setup.ws("apply", "--plan", str(scoped))
    assert code == 0, err
    assert workspace.writes("jobs/reset") == 1


def test_bundle_apply_plan_touches_only_the_plans_modules(setup: Setup, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    target = f"bundle:{bundle}"
    assert setup.cli("apply", "--control-table", setup.ctl, "--target", target)[0] == 0
    setup.write("ml", module_yaml("ml_features", "f1", "f2"))
    setup.load()
    plan_file = tmp_path / "plan.json"
    assert (
        setup.cli("plan", "--control-table", setup.ctl, "--target", target, "--out", str(plan_file))[0] == 0
    )
    sales = bundle / "resources" / "sales_daily.job.yml"
    before = sales.read_text()
    setup.write("sales", module_yaml("sales_daily", "s1", "s2") + module_yaml("sales_weekly", "w1"))
    setup.load()  # a change the plan does not hold
    code, out, err = setup.cli(
        "apply", "--control-table", setup.ctl, "--target", target, "--plan", str(plan_file)
    )
    assert code == 0, (out, err)
    assert "f2" in (bundle / "resources" / "ml_features.job.yml").read_text()
    assert sales.read_text() == before

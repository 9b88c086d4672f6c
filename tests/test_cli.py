"""The ``lakeflow-job-meta`` command line, in-process (``main([...])`` with capsys) and as a real
``python -m lakeflow_job_meta`` subprocess.

The workspace target talks to the Jobs API emulator through the real SDK, configured only by
``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` in the environment, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.cli.main import main
from tests.cli_run import run_subprocess

pytest.importorskip("deltalake")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
EXAMPLE_MODULES = {
    "sales_daily",
    "ml_features",
    "warehouse_refresh",
    "nightly_umbrella",
    "clickstream_continuous",
}
TOKEN = "dapi-TOPSECRET-0123456789abcdef"


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]):
        self.capsys = capsys
        self.outputs: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(list(argv))
        captured = self.capsys.readouterr()
        self.outputs += [captured.out, captured.err]
        return rc, captured.out, captured.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(capsys)


def module_yaml(name: str, *source_ids: str) -> str:
    sources = "".join(
        f"      - source_id: {sid}\n        source_type: x\n        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/{sid}}}\n"
        for sid in source_ids
    )
    return f"  - module_name: {name}\n    sources:\n{sources}"


# -- validate ------------------------------------------------------------------------------------


def test_validate_ok(cli: Cli) -> None:
    rc, out, err = cli("validate", str(EXAMPLES))
    assert rc == 0
    assert err == ""  # the findings are validate's result: stdout
    assert "valid" in out and "1 file(s)" in out


def test_validate_lists_every_error_of_every_file(cli: Cli, tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(
        "modules:\n  - module_name: m1\n    schedual: {}\n    sources:\n"
        "      - source_id: s\n        source_type: x\n        execution_order: -1\n"
        "        transformation_config: {task_type: notebook, notebook_path: rel/path}\n"
    )
    b = tmp_path / "b.yaml"
    b.write_text("modules: [\n")
    rc, out, err = cli("validate", str(a), str(b))
    assert rc == 1
    assert err == ""
    assert f"{a}:3: modules[0]: unknown field 'schedual'" in out
    assert f"{a}:7: modules[0].sources[0].execution_order: must be an integer >= 0" in out
    assert f"{b}:" in out and "invalid YAML" in out
    assert "error(s) in 2 file(s)" in out
    assert "Traceback" not in out


def test_validate_json_shape(cli: Cli, tmp_path: Path) -> None:
    rc, out, _err = cli("validate", "--json", str(EXAMPLES))
    assert rc == 0
    assert json.loads(out) == {"valid": True, "files": [str(EXAMPLES)], "errors": []}

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "modules:\n  - module_name: m1\n    sources:\n      - source_id: s\n        source_type: x\n"
        "        execution_order: -1\n        transformation_config: {task_type: notebook, notebook_path: /n}\n"
    )
    rc, out, _ = cli("validate", "--json", str(bad), str(EXAMPLES))
    assert rc == 1
    doc = json.loads(out)
    assert doc["valid"] is False and doc["files"] == [str(bad), str(EXAMPLES)]
    assert doc["errors"] == [
        {
            "location": f"{bad}:6",
            "field": "modules[0].sources[0].execution_order",
            "message": "must be an integer >= 0, got -1",
        }
    ]


def test_validate_variables_and_environment(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(
        "variables:\n  root: {description: no default}\nenvironments:\n  dev: {mode: development}\n"
        "modules:\n  - module_name: m\n    sources:\n      - source_id: s\n        source_type: x\n"
        "        execution_order: 1\n"
        "        transformation_config: {task_type: notebook, notebook_path: '${var.root}/nb'}\n"
    )
    rc, out, _ = cli("validate", str(path))
    assert rc == 1 and "variable 'root' has no value" in out
    assert cli("validate", str(path), "--var", "root=/Workspace/x")[0] == 0
    rc, _, err = cli("validate", str(path), "--var", "root=/Workspace/x", "--env", "stage")
    assert rc == 2 and "environment 'stage' is not defined (dev)" in err  # usage: exit 2 everywhere


def test_validate_missing_path_is_one_line(cli: Cli, tmp_path: Path) -> None:
    rc, out, err = cli("validate", str(tmp_path / "nope.yaml"))
    assert rc == 2 and out == ""
    assert err.strip() == f"error: {tmp_path / 'nope.yaml'}: no such file or folder"


# -- load ----------------------------------------------------------------------------------------


def test_load_creates_the_tables_and_reload_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    from lakeflow_job_meta.storage import open_tables

    ctl = str(tmp_path / "t" / "etl_control")
    rc, out, err = cli("load", str(EXAMPLES), "--control-table", ctl)
    assert rc == 0, err
    assert "18 source row(s) written" in out
    tables = open_tables(ctl)
    assert tables.exists()
    versions = [t.version() for t in tables.all()]
    rc, out, err = cli("load", str(EXAMPLES), "--control-table", ctl, "--json")
    assert rc == 0
    (result,) = json.loads(out)["results"]
    assert result["sources_upserted"] == 0 and result["modules_upserted"] == 0
    assert [t.version() for t in tables.all()] == versions


def test_load_invalid_file_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    ctl = str(tmp_path / "etl_control")
    cli("load", str(EXAMPLES), "--control-table", ctl)
    from lakeflow_job_meta.storage import open_tables

    tables = open_tables(ctl)
    versions = [t.version() for t in tables.all()]
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules: [\n")
    rc, out, err = cli("load", str(bad), str(EXAMPLES), "--control-table", ctl)
    assert rc == 1 and out == ""
    assert err.startswith(f"error: {bad}:") and "invalid YAML" in err
    assert "Traceback" not in err
    assert [t.version() for t in tables.all()] == versions


def test_load_sync_deletes_rows_of_removed_files(cli: Cli, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "a.yaml").write_text("modules:\n" + module_yaml("ma", "a1"))
    (volume / "b.yaml").write_text("modules:\n" + module_yaml("mb", "b1"))
    ctl = str(tmp_path / "etl_control")
    assert cli("load", str(volume), "--control-table", ctl, "--sync")[0] == 0
    (volume / "b.yaml").unlink()
    rc, out, _ = cli("load", str(volume), "--control-table", ctl, "--sync")
    assert rc == 0 and "1 deleted" in out


# -- read-only commands on a missing table ------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--target", "bundle:out"),
        ("plan", "--target", "bundle:out", "--json"),
        ("status",),
        ("status", "--json"),
    ],
)
def test_read_only_command_on_missing_table_is_one_line(cli: Cli, tmp_path: Path, argv) -> None:
    ctl = tmp_path / "missing" / "etl_control"
    rc, out, err = cli(*argv, "--control-table", str(ctl))
    assert rc == 2  # a configuration error, as the docs say (issue 17)
    if "--json" in argv:  # stdout still holds exactly one document, saying what failed
        assert json.loads(out)["ok"] is False
    else:
        assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert errors == [
        f"error: table {ctl} does not exist (create it with `lakeflow-job-meta init`, or `load` YAML into it)"
    ]
    assert "Traceback" not in err
    assert not ctl.exists()  # nothing was created
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_debug_shows_the_traceback(cli: Cli, tmp_path: Path) -> None:
    from lakeflow_job_meta.errors import TableNotFoundError

    with pytest.raises(TableNotFoundError):
        main(["--debug", "status", "--control-table", str(tmp_path / "missing")])
    proc = run_subprocess("--debug", "status", "--control-table", str(tmp_path / "missing"), cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "TableNotFoundError" in proc.stderr


# -- plan/apply with the bundle target -----------------------------------------------------------


@pytest.fixture
def loaded(cli: Cli, tmp_path: Path) -> str:
    ctl = str(tmp_path / "tables" / "etl_control")
    rc, _, err = cli("load", str(EXAMPLES), "--control-table", ctl)
    assert rc == 0, err
    return ctl


def test_plan_and_apply_bundle(cli: Cli, loaded: str, tmp_path: Path) -> None:
    target = f"bundle:{tmp_path / 'out'}"
    rc, out, err = cli("plan", "--control-table", loaded, "--target", target)
    assert rc == 0
    assert err.strip().splitlines() == [
        f"target: bundle folder {tmp_path / 'out'} (local; no workspace is contacted)",
        # issue 9: without a policy every run says so, in one line
        "warning: no policy given (--policy): every run_as identity, code path and permission is allowed",
    ]
    # Terraform-like: one "+ create" block per module, then the summary line.
    for module in EXAMPLE_MODULES:
        assert f'  + create {module} "{module}"' in out
    # The inline SQL file of a new module is listed, as a workspace plan lists it.
    assert out.rstrip().endswith(
        "Plan: 5 to create, 0 to update, 0 to delete/pause, 0 unchanged. Files: 1 to write, 0 to delete."
    )
    assert not (tmp_path / "out").exists()  # plan writes nothing

    rc, out, err = cli("apply", "--control-table", loaded, "--target", target)
    assert rc == 0, err
    # issue 17: for a bundle folder the no-policy warning is said once per control table
    assert err.splitlines() == [
        f"target: bundle folder {tmp_path / 'out'} (local; no workspace is contacted)"
    ]
    assert "Apply complete: 5 created; 6 bundle file(s) written." in out  # results on stdout
    assert (tmp_path / "out" / "databricks.yml").is_file()

    rc, out, err = cli("plan", "--control-table", loaded, "--target", target)
    assert "No changes. The jobs match the metadata." in out
    assert "Plan: 0 to create, 0 to update, 0 to delete/pause, 5 unchanged." in out


def test_plan_json_stdout_is_only_the_document_bundle(cli: Cli, loaded: str, tmp_path: Path) -> None:
    target = f"bundle:{tmp_path / 'out'}"
    rc, out, err = cli("plan", "--control-table", loaded, "--target", target, "--json")
    assert rc == 0
    doc = json.loads(out)  # the whole of stdout parses
    assert err == ""  # --json: nothing but the document, anywhere
    assert {c["module"] for c in doc["changes"]} == EXAMPLE_MODULES
    assert all({"module", "action", "job_id"} <= set(c) for c in doc["changes"])
    assert {c["action"] for c in doc["changes"]} == {"create"}

    assert cli("apply", "--control-table", loaded, "--target", target, "--json")[0] == 0
    rc, out, err = cli("plan", "--control-table", loaded, "--target", target, "--json")
    doc = json.loads(out)
    assert {(c["module"], c["action"], c["job_id"]) for c in doc["changes"]} == {
        (m, "noop", None) for m in EXAMPLE_MODULES
    }


def test_apply_json_stdout_is_only_the_document(cli: Cli, loaded: str, tmp_path: Path) -> None:
    rc, out, err = cli("apply", "--control-table", loaded, "--target", f"bundle:{tmp_path / 'b'}", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert {c["module"]: c["action"] for c in doc["changes"]} == dict.fromkeys(EXAMPLE_MODULES, "create")
    assert err == "" and doc["target"].startswith("bundle:")


def test_target_defaults_to_the_bundle_folder_outside_databricks(
    cli: Cli, loaded: str, tmp_path: Path
) -> None:
    rc, _out, err = cli("apply", "--control-table", loaded)
    assert rc == 0, err
    assert "target: bundle folder bundle (local; no workspace is contacted)" in err
    assert (tmp_path / "bundle" / "databricks.yml").is_file()
    assert len(list((tmp_path / "bundle" / "resources").glob("*.job.yml"))) == 5


def test_default_target_function(monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeflow_job_meta.engine.targets.base import TargetSpec, default_target

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert default_target() == TargetSpec("bundle", "bundle")
    assert str(default_target()) == "bundle:bundle"
    # Credentials never make the target "workspace".
    monkeypatch.setenv("DATABRICKS_HOST", "https://example.cloud.databricks.com")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    assert default_target().kind == "bundle"
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    assert default_target() == TargetSpec("workspace")


def test_invalid_target_is_a_usage_error(cli: Cli, loaded: str) -> None:
    rc, out, err = cli("plan", "--control-table", loaded, "--target", "cloud")
    assert rc == 2 and out == ""
    assert err.strip() == "error: invalid target 'cloud': use 'workspace' or 'bundle:DIR'"


def test_monitor_once_prints_the_target(cli: Cli, loaded: str, tmp_path: Path) -> None:
    rc, _out, err = cli(
        "monitor", "--control-table", loaded, "--target", f"bundle:{tmp_path / 'm'}", "--once"
    )
    assert rc == 0, err
    assert "target: bundle folder" in err
    assert (tmp_path / "m" / "databricks.yml").is_file()


# -- the workspace target against the emulator ---------------------------------------------------


@pytest.fixture
def workspace_env(jobs_emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"DATABRICKS_HOST": jobs_emulator.url, "DATABRICKS_TOKEN": TOKEN}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_apply_and_plan_workspace(cli: Cli, loaded: str, jobs_emulator, workspace_env) -> None:
    rc, out, err = cli("plan", "--control-table", loaded, "--target", "workspace", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert {(c["module"], c["action"], c["job_id"]) for c in doc["changes"]} == {
        (m, "create", None) for m in EXAMPLE_MODULES
    }
    assert err == ""  # --json: the document only
    assert jobs_emulator.writes() == 0

    rc, out, err = cli("apply", "--control-table", loaded, "--target", "workspace")
    assert rc == 0, err
    assert err.splitlines() == [
        f"target: workspace {jobs_emulator.url}",
        "warning: no policy given (--policy): every run_as identity, code path and permission is allowed",
    ]
    assert "Apply complete: 5 created; 5 job write(s)" in out
    assert jobs_emulator.writes() == 5
    ids = {jobs_emulator.job(i)["settings"]["name"]: i for i in jobs_emulator.jobs()}
    assert set(ids) == EXAMPLE_MODULES

    rc, out, err = cli("plan", "--control-table", loaded, "--target", "workspace", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert {(c["module"], c["action"], c["job_id"]) for c in doc["changes"]} == {
        (m, "noop", ids[m]) for m in EXAMPLE_MODULES
    }
    rc, out, err = cli("plan", "--control-table", loaded, "--target", "workspace")
    assert "Plan: 0 to create, 0 to update, 0 to delete/pause, 5 unchanged." in out

    # A second apply sends no write.
    before = jobs_emulator.writes()
    rc, out, err = cli("apply", "--control-table", loaded, "--target", "workspace")
    assert rc == 0 and jobs_emulator.writes() == before
    assert "Apply complete: 5 unchanged; 0 job write(s)" in out

    rc, out, err = cli("status", "--control-table", loaded, "--json")
    assert rc == 0
    status = json.loads(out)
    applied = {m["module"] for m in status["modules"] if m["targets"]}
    assert applied == EXAMPLE_MODULES
    urls = {t["url"] for m in status["modules"] for t in m["targets"]}
    assert urls == {f"{jobs_emulator.url}/jobs/{ids[m]}" for m in EXAMPLE_MODULES}

    assert all(TOKEN not in text for text in cli.outputs)


def test_plan_update_shows_a_field_diff(cli: Cli, tmp_path: Path, jobs_emulator, workspace_env) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    path = volume / "m.yaml"
    path.write_text("modules:\n" + module_yaml("ma", "a1", "a2"))
    ctl = str(tmp_path / "etl_control")
    cli("load", str(volume), "--control-table", ctl, "--sync")
    assert cli("apply", "--control-table", ctl, "--target", "workspace")[0] == 0
    path.write_text("modules:\n" + module_yaml("ma", "a1"))
    cli("load", str(volume), "--control-table", ctl, "--sync")
    rc, out, _ = cli("plan", "--control-table", ctl, "--target", "workspace")
    assert rc == 0
    assert '  ~ update ma "ma" (job ' in out
    assert "a2" in out  # the diff names the removed task
    assert "Plan: 0 to create, 1 to update, 0 to delete/pause, 0 unchanged." in out


def test_apply_prune_delete(cli: Cli, tmp_path: Path, jobs_emulator, workspace_env) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "a.yaml").write_text("modules:\n" + module_yaml("keep_me", "k1"))
    (volume / "b.yaml").write_text("modules:\n" + module_yaml("drop_me", "d1"))
    ctl = str(tmp_path / "etl_control")
    cli("load", str(volume), "--control-table", ctl, "--sync")
    assert cli("apply", "--control-table", ctl, "--target", "workspace")[0] == 0
    ids = {jobs_emulator.job(i)["settings"]["name"]: i for i in jobs_emulator.jobs()}
    assert set(ids) == {"keep_me", "drop_me"}

    (volume / "b.yaml").unlink()
    cli("load", str(volume), "--control-table", ctl, "--sync")
    rc, out, _ = cli("plan", "--control-table", ctl, "--target", "workspace", "--prune", "delete", "--json")
    actions = {c["module"]: (c["action"], c["job_id"]) for c in json.loads(out)["changes"]}
    assert actions == {"keep_me": ("noop", ids["keep_me"]), "drop_me": ("delete", ids["drop_me"])}

    rc, out, err = cli("apply", "--control-table", ctl, "--target", "workspace", "--prune", "delete")
    assert rc == 0, err
    assert f"- drop_me: delete (job {ids['drop_me']})" in out
    assert jobs_emulator.job(ids["drop_me"]) is None
    assert jobs_emulator.job(ids["keep_me"]) is not None


def test_workspace_without_credentials_is_one_line(cli: Cli, loaded: str) -> None:
    rc, out, err = cli("plan", "--control-table", loaded, "--target", "workspace")
    assert rc == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot authenticate to Databricks")


# -- real subprocesses ---------------------------------------------------------------------------


@pytest.mark.slow
def test_subprocess_round_trip_never_prints_the_token(tmp_path: Path, jobs_emulator) -> None:
    env = {"DATABRICKS_HOST": jobs_emulator.url, "DATABRICKS_TOKEN": TOKEN}
    ctl = str(tmp_path / "etl_control")
    outputs: list[str] = []

    def run(*argv: str) -> Any:
        proc = run_subprocess(*argv, cwd=tmp_path, env=env)
        outputs.extend([proc.stdout, proc.stderr])
        return proc

    proc = run("validate", str(EXAMPLES))
    assert proc.returncode == 0, proc.stderr
    proc = run("load", str(EXAMPLES), "--control-table", ctl)
    assert proc.returncode == 0, proc.stderr
    proc = run("--debug", "apply", "--control-table", ctl, "--target", "workspace")
    assert proc.returncode == 0, proc.stderr
    assert "DEBUG" in proc.stderr  # debug logging really was on
    proc = run("--debug", "plan", "--control-table", ctl, "--target", "workspace", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {c["action"] for c in doc["changes"]} == {"noop"}
    assert len(doc["changes"]) == 5
    proc = run("plan", "--control-table", ctl, "--json")  # default target: ./bundle
    assert proc.returncode == 0
    json.loads(proc.stdout)
    assert proc.stderr == ""  # --json: nothing but the document
    proc = run("plan", "--control-table", ctl)
    assert "target: bundle folder bundle" in proc.stderr
    proc = run("--debug", "status", "--control-table", ctl)
    assert proc.returncode == 0
    # A failing call with --debug prints a traceback; still no token.
    proc = run("--debug", "plan", "--control-table", str(tmp_path / "nope"), "--target", "workspace")
    assert proc.returncode != 0 and "Traceback" in proc.stderr

    assert len(jobs_emulator.jobs()) == 5
    for text in outputs:
        assert TOKEN not in text
        assert TOKEN[5:] not in text


def test_apply_on_a_missing_control_table_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    ctl = tmp_path / "typo" / "etl_contrl"
    rc, out, err = cli("apply", "--control-table", str(ctl), "--target", f"bundle:{tmp_path / 'b'}")
    assert rc == 2 and out == ""
    assert [line for line in err.splitlines() if line.startswith("error")] == [
        f"error: table {ctl} does not exist (create it with `lakeflow-job-meta init`, or `load` YAML into it)"
    ]
    assert not ctl.exists() and not (tmp_path / "b").exists()


def test_load_sync_of_a_missing_folder_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    ctl = str(tmp_path / "etl_control")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "a.yaml").write_text("modules:\n" + module_yaml("ma", "a1"))
    cli("load", str(volume), "--control-table", ctl, "--sync")
    rc, out, err = cli("load", str(tmp_path / "gone"), "--control-table", ctl, "--sync")
    assert rc == 2 and out == ""
    assert err.strip() == f"error: YAML folder {tmp_path / 'gone'} does not exist"
    from lakeflow_job_meta.storage import open_tables

    assert [r["source_id"] for r in open_tables(ctl).control.read_all()] == ["a1"]


@pytest.mark.emulator
def test_apply_with_a_rejected_token_fails_before_any_module(cli: Cli, loaded: str, monkeypatch) -> None:
    from tests.emulator.server import JobsEmulator

    with JobsEmulator(token="the-right-token") as emulator:
        monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        rc, out, err = cli("apply", "--control-table", loaded, "--target", "workspace")
    # The preflight call fails first: one line, exit 2, no module attempted.
    assert rc == 2 and out == ""
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [err.strip()]
    assert "refused the credentials" in err
    assert "x " not in err and "Apply complete" not in err
    assert TOKEN not in err


def test_wheel_entry_translates_the_reference_parameters() -> None:
    from lakeflow_job_meta.main import translate_parameters

    assert translate_parameters(
        [
            "--control_table=main.ops.etl_control",
            "--volume_path=/Volumes/main/ops/metadata",
            "--check_interval_seconds=60",
            "--max_iterations=",
            "--once=false",
            "--auto_run=true",
            "--var=catalog=prod",
        ]
    ) == [
        "monitor",
        "--control-table=main.ops.etl_control",
        "--volume-path=/Volumes/main/ops/metadata",
        "--check-interval-seconds=60",
        "--auto-run",
        "--var=catalog=prod",
    ]
    with pytest.raises(SystemExit, match="unknown parameter"):
        translate_parameters(["--contrl_table=x"])
    # Every translated option exists on the monitor command.
    from lakeflow_job_meta.cli.main import build_parser
    from lakeflow_job_meta.main import FLAGS, PARAMETER_OPTIONS

    monitor = build_parser()._subparsers._group_actions[0].choices["monitor"]
    options = {o for action in monitor._actions for o in action.option_strings}
    assert set(PARAMETER_OPTIONS.values()) | set(FLAGS.values()) <= options


def test_unexpected_error_is_one_line_and_debug_raises(
    cli: Cli, loaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeflow_job_meta.engine import status

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(status, "read_status", boom)
    rc, out, err = cli("status", "--control-table", loaded)
    assert rc == 1 and out == ""
    assert err == "error: OSError: disk on fire (run with --debug for the traceback)\n"
    with pytest.raises(OSError, match="disk on fire"):
        main(["--debug", "status", "--control-table", loaded])

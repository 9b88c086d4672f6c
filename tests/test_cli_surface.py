"""The command line as a user meets it: help with examples, --version, global options anywhere,
output discipline (results on stdout, logs on stderr, --json one document, a closed pipe ends
quietly), init, history, and a status you can read."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta import __version__
from lakeflow_job_meta.cli.main import main
from lakeflow_job_meta.cli.parser import COMMANDS, build_parser
from tests.cli_run import run_cli as _run
from tests.example_files import EXAMPLE_MODULES, EXAMPLES, REPO

pytest.importorskip("deltalake")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update({"PYTHONPATH": str(REPO), "HOME": str(tmp_path), "NO_COLOR": "1", **extra})
    return env


@pytest.fixture
def table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    path = str(tmp_path / "etl_control")
    assert _run(capsys, "init", "--control-table", path, "--with-examples")[0] == 0
    return path


# -- help ----------------------------------------------------------------------------------------


def test_every_subcommand_has_examples_and_every_option_a_help_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parsers = _subparsers()
    assert set(parsers) == set(COMMANDS) == {
        "init", "validate", "load", "plan", "apply", "export-bundle", "monitor", "status", "history", "graph",
        "serve",
    }  # fmt: skip
    for name, parser in parsers.items():
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        examples = text.split("\nExamples:\n", 1)
        assert len(examples) == 2, name
        assert all(line.startswith("  lakeflow-job-meta ") for line in examples[1].rstrip().splitlines()), (
            name
        )
        undocumented = [a.dest for a in parser._actions if a.help in (None, "") and a.dest != "help"]
        assert undocumented == [], (name, undocumented)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"lakeflow-job-meta {__version__}\n"


@pytest.mark.slow
def test_python_dash_m_is_the_same_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lakeflow_job_meta", "--version"],
        capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == f"lakeflow-job-meta {__version__}\n"


# -- global options anywhere ---------------------------------------------------------------------


def test_global_options_before_or_after_the_subcommand(
    table: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = _run(capsys, "--json", "status", "--control-table", table)
    after = _run(capsys, "status", "--control-table", table, "--json")
    assert before[0] == after[0] == 0
    assert json.loads(before[1])["control_table"] == json.loads(after[1])["control_table"] == table
    missing = str(tmp_path / "missing")
    for argv in (
        ["--debug", "status", "--control-table", missing],
        ["status", "--control-table", missing, "--debug"],
    ):
        with pytest.raises(Exception, match="does not exist"):  # --debug: the exception itself
            main(argv)
    args = build_parser().parse_args(["plan", "--profile", "prod"])
    assert args.profile == "prod" and args.json is False and args.debug is False
    args = build_parser().parse_args(["--profile", "prod", "plan"])
    assert args.profile == "prod"


# -- output discipline ---------------------------------------------------------------------------


def test_results_on_stdout_notes_on_stderr(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "apply", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}")
    assert code == 0
    assert "Apply complete: 5 created" in out and "Apply complete" not in err
    assert err.startswith("target: bundle folder")
    code, out, err = _run(capsys, "load", str(EXAMPLES), "--control-table", table)
    assert code == 0 and "(nothing changed)" in out and err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ("plan", "--target", "bundle:b"),
        ("apply", "--target", "bundle:b"),
        ("status",),
        ("history",),
        ("graph", "sales_daily"),
        ("load", str(EXAMPLES)),
        ("validate", str(EXAMPLES)),
        ("monitor", "--target", "bundle:b", "--once"),
    ],
)
def test_json_is_exactly_one_document_and_nothing_on_stderr(
    argv: tuple[str, ...],
    table: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = [] if argv[0] == "validate" else ["--control-table", table]
    code, out, err = _run(capsys, *argv, *extra, "--json")
    assert code == 0, err
    json.loads(out)  # the whole of stdout is one document
    if argv[0] == "monitor":  # its log lines are on stderr, as logs are; no note
        assert "target:" not in err and all(" INFO cycle " in line for line in err.splitlines())
    else:
        assert err == ""


def test_json_error_is_still_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "status", "--control-table", str(tmp_path / "missing"), "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 2 and "does not exist" in doc["error"]
    assert err.startswith("error: table ")


@pytest.mark.slow
def test_plan_json_into_head_leaves_stderr_empty(table: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        f"{sys.executable} -m lakeflow_job_meta plan --control-table {table} --target bundle:b --json | head -c 1",
        shell=True, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.stdout == "{"
    assert proc.stderr == ""


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(table: str, tmp_path: Path) -> None:
    """The reader is gone before anything is written: exit 141 (SIGPIPE's), not a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lakeflow_job_meta", "plan", "--control-table", table, "--target", "bundle:b"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr
    notes = ("target:", "warning: no policy given")  # the run's two notes; nothing about the pipe
    assert [line for line in proc.stderr.splitlines() if not line.startswith(notes)] == []


# -- init and history ----------------------------------------------------------------------------


def test_init_creates_the_tables_and_loads_the_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = str(tmp_path / "ctl")
    code, out, _ = _run(capsys, "init", "--control-table", table, "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc["tables"]) == {"control", "modules", "jobs", "history", "state"}
    assert doc["examples"] is None
    code, out, _ = _run(capsys, "init", "--control-table", table, "--with-examples", "--json")
    assert json.loads(out)["examples"]["sources_upserted"] == 18
    code, out, _ = _run(capsys, "graph", "sales_daily", "--control-table", table)
    assert code == 0 and "quality_gate" in out


def test_history_filters(table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "apply", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}")[0] == 0
    code, out, _ = _run(capsys, "history", "--control-table", table, "--json")
    rows = json.loads(out)["history"]
    assert {r["module_name"] for r in rows} == EXAMPLE_MODULES
    assert all(r["action"] == "create" and r["outcome"] == "ok" for r in rows)
    code, out, _ = _run(capsys, "history", "--control-table", table, "--module", "sales_daily", "--json")
    assert [r["module_name"] for r in json.loads(out)["history"]] == ["sales_daily"]
    code, out, _ = _run(capsys, "history", "--control-table", table, "--limit", "2", "--json")
    assert len(json.loads(out)["history"]) == 2
    code, out, _ = _run(capsys, "history", "--control-table", table, "--since", "2999-01-01", "--json")
    assert json.loads(out)["history"] == []
    code, out, _ = _run(capsys, "history", "--control-table", table)
    assert "sales_daily: create ok" in out
    code, _, err = _run(capsys, "history", "--control-table", table, "--since", "yesterday")
    assert code == 2 and "got 'yesterday'" in err


# -- status --------------------------------------------------------------------------------------


def test_status_lists_every_module_after_a_bundle_apply(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    assert _run(capsys, "export-bundle", "--control-table", table, "--output", str(bundle))[0] == 0
    status = json.loads(_run(capsys, "status", "--control-table", table, "--json")[1])
    modules = {m["module"]: m for m in status["modules"]}
    assert set(modules) == {*EXAMPLE_MODULES, "legacy_exports"}
    assert modules["legacy_exports"]["active"] is False and modules["legacy_exports"]["targets"] == []
    for name in EXAMPLE_MODULES:
        (target,) = modules[name]["targets"]
        assert target["kind"] == "bundle"
        assert Path(target["file"]).is_file()
        assert target["last_action"] == "create" and target["applied_at"]
    text = _run(capsys, "status", "--control-table", table)[1]
    assert "{" not in text and "None" not in text  # no Python dicts, no raw None
    assert f"{bundle}/resources/sales_daily.job.yml: create, applied " in text


def test_status_shows_a_stopped_monitor_and_rejected_files(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "bad.yaml").write_text("modules:\n  - module_name: x\n    sources: oops\n")
    code, _, _ = _run(
        capsys, "monitor", "--control-table", table, "--target", f"bundle:{tmp_path / 'b'}",
        "--volume-path", str(volume), "--once",
    )  # fmt: skip
    assert code == 1  # a rejected file is not ok
    status = json.loads(_run(capsys, "status", "--control-table", table, "--json")[1])
    # --once ended cleanly and released its lease: not the STOPPED of a crashed monitor (issue 17).
    assert status["monitor"]["state"] == "stopped (last run completed)"
    assert status["monitor"]["holder"].startswith("monitor@")
    assert list(status["rejected_files"]) == ["bad.yaml"]
    text = _run(capsys, "status", "--control-table", table)[1]
    assert "Monitor: not running; its last run (monitor@" in text and "STOPPED" not in text
    assert "Rejected file bad.yaml:" in text


def test_status_runs_and_job_urls_on_a_workspace(
    table: str, jobs_emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", jobs_emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-status")
    assert _run(capsys, "apply", "--control-table", table, "--target", "workspace", "--auto-run")[0] == 0
    before = jobs_emulator.count("jobs/runs/list")
    status = json.loads(_run(capsys, "status", "--control-table", table, "--json")[1])
    assert jobs_emulator.count("jobs/runs/list") == before  # runs only on demand
    status = json.loads(_run(capsys, "status", "--control-table", table, "--json", "--runs")[1])
    assert jobs_emulator.count("jobs/runs/list") == before + 1  # one paged call, whatever the job count
    targets = [t for m in status["modules"] for t in m["targets"]]
    assert {t["url"].rsplit("/jobs/", 1)[0] for t in targets} == {jobs_emulator.url}
    assert all(t["latest_run"] and t["latest_run"]["run_id"] for t in targets)
    # --auto-run started one run per job, still running: judged, none unhealthy.
    assert {m["health"]["state"] for m in status["modules"] if m["targets"]} == {"healthy"}
    text = _run(capsys, "status", "--control-table", table, "--runs")[1]
    assert "latest run " in text


def test_status_flags_orphaned_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume, table = tmp_path / "volume", str(tmp_path / "ctl")
    volume.mkdir()
    module = (
        "modules:\n  - module_name: {0}\n    sources:\n      - source_id: {0}_s\n        source_type: x\n"
        "        execution_order: 1\n        transformation_config: {{task_type: notebook, notebook_path: /n}}\n"
    )
    (volume / "a.yaml").write_text(module.format("kept"))
    (volume / "b.yaml").write_text(module.format("gone"))
    assert _run(capsys, "load", str(volume), "--control-table", table, "--sync")[0] == 0
    assert (
        _run(
            capsys,
            "apply",
            "--control-table",
            table,
            "--target",
            f"bundle:{tmp_path / 'b'}",
            "--prune",
            "keep",
        )[0]
        == 0
    )
    (volume / "b.yaml").unlink()
    assert _run(capsys, "load", str(volume), "--control-table", table, "--sync")[0] == 0
    modules = {
        m["module"]: m
        for m in json.loads(_run(capsys, "status", "--control-table", table, "--json")[1])["modules"]
    }
    assert modules["gone"]["orphaned"] is True and modules["kept"]["orphaned"] is False
    assert "gone (orphaned: not in the metadata)" in _run(capsys, "status", "--control-table", table)[1]

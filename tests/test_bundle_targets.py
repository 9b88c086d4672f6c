"""Issue 17 item 6: the generated bundle is one a user can deploy to a chosen workspace.

``databricks.yml`` is rewritten by every apply, so a target written into it vanished. The user's
targets live in ``targets/*.yml``, which ``databricks.yml`` includes and the tool never writes,
except for the one-time scaffold of ``--bundle-target NAME --workspace-host URL``. The real
Databricks CLI (``shared/tools/databricks``) validates and deploys the result against its own
fake workspace (marker ``fakews``; skipped without the tools)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_run import run_cli
from tests.example_files import EXAMPLES_DIR
from tests.fakews import DATABRICKS_CLI, FakeWorkspace, missing_tools

pytest.importorskip("deltalake")

EXAMPLES = EXAMPLES_DIR / "metadata_examples.yaml"
HOST = "https://adb-1234567890123456.7.azuredatabricks.net"


@pytest.fixture
def table(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    ctl = str(tmp_path / "ctl")
    assert run_cli(capsys, "load", str(EXAMPLES), "--control-table", ctl)[0] == 0
    return ctl


def _export(capsys: pytest.CaptureFixture[str], table: str, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "export-bundle", "--control-table", table, "--output", str(out), *extra)


def test_a_user_target_survives_every_apply(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    code, _, err = _export(capsys, table, out, "--bundle-target", "prod", "--workspace-host", HOST)
    assert code == 0, err
    assert "wrote targets/prod.yml: deploy with `databricks bundle deploy -t prod`" in err
    target_file = out / "targets" / "prod.yml"
    import yaml

    assert yaml.safe_load(target_file.read_text())["targets"] == {"prod": {"workspace": {"host": HOST}}}
    root = yaml.safe_load((out / "databricks.yml").read_text())
    assert root["include"] == ["resources/*.yml", "targets/*.yml"]

    # The file is the user's: an edit stays through applies with and without the flags.
    edited = target_file.read_text() + "    mode: production\n    # root_path: my own line\n"
    target_file.write_text(edited)
    (out / "targets" / "staging.yml").write_text(
        f"targets:\n  staging:\n    workspace:\n      host: {HOST}\n"
    )
    assert _export(capsys, table, out)[0] == 0
    assert _export(capsys, table, out, "--bundle-target", "prod", "--workspace-host", HOST + "/")[0] == 0
    assert (
        run_cli(capsys, "apply", "--control-table", table, "--target", f"bundle:{out}", "--prune", "delete")[
            0
        ]
        == 0
    )
    assert target_file.read_text() == edited
    assert (out / "targets" / "staging.yml").is_file()


def test_bundle_target_options_that_cannot_apply_are_usage_errors(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    code, _, err = _export(capsys, table, out, "--bundle-target", "prod")
    assert code == 2 and "--bundle-target and --workspace-host go together" in err
    code, _, err = _export(capsys, table, out, "--bundle-target", "prod", "--workspace-host", "adb-123")
    assert code == 2 and "give the workspace URL" in err
    assert not out.exists()  # refused before anything was written
    code, _, err = run_cli(
        capsys, "apply", "--control-table", table, "--target", "workspace",
        "--bundle-target", "prod", "--workspace-host", HOST,
    )  # fmt: skip
    assert code == 2 and "--bundle-target cannot apply to the workspace target" in err

    assert _export(capsys, table, out, "--bundle-target", "prod", "--workspace-host", HOST)[0] == 0
    code, _, err = _export(
        capsys,
        table,
        out,
        "--bundle-target",
        "prod",
        "--workspace-host",
        "https://other.cloud.databricks.com",
    )
    assert code == 2 and "is yours and names" in err and "edit it" in err
    # A folder of another control table gets no target file either.
    other = str(tmp_path / "other")
    assert run_cli(capsys, "load", str(EXAMPLES), "--control-table", other)[0] == 0
    code, _, err = run_cli(
        capsys, "export-bundle", "--control-table", other, "--output", str(out),
        "--bundle-target", "qa", "--workspace-host", HOST,
    )  # fmt: skip
    assert code == 2 and "belongs to control table" in err
    assert not (out / "targets" / "qa.yml").exists()


def _databricks(*args: str, cwd: Path, fake: FakeWorkspace, token: str, home: Path, host: bool = True):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DATABRICKS_TOKEN": token,
        "DATABRICKS_BUNDLE_ENGINE": "direct",  # the terraform engine downloads a binary
    }
    if host:
        env["DATABRICKS_HOST"] = fake.url
    return subprocess.run(
        [str(DATABRICKS_CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _summary(folder: Path, fake: FakeWorkspace, token: str, home: Path, *args: str, host: bool = True):
    """``databricks bundle summary -o json``: what the CLI resolved and deployed."""
    proc = _databricks(
        "bundle", "summary", *args, "-o", "json", cwd=folder, fake=fake, token=token, home=home, host=host
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.fakews
@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
def test_the_real_cli_validates_and_deploys_the_named_target(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fakews: FakeWorkspace
) -> None:
    """The steps docs/PACKAGING_AND_DEPLOYMENT.md shows: export with a target, then
    ``databricks bundle validate -t NAME`` and ``deploy -t NAME``; the host comes from the
    target file alone (no DATABRICKS_HOST), only the credentials from the environment."""
    out = tmp_path / "bundle"
    assert _export(capsys, table, out, "--bundle-target", "qa", "--workspace-host", fakews.url)[0] == 0
    assert _export(capsys, table, out)[0] == 0  # a later apply keeps the target
    token, home = fakews.new_token(), tmp_path / "cli_home"
    home.mkdir()
    for command in ("validate", "deploy"):
        proc = _databricks(
            "bundle", command, "-t", "qa", cwd=out, fake=fakews, token=token, home=home, host=False
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    summary = _summary(out, fakews, token, home, "-t", "qa", host=False)
    assert summary["workspace"]["host"] == fakews.url
    assert set(summary["resources"]["jobs"]) == {
        "sales_daily", "ml_features", "warehouse_refresh", "nightly_umbrella", "clickstream_continuous"
    }  # fmt: skip
    assert all(job.get("id") for job in summary["resources"]["jobs"].values())  # deployed
    # The default target still validates (the host then comes from the environment).
    assert _databricks("bundle", "validate", cwd=out, fake=fakews, token=token, home=home).returncode == 0


MONITOR_BUNDLE = EXAMPLES_DIR / "monitor_bundle"
VARIANTS = sorted(p.name for p in (MONITOR_BUNDLE / "variants").glob("*.yml"))


def test_the_monitor_bundle_installs_the_published_wheel_one_variant_at_a_time() -> None:
    """It needed a clone (``path: ../..``, a build) and deployed all three monitors at once."""
    import yaml

    root = yaml.safe_load((MONITOR_BUNDLE / "databricks.yml").read_text())
    assert "artifacts" not in root and "../" not in (MONITOR_BUNDLE / "databricks.yml").read_text()
    assert root["include"] == ["variants/continuous.yml"]
    assert VARIANTS == ["continuous.yml", "on_file_arrival.yml", "on_table_change.yml"]
    for name in VARIANTS:
        (job,) = yaml.safe_load((MONITOR_BUNDLE / "variants" / name).read_text())["resources"][
            "jobs"
        ].values()
        (environment,) = job["environments"]
        assert environment["spec"]["dependencies"] == ["${var.wheel}"]
        assert job["max_concurrent_runs"] == 1


@pytest.mark.fakews
@pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
@pytest.mark.parametrize("variant", VARIANTS)
def test_each_monitor_variant_validates_and_deploys_alone(
    variant: str, tmp_path: Path, fakews: FakeWorkspace
) -> None:
    import shutil

    folder = tmp_path / "monitor_bundle"
    shutil.copytree(MONITOR_BUNDLE, folder)
    root = folder / "databricks.yml"
    root.write_text(root.read_text().replace("variants/continuous.yml", f"variants/{variant}"))
    token, home = fakews.new_token(), tmp_path / "cli_home"
    home.mkdir()
    wheel = "--var=wheel=/Volumes/main/ops/wheels/lakeflow_job_meta-0.1.0-py3-none-any.whl"
    for args in (("validate", "-t", "dev"), ("validate", "-t", "prod"), ("deploy", "-t", "prod", wheel)):
        proc = _databricks("bundle", *args, cwd=folder, fake=fakews, token=token, home=home)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    (job,) = _summary(folder, fakews, token, home, "-t", "prod", wheel)["resources"][
        "jobs"
    ].values()  # one monitor, not three
    assert job["id"] and job["environments"][0]["spec"]["dependencies"] == [wheel.split("=", 2)[2]]

"""The contract lane: the tool against Databricks' own fake workspace (``tests/fakews.py``).

The CLI runs in-process with only ``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` in the environment, as a
user would; every test has its own token, so its own empty workspace. Writes are counted from the
fake's request log. ``pytest -m fakews`` runs this lane alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli_run import run_cli
from tests.example_files import EXAMPLE_MODULES, EXAMPLES, EXAMPLES_DIR
from tests.fakews import DATABRICKS_CLI, FAKE_USER, FakeWorkspace, missing_tools

pytest.importorskip("deltalake")

pytestmark = [
    pytest.mark.fakews,
    pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools())),
]

ROWS_EXAMPLE = EXAMPLES_DIR / "control_table_rows.yaml"
# The examples' modules: metadata_examples.yaml's active ones, and the rows example's one.
ALL_EXAMPLE_MODULES = EXAMPLE_MODULES | {"my_pipeline"}
SERVICE_PRINCIPAL = "9f8e7d6c-0000-1111-2222-333344445555"


class Workspace:
    """One test's workspace on the shared fake: its token, the CLI on it, its request log."""

    def __init__(self, fake: FakeWorkspace, capsys: pytest.CaptureFixture[str], tmp_path: Path):
        self.fake = fake
        self.capsys = capsys
        self.tmp_path = tmp_path
        self.token = fake.new_token()
        self.ctl = str(tmp_path / "tables" / "etl_control")
        self.sdk = fake.client(self.token)

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *argv)

    def load(self, *paths: Path, sync: bool = False) -> None:
        rc, _, err = self.cli(
            "load", *map(str, paths), "--control-table", self.ctl, *(["--sync"] if sync else [])
        )
        assert rc == 0, err

    def apply(self) -> dict[str, Any]:
        """``apply --target workspace --json``; the document, after checking no module failed."""
        rc, out, err = self.cli("--json", "apply", "--control-table", self.ctl, "--target", "workspace")
        doc = json.loads(out)
        failed = [r for r in doc["results"] if r["outcome"] != "ok"]
        assert failed == [] and rc == 0, (err, failed)
        return doc

    def live(self, job_id: int) -> dict[str, Any]:
        return self.sdk.jobs.get(job_id).settings.as_dict()

    def job_ids(self) -> dict[str, int]:
        """Name -> id of every job in this workspace, read from the fake."""
        return {j.settings.name: j.job_id for j in self.sdk.jobs.list()}


@pytest.fixture
def ws(fakews: FakeWorkspace, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    workspace = Workspace(fakews, capsys, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABRICKS_HOST", fakews.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", workspace.token)
    return workspace


def _module(name: str, count: int, *, extra: str = "") -> str:
    """A module of ``count`` notebook tasks; tasks 2k and 2k+1 share an execution order, so each
    task after the first pair depends on two (the fake returns depends_on sorted)."""
    sources = "".join(
        f"      - source_id: t{i:03d}\n        source_type: x\n        execution_order: {i // 2}\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/t{i:03d}}}\n"
        for i in range(count)
    )
    return f"modules:\n  - module_name: {name}\n{extra}    sources:\n{sources}"


def test_examples_converge_and_reapply_writes_nothing(ws: Workspace) -> None:
    ws.load(EXAMPLES, ROWS_EXAMPLE)
    doc = ws.apply()
    assert {(r["module"], r["action"]) for r in doc["results"]} == {
        (m, "create") for m in ALL_EXAMPLE_MODULES
    }

    mark = ws.fake.mark()
    doc = ws.apply()
    assert {r["action"] for r in doc["results"]} == {"noop"}
    assert doc["job_writes"] == 0
    assert ws.fake.writes(mark) == []
    assert {r.status for r in ws.fake.requests(mark)} == {200}


def test_job_ids_above_2_pow_53_stay_exact_integers(ws: Workspace) -> None:
    """The fake's ids exceed 2**53: a float anywhere (JSON, Delta, arrow) would change them."""
    ws.load(EXAMPLES)
    doc = ws.apply()
    live = ws.job_ids()
    assert set(live) == EXAMPLE_MODULES
    assert all(i > 2**53 for i in live.values())
    assert {r["module"]: r["job_id"] for r in doc["results"]} == live

    # run_job_task.job_id is resolved from the tracking table: the exact id of sales_daily's job.
    umbrella = ws.live(live["nightly_umbrella"])
    (run_job,) = [t["run_job_task"] for t in umbrella["tasks"] if "run_job_task" in t]
    assert run_job["job_id"] == live["sales_daily"]

    rc, out, err = ws.cli("status", "--control-table", ws.ctl, "--json")
    assert rc == 0, err
    tracked = {m["module"]: t for m in json.loads(out)["modules"] for t in m["targets"]}
    assert {m: t["url"] for m, t in tracked.items()} == {
        m: f"{ws.fake.url}/jobs/{i}" for m, i in live.items()
    }

    rc, out, err = ws.cli("history", "--control-table", ws.ctl, "--json")
    assert rc == 0, err
    assert {e["job_id"] for e in json.loads(out)["history"]} == set(live.values())


def test_drift_is_restored_with_one_reset(ws: Workspace) -> None:
    from databricks.sdk.service.jobs import JobSettings

    ws.load(EXAMPLES)
    ws.apply()
    job_id = ws.job_ids()["sales_daily"]
    before = ws.live(job_id)

    # An edit in the UI, straight through the SDK.
    ws.sdk.jobs.update(job_id, new_settings=JobSettings(description="edited by hand", max_concurrent_runs=7))
    assert ws.live(job_id)["description"] == "edited by hand"

    mark = ws.fake.mark()
    doc = ws.apply()
    changed = {r["module"]: r for r in doc["results"] if r["action"] != "noop"}
    assert set(changed) == {"sales_daily"} and changed["sales_daily"]["drift"] is True
    assert [(w.path, w.body["job_id"]) for w in ws.fake.writes(mark)] == [("/api/2.2/jobs/reset", job_id)]
    assert ws.live(job_id) == before


def test_a_250_task_job_is_read_across_pages(ws: Workspace) -> None:
    (ws.tmp_path / "big.yaml").write_text(_module("big", 250))
    ws.load(ws.tmp_path / "big.yaml")
    ws.apply()
    (job_id,) = ws.job_ids().values()
    assert len(ws.live(job_id)["tasks"]) == 250

    mark = ws.fake.mark()
    doc = ws.apply()
    assert [r["action"] for r in doc["results"]] == ["noop"]
    assert ws.fake.writes(mark) == []
    pages = [r.query for r in ws.fake.requests(mark) if r.path == "/api/2.2/jobs/get"]
    assert any("page_token=200" in q for q in pages), pages  # the third page was read


def test_exported_bundle_validates_and_deploys(ws: Workspace) -> None:
    ws.load(EXAMPLES, ROWS_EXAMPLE)
    out_dir = ws.tmp_path / "bundle"
    rc, _, err = ws.cli("export-bundle", "--control-table", ws.ctl, "--output", str(out_dir))
    assert rc == 0, err
    assert ws.job_ids() == {}  # exporting contacts no workspace

    home = ws.tmp_path / "cli_home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DATABRICKS_HOST": ws.fake.url,
        "DATABRICKS_TOKEN": ws.token,
        "DATABRICKS_BUNDLE_ENGINE": "direct",  # the terraform engine downloads a binary
    }
    for command in ("validate", "deploy"):
        proc = subprocess.run(
            [str(DATABRICKS_CLI), "bundle", command], cwd=out_dir, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    assert set(ws.job_ids()) == ALL_EXAMPLE_MODULES


def test_removing_run_as_returns_the_job_to_the_default_identity(ws: Workspace) -> None:
    volume = ws.tmp_path / "volume"
    volume.mkdir()
    path = volume / "m.yaml"
    path.write_text(
        _module("runner", 2, extra=f"    run_as: {{service_principal_name: {SERVICE_PRINCIPAL}}}\n")
    )
    ws.load(volume, sync=True)
    ws.apply()
    (job_id,) = ws.job_ids().values()
    assert ws.live(job_id)["run_as"] == {"service_principal_name": SERVICE_PRINCIPAL}

    path.write_text(_module("runner", 2))
    ws.load(volume, sync=True)
    ws.apply()
    # jobs/reset without run_as keeps the old identity (a cloud quirk the fake reproduces): the
    # tool must name the default one.
    assert ws.live(job_id).get("run_as", {"user_name": FAKE_USER}) == {"user_name": FAKE_USER}


def test_removing_permissions_revokes_the_grant(ws: Workspace) -> None:
    volume = ws.tmp_path / "volume"
    volume.mkdir()
    path = volume / "m.yaml"
    grant = "    permissions:\n      - {user_name: someone@example.com, permission_level: CAN_MANAGE}\n"
    path.write_text(_module("granted", 2, extra=grant))
    ws.load(volume, sync=True)
    ws.apply()
    (job_id,) = ws.job_ids().values()

    def direct_grants() -> dict[str, list[str]]:
        acl = ws.sdk.jobs.get_permissions(str(job_id)).access_control_list or []
        return {
            (e.user_name or e.service_principal_name or e.group_name): [
                p.permission_level.value for p in e.all_permissions or [] if not p.inherited
            ]
            for e in acl
        }

    assert direct_grants()["someone@example.com"] == ["CAN_MANAGE"]
    path.write_text(_module("granted", 2))
    ws.load(volume, sync=True)
    ws.apply()
    grants = {who: levels for who, levels in direct_grants().items() if levels}
    assert grants == {FAKE_USER: ["IS_OWNER"]}

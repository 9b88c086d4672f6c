"""The status page's Databricks App in ``examples/monitor_bundle``: ``databricks bundle validate``
(the real CLI) passes against Databricks' own fake workspace, the bundle declares the App with
its SQL warehouse, and ``app.yaml`` starts a module the package has. Contract lane (fakews)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fakews import DATABRICKS_CLI, FakeWorkspace, missing_tools

BUNDLE = Path(__file__).resolve().parents[1] / "examples" / "monitor_bundle"

pytestmark = [
    pytest.mark.fakews,
    pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools())),
]


def test_app_yaml_starts_the_packaged_app_module() -> None:
    app = yaml.safe_load((BUNDLE / "status_app" / "app.yaml").read_text())
    assert app["command"][:2] == ["python", "-m"]
    assert importlib.util.find_spec(app["command"][2]) is not None
    env = {e["name"]: e for e in app["env"]}
    assert env["LJM_WAREHOUSE_ID"]["valueFrom"] == "sql-warehouse"


def test_bundle_validate_passes_with_the_app(fakews: FakeWorkspace, tmp_path: Path) -> None:
    bundle = tmp_path / "monitor_bundle"
    shutil.copytree(BUNDLE, bundle, ignore=shutil.ignore_patterns(".databricks"))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "DATABRICKS_HOST": fakews.url,
        "DATABRICKS_TOKEN": fakews.new_token(),
        "DATABRICKS_BUNDLE_ENGINE": "direct",
    }
    proc = subprocess.run(
        [str(DATABRICKS_CLI), "bundle", "validate", "-o", "json"],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    app = json.loads(proc.stdout)["resources"]["apps"]["status_page"]
    assert app["source_code_path"].endswith("/files/status_app")
    (resource,) = app["resources"]
    assert resource["name"] == "sql-warehouse" and resource["sql_warehouse"]["permission"] == "CAN_USE"

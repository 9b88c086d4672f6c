"""``export-bundle`` output for the examples against two independent contracts: the bundle JSON
schema the Databricks CLI publishes (``../shared/contracts``) and the typed models of the
``databricks-bundles`` package (``Job.from_dict`` is strict on unknown fields at any depth; its
``as_dict()`` must give back exactly what was written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lakeflow_job_meta.cli.main import main
from tests.bundle_schema import JOB_REF, load_schema, schema_errors
from tests.example_files import EXAMPLE_MODULES, EXAMPLES

pytest.importorskip("deltalake")
jobs_model = pytest.importorskip("databricks.bundles.jobs")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema()


def _export(tmp_path: Path, env: str | None) -> Path:
    table, out = tmp_path / "ctl", tmp_path / "bundle"
    env_args = ["--env", env] if env else []
    assert main(["load", str(EXAMPLES), "--control-table", str(table), *env_args]) == 0
    assert main(["export-bundle", "--control-table", str(table), "--output", str(out), *env_args]) == 0
    return out


@pytest.mark.parametrize("env", [None, "dev", "prod"])
def test_exported_jobs_meet_the_schema_and_the_official_models(
    env: str | None, tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _export(tmp_path, env)
    capsys.readouterr()
    root = yaml.safe_load((out / "databricks.yml").read_text())
    assert schema_errors(root, schema) == []
    seen = set()
    for path in sorted((out / "resources").glob("*.job.yml")):
        document = yaml.safe_load(path.read_text())
        assert schema_errors(document, schema) == [], path.name
        for key, job in document["resources"]["jobs"].items():
            assert schema_errors(job, schema, JOB_REF) == [], key
            assert jobs_model.Job.from_dict(job).as_dict() == job, key
            seen.add(path.name.removesuffix(".job.yml"))
    assert seen == EXAMPLE_MODULES


def test_the_official_models_have_teeth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _export(tmp_path, None)
    capsys.readouterr()
    document = yaml.safe_load((out / "resources" / "sales_daily.job.yml").read_text())
    job = next(iter(document["resources"]["jobs"].values()))
    job["tasks"][0]["edit_mode"] = "UI_LOCKED"  # an API-only field, deep inside
    with pytest.raises(ValueError, match="edit_mode"):
        jobs_model.Job.from_dict(job)

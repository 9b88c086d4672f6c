"""Settings given on the command line reach every part that uses them, whichever command builds
it:

- ``monitor --default-warehouse-id`` reaches the manager that loads the volume, as it does for
  ``load``;
- the development-mode job-name prefix follows the environment's declared ``mode``, not its
  name, for ``apply`` and for the monitor from its first cycle.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakeflow_job_meta.cli.main import main

pytest.importorskip("deltalake")

SQL_WITHOUT_WAREHOUSE = """\
modules:
  - module_name: report
    sources:
      - source_id: q
        source_type: sql
        execution_order: 1
        transformation_config:
          task_type: sql_query
          sql_task: {sql_query: "SELECT 1"}
"""

ENVIRONMENTS = """\
environments:
  staging: {mode: production}
  sandbox: {mode: development}
modules:
  - module_name: m
    sources:
      - source_id: s
        source_type: x
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/nb/s}
"""


def _job_name(bundle: Path) -> str:
    (job,) = yaml.safe_load((bundle / "resources" / "m.job.yml").read_text())["resources"]["jobs"].values()
    return job["name"]


def test_monitor_once_uses_the_default_warehouse_for_the_volume(tmp_path: Path, capsys) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "report.yaml").write_text(SQL_WITHOUT_WAREHOUSE)
    assert main(["load", str(volume / "report.yaml"), "--control-table", str(tmp_path / "other"),
                 "--default-warehouse-id", "wh123"]) == 0  # fmt: skip
    rc = main(
        [
            "monitor", "--once", "--control-table", str(tmp_path / "ctl"), "--volume-path", str(volume),
            "--target", f"bundle:{tmp_path / 'bundle'}", "--default-warehouse-id", "wh123",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "is required for sql_query" not in err
    assert rc == 0, err
    job = (tmp_path / "bundle" / "resources" / "report.job.yml").read_text()
    assert "wh123" in job


@pytest.mark.parametrize(("env", "prefix"), [("staging", ""), ("sandbox", "[sandbox] ")])
def test_the_declared_mode_decides_the_name_prefix(tmp_path: Path, env: str, prefix: str) -> None:
    (tmp_path / "m.yaml").write_text(ENVIRONMENTS)
    table, bundle = str(tmp_path / "ctl"), tmp_path / "bundle"
    assert main(["load", str(tmp_path / "m.yaml"), "--control-table", table, "--env", env]) == 0
    assert main(["apply", "--control-table", table, "--target", f"bundle:{bundle}", "--env", env]) == 0
    assert _job_name(bundle) == f"{prefix}m"


@pytest.mark.parametrize(("env", "prefix"), [("staging", ""), ("sandbox", "[sandbox] ")])
def test_the_monitor_follows_the_declared_mode_from_its_first_cycle(
    tmp_path: Path, env: str, prefix: str
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "m.yaml").write_text(ENVIRONMENTS)
    bundle = tmp_path / "bundle"
    argv = ["monitor", "--once", "--control-table", str(tmp_path / "ctl"), "--volume-path", str(volume)]
    assert main([*argv, "--target", f"bundle:{bundle}", "--env", env]) == 0
    assert _job_name(bundle) == f"{prefix}m"

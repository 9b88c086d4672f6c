"""Issue 15: one environment per control table, resolved once, and `validate --control-table`.

The rows hold values resolved by their load, so `plan`, `apply`, `export-bundle` and `monitor`
must ask for the load's `--env`/`--var` (declared ones): a job never mixes one environment's name
with another's values. `validate --control-table` gives load's verdict without writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_run import run_cli

pytest.importorskip("deltalake")

PIPELINE = """\
variables:
  warehouse_id: {default: default-wh}
  catalog: {default: main}
environments:
  dev: {mode: development, variables: {warehouse_id: dev-wh, catalog: dev_cat}}
  prod: {mode: production, variables: {warehouse_id: prod-wh, catalog: prod_cat}}
modules:
  - module_name: customers_daily
    sources:
      - source_id: customers
        source_type: sql
        execution_order: 1
        transformation_config:
          task_type: sql_query
          sql_task: {warehouse_id: "${var.warehouse_id}", sql_query: "SELECT * FROM ${var.catalog}.c"}
"""


def _other(module: str, source_id: str, prod_mode: str = "production") -> str:
    return (
        f"environments:\n  prod: {{mode: {prod_mode}}}\n  dev: {{mode: development}}\n"
        f"modules:\n  - module_name: {module}\n    sources:\n      - source_id: {source_id}\n"
        "        source_type: x\n        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/nb/{source_id}}}\n"
    )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


def _job_file(root: Path) -> Path:
    return root / "bundle" / "resources" / "customers_daily.job.yml"


def test_apply_with_another_env_than_the_load_is_refused_never_mixed(world: Path, capsys) -> None:
    assert run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    code, _, err = run_cli(
        capsys, "apply", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "dev"
    )
    assert code == 2, err
    assert "./ctl was loaded with --env prod, no --var" in err
    assert "this run asks for --env dev, no --var" in err
    assert not _job_file(world).exists()  # nothing written, least of all a mixed job
    # No --env on a table loaded for prod is refused the same way (it would drop prod's name).
    assert run_cli(capsys, "plan", "--control-table", "./ctl", "--target", "bundle:bundle")[0] == 2

    # Loading again for dev resolves every row for dev: name and values agree.
    assert run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "dev")[0] == 0
    code, _, err = run_cli(
        capsys, "apply", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "dev"
    )
    assert code == 0, err
    job = _job_file(world).read_text()
    assert "[dev] customers_daily" in job
    sql = (world / "bundle" / "resources" / "sql" / "customers_daily" / "customers.sql").read_text()
    assert "dev-wh" in job and "dev_cat.c" in sql
    assert "prod" not in job + sql


def test_export_bundle_and_monitor_refuse_another_env(world: Path, capsys) -> None:
    assert run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    code, _, err = run_cli(
        capsys, "export-bundle", "--control-table", "./ctl", "--output", "bundle", "--env", "dev"
    )
    assert code == 2 and "loaded with --env prod" in err
    code, _, err = run_cli(
        capsys, "monitor", "--once", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "dev"
    )
    assert code == 2 and "loaded with --env prod" in err
    assert not _job_file(world).exists()
    code, _, err = run_cli(
        capsys, "monitor", "--once", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "prod"
    )
    assert code == 0, err
    assert "prod-wh" in _job_file(world).read_text()


def test_plan_with_an_undeclared_env_is_exit_2(world: Path, capsys) -> None:
    assert run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    code, out, err = run_cli(
        capsys, "plan", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "staging"
    )
    assert code == 2 and out == ""
    assert "environment 'staging' is not defined (dev, prod)" in err
    # validate and load say the same, with the same exit code.
    code, _, err = run_cli(capsys, "validate", "pipeline.yaml", "--env", "staging")
    assert code == 2 and "environment 'staging' is not defined (dev, prod)" in err
    code, _, err = run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "staging")
    assert code == 2 and "environment 'staging' is not defined (dev, prod)" in err


def test_plan_takes_var_and_an_undeclared_one_is_exit_2(world: Path, capsys) -> None:
    load = ("load", "pipeline.yaml", "--control-table", "./ctl", "--env", "prod", "--var", "catalog=gold")
    assert run_cli(capsys, *load)[0] == 0
    plan = ("plan", "--control-table", "./ctl", "--target", "bundle:bundle", "--env", "prod")
    code, out, err = run_cli(capsys, *plan, "--var", "catalog=gold")
    assert code == 0, err
    assert "customers_daily" in out
    code, _, err = run_cli(capsys, *plan, "--var", "catalgo=gold")
    assert code == 2
    assert "--var: catalgo: is not declared under variables in any file" in err
    code, _, err = run_cli(capsys, *plan, "--var", "catalog=silver")
    assert code == 2 and "loaded with --env prod, --var catalog=gold" in err
    # load and validate reject the undeclared --var with the same message and exit code.
    code, _, err = run_cli(capsys, "validate", "pipeline.yaml", "--var", "catalgo=gold")
    assert code == 2 and "--var: catalgo: is not declared under variables in any file" in err
    code, _, err = run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--var", "catalgo=x")
    assert code == 2 and "--var: catalgo: is not declared under variables in any file" in err


def test_validate_against_the_table_reports_load_s_clash_and_writes_nothing(world: Path, capsys) -> None:
    from lakeflow_job_meta.storage import open_tables

    (world / "other.yaml").write_text(_other("orders_daily", "customers"))
    assert run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    tables = open_tables("./ctl")
    versions = [t.version() for t in tables.all()]
    # Alone, the file is valid: the clash is only with what the table holds.
    assert run_cli(capsys, "validate", "other.yaml", "--env", "prod")[0] == 0
    code, out, _ = run_cli(capsys, "validate", "other.yaml", "--control-table", "./ctl", "--env", "prod")
    assert code == 1
    code, _, load_err = run_cli(capsys, "load", "other.yaml", "--control-table", "./ctl", "--env", "prod")
    assert code == 1
    message = "duplicate source_id 'customers'"
    assert message in out and message in load_err
    clash = next(line for line in load_err.splitlines() if message in line).removeprefix("error: ")
    assert clash in out
    assert [t.version() for t in tables.all()] == versions


def test_an_environment_mode_disagreeing_with_the_table(world: Path, capsys) -> None:
    (world / "a.yaml").write_text(_other("a_daily", "a1"))
    (world / "b.yaml").write_text(_other("b_daily", "b1", prod_mode="development"))
    assert run_cli(capsys, "load", "a.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    version = (
        __import__("lakeflow_job_meta.storage", fromlist=["open_tables"])
        .open_tables("./ctl")
        .control.version()
    )
    code, out, _ = run_cli(capsys, "validate", "b.yaml", "--control-table", "./ctl", "--env", "prod")
    assert code == 1
    assert "environments.prod.mode: is development here but production in" in out
    assert str(world / "a.yaml") in out
    code, _, err = run_cli(capsys, "load", "b.yaml", "--control-table", "./ctl", "--env", "prod")
    assert code == 1 and "environments.prod.mode: is development here but production in" in err
    from lakeflow_job_meta.storage import open_tables

    assert open_tables("./ctl").control.version() == version


def test_load_with_another_env_while_other_files_keep_the_first(world: Path, capsys) -> None:
    (world / "a.yaml").write_text(_other("a_daily", "a1"))
    assert run_cli(capsys, "load", "a.yaml", "--control-table", "./ctl", "--env", "prod")[0] == 0
    code, _, err = run_cli(capsys, "load", "pipeline.yaml", "--control-table", "./ctl", "--env", "dev")
    assert code == 2
    assert "loaded with --env prod, no --var" in err and "this load asks for --env dev" in err
    code, _, err = run_cli(capsys, "validate", "pipeline.yaml", "--control-table", "./ctl", "--env", "dev")
    assert code == 2 and "this load asks for --env dev" in err


def test_a_duplicated_source_id_reports_no_self_cycle(world: Path, capsys) -> None:
    (world / "dup.yaml").write_text(
        "modules:\n  - module_name: m\n    sources:\n"
        "      - {source_id: a, source_type: x, execution_order: 1, transformation_config: {task_type: notebook, notebook_path: /W/a}}\n"
        "      - {source_id: a, source_type: x, execution_order: 2, transformation_config: {task_type: notebook, notebook_path: /W/b}}\n"
    )
    code, out, _ = run_cli(capsys, "validate", "dup.yaml")
    assert code == 1
    assert "duplicate source_id 'a'" in out
    assert "cycle" not in out
    assert "1 error(s)" in out

"""A bundle folder belongs to one control table (issue 15, "Ownership on every target").

Before: a second control table's ``plan``/``apply --target bundle:DIR`` (or a new, empty one's)
on a folder another table wrote paused that table's jobs, rewrote their files and renamed the
bundle in ``databricks.yml``. Now ``databricks.yml`` records the owner's ``ljm_table`` identity
(for an older folder it is inferred from the managed job files' ownership tags), and any other
table's ``plan``, ``apply``, ``export-bundle`` or ``monitor`` exits 2 before anything is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("deltalake")

from lakeflow_job_meta.storage.naming import control_table_id
from tests.cli_run import run_cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
OTHER_YAML = """modules:
  - module_name: other_module
    schedule: {quartz_cron_expression: "0 0 5 * * ?", timezone_id: UTC}
    sources:
      - source_id: other_task
        source_type: notebook
        execution_order: 1
        transformation_config: {task_type: notebook, notebook_path: /Workspace/Shared/other}
"""


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: SHA-256 of its bytes and its mtime (unchanged means unwritten)."""
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Tables:
    """Table ``a`` (the examples) owns ``bundle``; ``b`` has other metadata; ``c`` is new, empty."""

    def __init__(self, capsys: pytest.CaptureFixture[str], tmp_path: Path):
        self.capsys = capsys
        self.a = str(tmp_path / "a" / "etl_control")
        self.b = str(tmp_path / "b" / "etl_control")
        self.c = str(tmp_path / "c" / "etl_control")
        self.bundle = tmp_path / "bundle"
        self.target = f"bundle:{self.bundle}"
        (tmp_path / "other.yaml").write_text(OTHER_YAML, encoding="utf-8")
        assert self.cli("load", str(EXAMPLES), "--control-table", self.a)[0] == 0
        assert self.cli("load", str(tmp_path / "other.yaml"), "--control-table", self.b)[0] == 0
        assert self.cli("init", "--control-table", self.c)[0] == 0

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *argv)

    def commands(self, table: str) -> list[tuple[str, ...]]:
        """Every command that writes (or plans) a bundle folder, for ``table``."""
        return [
            ("plan", "--control-table", table, "--target", self.target),
            ("apply", "--control-table", table, "--target", self.target),
            ("apply", "--control-table", table, "--target", self.target, "--prune", "delete"),
            ("export-bundle", "--control-table", table, "--output", str(self.bundle)),
            ("monitor", "--control-table", table, "--target", self.target, "--once"),
            ("--json", "apply", "--control-table", table, "--target", self.target),
        ]

    def assert_refused(self, table: str, owner: str) -> None:
        before = tree(self.bundle)
        databricks_yml = (self.bundle / "databricks.yml").read_bytes()
        for argv in self.commands(table):
            rc, out, err = self.cli(*argv)
            assert rc == 2, (argv, out, err)
            errors = [line for line in err.splitlines() if line.startswith("error: ")]
            if "--json" in argv:
                assert '"exit_code": 2' in out
            else:
                assert out == ""
            assert len(errors) == 1, err
            assert f"belongs to control table {control_table_id(owner)}" in errors[0]
            assert f"not to {table} ({control_table_id(table)})" in errors[0]
            assert tree(self.bundle) == before, argv  # byte-identical, not even re-written
            assert (self.bundle / "databricks.yml").read_bytes() == databricks_yml


@pytest.fixture
def tables(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tables:
    monkeypatch.chdir(tmp_path)
    world = Tables(capsys, tmp_path)
    rc, _, err = world.cli("apply", "--control-table", world.a, "--target", world.target)
    assert rc == 0, err
    return world


def test_the_folder_records_its_owner(tables: Tables) -> None:
    lines = (tables.bundle / "databricks.yml").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# managed by lakeflow_job_meta")
    assert lines[1].startswith(f"# owner: ljm_table={control_table_id(tables.a)};")


def test_a_second_table_is_refused_before_anything_is_written(tables: Tables) -> None:
    tables.assert_refused(tables.b, owner=tables.a)
    # The owner still sees its own folder unchanged.
    rc, out, _ = tables.cli("plan", "--control-table", tables.a, "--target", tables.target)
    assert rc == 0 and "No changes." in out


def test_a_new_empty_table_is_refused(tables: Tables) -> None:
    tables.assert_refused(tables.c, owner=tables.a)


def test_the_same_table_twice_is_fine(tables: Tables) -> None:
    before = tree(tables.bundle)
    for argv in tables.commands(tables.a):
        rc, _, err = tables.cli(*argv)
        assert rc == 0, (argv, err)
    assert tree(tables.bundle) == before


def test_a_folder_written_before_the_owner_record_is_inferred_from_its_job_files(tables: Tables) -> None:
    path = tables.bundle / "databricks.yml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[2:]), encoding="utf-8")  # as an older version wrote it
    tables.assert_refused(tables.b, owner=tables.a)
    tables.assert_refused(tables.c, owner=tables.a)
    # Its owner claims it: the record is written back, the job files stay as they were.
    jobs = {k: v for k, v in tree(tables.bundle).items() if k != "databricks.yml"}
    rc, _, err = tables.cli("apply", "--control-table", tables.a, "--target", tables.target)
    assert rc == 0, err
    assert path.read_text(encoding="utf-8").splitlines()[1].startswith("# owner: ljm_table=")
    assert {k: v for k, v in tree(tables.bundle).items() if k != "databricks.yml"} == jobs


def test_a_folder_holding_two_tables_jobs_is_refused_to_both(tables: Tables, tmp_path: Path) -> None:
    """What the bug left behind: job files of two tables and no record. Nobody guesses."""
    other = tmp_path / "other_bundle"
    assert tables.cli("apply", "--control-table", tables.b, "--target", f"bundle:{other}")[0] == 0
    job_file = "resources/other_module.job.yml"
    (tables.bundle / job_file).write_bytes((other / job_file).read_bytes())
    path = tables.bundle / "databricks.yml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[2:]), encoding="utf-8")
    owners = ", ".join(sorted([control_table_id(tables.a), control_table_id(tables.b)]))
    for table in (tables.a, tables.b):
        rc, _, err = tables.cli("apply", "--control-table", table, "--target", tables.target)
        assert rc == 2 and f"belongs to control table {owners}, not to {table}" in err


def test_an_empty_folder_or_one_without_managed_files_is_free(tables: Tables, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = tables.cli("apply", "--control-table", tables.b, "--target", f"bundle:{empty}")
    assert rc == 0, err
    assert (empty / "resources" / "other_module.job.yml").is_file()

    hand_made = tmp_path / "hand_made"
    (hand_made / "resources").mkdir(parents=True)
    (hand_made / "resources" / "mine.job.yml").write_text("resources: {jobs: {}}\n", encoding="utf-8")
    rc, _, err = tables.cli("apply", "--control-table", tables.c, "--target", f"bundle:{hand_made}")
    assert rc == 0, err
    assert (hand_made / "resources" / "mine.job.yml").read_text(encoding="utf-8") == "resources: {jobs: {}}\n"
    assert (
        (hand_made / "databricks.yml")
        .read_text(encoding="utf-8")
        .splitlines()[1]
        .startswith(f"# owner: ljm_table={control_table_id(tables.c)};")
    )


@pytest.mark.parametrize("option", ["--control-table", "--target", "--policy"])
def test_an_empty_option_is_a_usage_error(
    option: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``--control-table ""`` fell back to the local default table, ``--target ""`` to
    ``bundle:bundle`` and ``--policy ""`` to no policy."""
    monkeypatch.chdir(tmp_path)
    argv = {"--control-table": "./ctl", "--target": "bundle:b", "--policy": str(tmp_path / "p.yaml")}
    argv[option] = ""
    rc, out, err = run_cli(capsys, "apply", *[part for pair in argv.items() for part in pair])
    assert (rc, out) == (2, "")
    assert (
        err
        == f"error: {option} is empty; give it a value or leave it out (an empty value never falls back to a default)\n"
    )
    assert list(tmp_path.iterdir()) == []

"""MetadataManager against real local Delta tables (delta-rs) in ``tmp_path``.

Covers issue 2 item 8 (parse and validate first, then one atomic write; reload writes nothing;
``load_yaml`` only adds and updates; ``sync_from_volume`` deletes within its folder only; SQL rows
are never touched) and item 9 (bad input leaves every table version as it was), plus the
monitor's per-file entry ``apply_file_changes`` and ``desired_state`` on hand-INSERTed rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("deltalake")

from lakeflow_job_meta import MetadataManager
from lakeflow_job_meta.errors import ConfigurationError, MetadataValidationError
from lakeflow_job_meta.planning.compiler import CompileContext, compile_module
from lakeflow_job_meta.storage.tables import CONTROL_SPEC
from tests.helpers.bad_inputs import CASES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
REFERENCE_COLUMNS = CONTROL_SPEC.column_names[:8]


# -- helpers ---------------------------------------------------------------------------------------


def notebook_source(source_id: str, order: int = 1, path: str | None = None) -> str:
    return (
        f"      - source_id: {source_id}\n"
        f"        source_type: x\n"
        f"        execution_order: {order}\n"
        f"        transformation_config:\n"
        f"          task_type: notebook\n"
        f"          notebook_path: {path or '/Workspace/nb/' + source_id}\n"
    )


def module_yaml(name: str, *sources: str, settings: str = "") -> str:
    return f"  - module_name: {name}\n{settings}    sources:\n" + "".join(sources)


def doc(*modules: str) -> str:
    return "modules:\n" + "".join(modules)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def versions(manager: MetadataManager) -> dict[str, int]:
    return {table.spec.kind: table.version() for table in manager.tables.all()}


def sources(manager: MetadataManager) -> dict[str, dict[str, Any]]:
    return {row["source_id"]: row for row in manager.tables.control.read_all()}


def module_rows(manager: MetadataManager) -> dict[str, dict[str, Any]]:
    return {row["module_name"]: row for row in manager.tables.modules.read_all()}


def sql_row(source_id: str, module: str, transformation: str | None = None, **extra: Any) -> dict[str, Any]:
    """A row as a user's SQL INSERT of the eight reference columns leaves it (source_file NULL)."""
    row = {
        "source_id": source_id,
        "module_name": module,
        "source_type": "sql",
        "execution_order": 1,
        "source_config": "{}",
        "target_config": json.dumps({"catalog": "bronze", "schema": "data", "table": source_id}),
        "transformation_config": transformation
        or json.dumps({"task_type": "notebook", "notebook_path": f"/Workspace/nb/{source_id}"}),
        "is_active": True,
    }
    row.update(extra)
    return row


@pytest.fixture
def manager(tmp_path: Path) -> MetadataManager:
    m = MetadataManager(str(tmp_path / "tables" / "etl_control"))
    m.ensure_exists()
    return m


# -- loading the examples ------------------------------------------------------------------------


def test_examples_load_into_rows_and_reload_writes_nothing(manager: MetadataManager) -> None:
    before = versions(manager)
    result = manager.load_yaml(str(EXAMPLES))
    assert result.changed and not result.rejected
    rows = sources(manager)
    assert result.sources_upserted == len(rows) >= 10
    assert {r["module_name"] for r in rows.values()} >= {
        "sales_daily",
        "ml_features",
        "warehouse_refresh",
        "nightly_umbrella",
        "clickstream_continuous",
        "legacy_exports",
    }
    assert all(r["source_file"] == str(EXAMPLES) for r in rows.values())
    assert all(set(r) >= set(REFERENCE_COLUMNS) for r in rows.values())
    # Every JSON column holds valid JSON; variables have been substituted.
    for row in rows.values():
        for column in ("source_config", "target_config", "transformation_config"):
            if row[column] is not None:
                json.loads(row[column])
        assert "${var." not in row["transformation_config"]
    assert module_rows(manager)["sales_daily"]["settings"]
    after_first = versions(manager)
    # One atomic write per table that changed: control and modules, one commit each.
    assert after_first["control"] == before["control"] + 1
    assert after_first["modules"] == before["modules"] + 1

    again = manager.load_yaml(str(EXAMPLES))
    assert not again.changed
    assert versions(manager) == after_first

    desired = manager.desired_state()
    assert not desired.issues, desired.issues
    assert "sales_daily" in desired.modules
    assert "legacy_exports" not in desired.modules  # inactive module
    assert "legacy_exports" in desired.known


def test_load_yaml_only_adds_and_updates(manager: MetadataManager, tmp_path: Path) -> None:
    path = write(
        tmp_path / "y" / "a.yaml", doc(module_yaml("m1", notebook_source("a"), notebook_source("b", 2)))
    )
    manager.load_yaml(path)
    write(
        tmp_path / "y" / "a.yaml",
        doc(module_yaml("m1", notebook_source("a", path="/Workspace/nb/changed"))),
    )
    result = manager.load_yaml(path)
    assert result.sources_upserted == 1 and result.sources_deleted == 0
    rows = sources(manager)
    assert set(rows) == {"a", "b"}  # b is no longer in the file but load_yaml never deletes
    assert json.loads(rows["a"]["transformation_config"])["notebook_path"] == "/Workspace/nb/changed"


def test_sync_from_volume_deletes_only_within_its_folder(manager: MetadataManager, tmp_path: Path) -> None:
    volume, other = tmp_path / "volume", tmp_path / "other"
    a = write(volume / "a.yaml", doc(module_yaml("m1", notebook_source("a1"), notebook_source("a2", 2))))
    write(volume / "sub" / "b.yaml", doc(module_yaml("m2", notebook_source("b1"))))
    o = write(other / "o.yaml", doc(module_yaml("m3", notebook_source("o1"))))
    # A sibling folder whose name starts like the volume's must not count as "under" it.
    write(tmp_path / "volume2" / "c.yaml", doc(module_yaml("m5", notebook_source("c1"))))
    manager.sync_from_volume(str(volume))
    manager.load_yaml(o)
    manager.load_from_folder(str(tmp_path / "volume2"))
    manager.tables.control.append([sql_row("by_sql", "m4")])
    assert set(sources(manager)) == {"a1", "a2", "b1", "o1", "c1", "by_sql"}

    # a2 leaves a.yaml, b.yaml is deleted altogether.
    write(volume / "a.yaml", doc(module_yaml("m1", notebook_source("a1"))))
    (volume / "sub" / "b.yaml").unlink()
    result = manager.sync_from_volume(str(volume))
    assert result.sources_deleted == 2
    assert set(sources(manager)) == {"a1", "o1", "c1", "by_sql"}
    assert sources(manager)["by_sql"]["source_file"] is None
    assert result.affected_modules == {"m1", "m2"}

    # Unchanged folder: nothing written.
    before = versions(manager)
    assert not manager.sync_from_volume(str(volume)).changed
    assert versions(manager) == before
    assert a in result.files or str(Path(a).resolve()) in result.files


def test_yaml_source_colliding_with_sql_row_is_an_error(manager: MetadataManager, tmp_path: Path) -> None:
    manager.tables.control.append([sql_row("shared_id", "sql_module")])
    before = versions(manager)
    path = write(
        tmp_path / "collide.yaml",
        doc(module_yaml("yaml_module", notebook_source("fresh"), notebook_source("shared_id", 2))),
    )
    with pytest.raises(MetadataValidationError) as info:
        manager.load_yaml(path)
    text = str(info.value)
    assert "shared_id" in text and "collide.yaml" in text
    assert versions(manager) == before
    rows = sources(manager)
    assert set(rows) == {"shared_id"} and rows["shared_id"]["module_name"] == "sql_module"
    with pytest.raises(MetadataValidationError):
        manager.sync_from_volume(str(tmp_path))
    assert versions(manager) == before


def test_one_invalid_file_among_several_writes_nothing(manager: MetadataManager, tmp_path: Path) -> None:
    good1 = write(tmp_path / "v" / "good1.yaml", doc(module_yaml("g1", notebook_source("g1a"))))
    bad = write(
        tmp_path / "v" / "bad.yaml",
        doc(module_yaml("b1", notebook_source("b1a").replace("execution_order: 1", "execution_order: -1"))),
    )
    good2 = write(tmp_path / "v" / "good2.yaml", doc(module_yaml("g2", notebook_source("g2a"))))
    before = versions(manager)
    for call in (
        lambda: manager.load_files([good1, bad, good2]),
        lambda: manager.load_from_folder(str(tmp_path / "v")),
        lambda: manager.sync_from_volume(str(tmp_path / "v")),
    ):
        with pytest.raises(MetadataValidationError) as info:
            call()
        assert len(info.value.issues) == 1
        issue = info.value.issues[0]
        assert issue.location.startswith(bad) and "execution_order" in issue.field
        assert "good1" not in str(info.value) and "good2" not in str(info.value)
        assert versions(manager) == before
    assert sources(manager) == {}


def test_oversize_and_missing_files_write_nothing(tmp_path: Path) -> None:
    manager = MetadataManager(str(tmp_path / "ctl"), max_file_bytes=300)
    manager.ensure_exists()
    good = write(tmp_path / "good.yaml", doc(module_yaml("g", notebook_source("g1"))))
    big = write(tmp_path / "big.yaml", doc(module_yaml("b", notebook_source("b1"))) + "#" * 400 + "\n")
    before = versions(manager)
    with pytest.raises(MetadataValidationError) as info:
        manager.load_files([good, big, str(tmp_path / "missing.yaml")])
    text = str(info.value)
    assert f"{big}:1: file is " in text and "over the limit of 300 bytes" in text
    assert f"{tmp_path / 'missing.yaml'}:1: cannot read file" in text
    assert versions(manager) == before
    # A folder passed as a file, and a sync of a folder holding an oversize file.
    with pytest.raises(MetadataValidationError, match="cannot read file"):
        manager.load_yaml(str(tmp_path))
    (tmp_path / "missing.yaml").write_text("")
    with pytest.raises(MetadataValidationError, match="over the limit of 300 bytes"):
        manager.sync_from_volume(str(tmp_path))
    assert versions(manager) == before


# -- the monitor's entry point -------------------------------------------------------------------


def test_apply_file_changes_rejects_a_bad_file_alone(manager: MetadataManager, tmp_path: Path) -> None:
    a, b = tmp_path / "v" / "a.yaml", tmp_path / "v" / "b.yaml"
    write(a, doc(module_yaml("ma", notebook_source("a1"))))
    write(b, doc(module_yaml("mb", notebook_source("b1"))))
    manager.sync_from_volume(str(tmp_path / "v"))

    bad_bytes = b"modules: [\n  {module_name: ma,\n"
    good_bytes = doc(module_yaml("mb", notebook_source("b1"), notebook_source("b2", 2))).encode()
    result = manager.apply_file_changes({str(a): bad_bytes, str(b): good_bytes}, [])
    assert set(result.rejected) == {str(a)}
    assert "invalid YAML" in str(result.rejected[str(a)][0])
    assert result.files == [str(b)]
    rows = sources(manager)
    assert set(rows) == {"a1", "b1", "b2"}  # a's previous rows intact
    assert rows["a1"]["source_file"] == str(a)
    assert result.affected_modules == {"mb"}


def test_apply_file_changes_deleted_file_and_cross_file_duplicate(
    manager: MetadataManager, tmp_path: Path
) -> None:
    a, b, c = (tmp_path / "v" / n for n in ("a.yaml", "b.yaml", "c.yaml"))
    write(a, doc(module_yaml("ma", notebook_source("a1"))))
    write(b, doc(module_yaml("mb", notebook_source("b1"))))
    manager.sync_from_volume(str(tmp_path / "v"))
    # c.yaml claims a1, which a.yaml still holds: c is rejected, b's deletion goes through.
    c_bytes = doc(module_yaml("mc", notebook_source("a1"))).encode()
    result = manager.apply_file_changes({str(c): c_bytes}, [str(b)])
    assert set(result.rejected) == {str(c)}
    assert "a1" in str(result.rejected[str(c)])
    assert set(sources(manager)) == {"a1"}
    assert sources(manager)["a1"]["module_name"] == "ma"
    assert result.sources_deleted == 1


def test_source_moves_from_one_file_to_another_in_one_sync(manager: MetadataManager, tmp_path: Path) -> None:
    a, b = tmp_path / "v" / "a.yaml", tmp_path / "v" / "b.yaml"
    write(a, doc(module_yaml("m", notebook_source("s1"), notebook_source("moving", 2))))
    write(b, doc(module_yaml("n", notebook_source("t1"))))
    manager.sync_from_volume(str(tmp_path / "v"))
    assert sources(manager)["moving"]["source_file"] == str(a)

    write(a, doc(module_yaml("m", notebook_source("s1"))))
    write(b, doc(module_yaml("n", notebook_source("t1"), notebook_source("moving", 2))))
    result = manager.sync_from_volume(str(tmp_path / "v"))
    rows = sources(manager)
    assert set(rows) == {"s1", "t1", "moving"}
    assert rows["moving"]["source_file"] == str(b) and rows["moving"]["module_name"] == "n"
    assert result.sources_deleted == 0 and result.sources_upserted == 1
    assert result.affected_modules == {"m", "n"}

    # The same move through the monitor's entry point, back again.
    a_bytes = doc(module_yaml("m", notebook_source("s1"), notebook_source("moving", 2))).encode()
    b_bytes = doc(module_yaml("n", notebook_source("t1"))).encode()
    result = manager.apply_file_changes({str(a): a_bytes, str(b): b_bytes}, [])
    assert not result.rejected
    assert sources(manager)["moving"]["source_file"] == str(a)


def test_module_settings_rows_written_and_deleted(manager: MetadataManager, tmp_path: Path) -> None:
    settings = "    tags: {team: data}\n    max_concurrent_runs: 2\n"
    path = tmp_path / "v" / "m.yaml"
    write(path, doc(module_yaml("m", notebook_source("s1"), settings=settings)))
    result = manager.sync_from_volume(str(tmp_path / "v"))
    assert result.modules_upserted == 1
    row = module_rows(manager)["m"]
    assert json.loads(row["settings"]) == {"tags": {"team": "data"}, "max_concurrent_runs": 2}
    assert row["source_file"] == str(path)
    assert manager.desired_state().modules["m"].settings["tags"] == {"team": "data"}

    # Unchanged: no write. Settings changed: one update. Settings removed: row deleted.
    before = versions(manager)
    assert not manager.sync_from_volume(str(tmp_path / "v")).changed
    assert versions(manager) == before
    write(path, doc(module_yaml("m", notebook_source("s1"), settings="    max_concurrent_runs: 3\n")))
    assert manager.sync_from_volume(str(tmp_path / "v")).modules_upserted == 1
    assert json.loads(module_rows(manager)["m"]["settings"]) == {"max_concurrent_runs": 3}
    write(path, doc(module_yaml("m", notebook_source("s1"))))
    result = manager.sync_from_volume(str(tmp_path / "v"))
    assert result.modules_deleted == 1 and module_rows(manager) == {}

    # A module settings row INSERTed by SQL is never deleted by a sync.
    # (A YAML module of the same name would be an error: YAML never overwrites SQL rows.)
    manager.tables.modules.append([{"module_name": "by_sql", "settings": '{"tags": {"by": "sql"}}'}])
    before = versions(manager)
    assert not manager.sync_from_volume(str(tmp_path / "v")).changed
    assert versions(manager) == before
    assert module_rows(manager)["by_sql"]["source_file"] is None


# -- the desired state from hand-written rows ------------------------------------------------------


def test_invalid_json_in_an_inserted_row_skips_only_that_module(
    manager: MetadataManager, tmp_path: Path
) -> None:
    manager.load_yaml(str(EXAMPLES))
    manager.tables.control.append(
        [
            sql_row("broken", "bad_module", transformation='{"task_type": "notebook", "notebook_path": '),
            sql_row("fine", "good_sql_module"),
        ]
    )
    desired = manager.desired_state()
    assert set(desired.issues) == {"bad_module"}
    issue = desired.issues["bad_module"][0]
    assert issue.location == f"table {manager.control_table} source_id=broken"
    assert issue.field == "transformation_config"
    assert "JSON" in issue.message or "json" in issue.message
    assert "bad_module" not in desired.modules and "bad_module" in desired.known
    assert {"good_sql_module", "sales_daily", "ml_features"} <= set(desired.modules)

    # A YAML load still works beside the broken row (it is not one of the file's rows).
    path = write(tmp_path / "more.yaml", doc(module_yaml("more", notebook_source("more1"))))
    assert manager.load_yaml(path).sources_upserted == 1


def test_a_row_with_only_the_reference_columns_gives_a_working_task(
    manager: MetadataManager, tmp_path: Path
) -> None:
    from deltalake import write_deltalake

    from lakeflow_job_meta.storage.delta_rs import arrow_schema

    row = {name: None for name in CONTROL_SPEC.column_names}
    row.update(
        sql_row(
            "sql_task_1",
            "my_pipeline",
            transformation=json.dumps(
                {
                    "task_type": "sql_query",
                    "sql_task": {"warehouse_id": "abc123", "sql_query": "SELECT * FROM bronze.customers"},
                }
            ),
        )
    )
    assert all(row[c] is None for c in CONTROL_SPEC.column_names[8:])
    import pyarrow as pa

    write_deltalake(
        manager.tables.control.path,
        pa.Table.from_pylist([row], schema=arrow_schema(CONTROL_SPEC)),
        mode="append",
    )
    stored = sources(manager)["sql_task_1"]
    assert stored["created_at"] is None and stored["source_file"] is None

    desired = manager.desired_state()
    assert not desired.issues
    module = desired.modules["my_pipeline"]
    context = CompileContext(
        control_table=manager.control_table,
        control_table_id="etl_control",
        managed_sql_root="/Workspace/Shared/lakeflow_job_meta/etl_control",
    )
    compiled = compile_module(module, context)
    assert not compiled.issues and compiled.job is not None
    (task,) = compiled.job.settings["tasks"]
    assert task["task_key"] == "sql_task_1"
    assert task["sql_task"]["warehouse_id"] == "abc123"
    assert compiled.job.managed_files  # the inline query became a managed .sql file
    assert "SELECT * FROM bronze.customers" in next(iter(compiled.job.managed_files.values()))


# -- acceptance: the bad-input corpus leaves every table version as it was --------------------


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> MetadataManager:
    """One table holding the examples, a SQL-inserted row and a modules row; shared by the corpus."""
    root = tmp_path_factory.mktemp("corpus")
    m = MetadataManager(str(root / "etl_control"))
    m.ensure_exists()
    m.load_yaml(str(EXAMPLES))
    m.tables.control.append([sql_row("sql_only", "sql_module")])
    m.tables.jobs.merge([{"target": "bundle:x", "module_name": "sales_daily", "job_id": 1}])
    m.tables.history.append([{"run_id": "r", "module_name": "sales_daily", "action": "create"}])
    m.tables.state.merge([{"scope": "s", "key": "k", "value": "{}"}])
    return m


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_leaves_every_table_version_unchanged(
    case: Any, populated: MetadataManager, tmp_path: Path
) -> None:
    path = tmp_path / f"{case.id}.yaml"
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    manager = populated
    kwargs = dict(case.kwargs)
    if "max_bytes" in kwargs:
        manager = MetadataManager(
            populated.control_table, tables=populated.tables, max_file_bytes=kwargs.pop("max_bytes")
        )
    before = versions(manager)
    rows_before = sources(manager)
    # An --env no file declares is a usage error (exit 2), not a metadata error.
    expected = ConfigurationError if case.id == "unknown_environment" else MetadataValidationError
    with pytest.raises(expected) as info:
        manager.load_yaml(str(path), env=kwargs.pop("env", None), **kwargs)
    assert (case.message if expected is ConfigurationError else str(path)) in str(info.value)
    assert versions(manager) == before
    assert sources(manager) == rows_before


# -- a folder that cannot be seen is not an empty folder ------------------------------------------


def test_sync_of_a_missing_folder_deletes_nothing(manager: MetadataManager, tmp_path: Path) -> None:
    from lakeflow_job_meta.errors import ConfigurationError

    volume = tmp_path / "volume"
    write(volume / "a.yaml", doc(module_yaml("m", notebook_source("a1"))))
    manager.sync_from_volume(str(volume))
    before = versions(manager)
    (volume / "a.yaml").unlink()
    volume.rmdir()  # e.g. the volume is not mounted
    with pytest.raises(ConfigurationError, match="does not exist"):
        manager.sync_from_volume(str(volume))
    with pytest.raises(ConfigurationError, match="does not exist"):
        manager.load_from_folder(str(volume))
    write(volume, "not a folder")
    with pytest.raises(ConfigurationError, match="is not a folder"):
        manager.sync_from_volume(str(volume))
    assert versions(manager) == before
    assert set(sources(manager)) == {"a1"}


def test_sync_with_an_unlistable_subfolder_deletes_nothing(
    manager: MetadataManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from lakeflow_job_meta.engine import metadata_manager
    from lakeflow_job_meta.errors import ConfigurationError

    volume = tmp_path / "volume"
    write(volume / "a.yaml", doc(module_yaml("m", notebook_source("a1"))))
    write(volume / "team" / "b.yaml", doc(module_yaml("n", notebook_source("b1"))))
    manager.sync_from_volume(str(volume))
    before = versions(manager)
    real_walk = os.walk

    def walk(top, onerror=None, **kwargs):
        for current, dirs, files in real_walk(top, onerror=onerror, **kwargs):
            if current.endswith("team"):
                onerror(PermissionError(13, "Permission denied", current))
                continue
            yield current, dirs, files

    monkeypatch.setattr(metadata_manager.os, "walk", walk)
    with pytest.raises(ConfigurationError, match=r"cannot list .*team: Permission denied"):
        manager.sync_from_volume(str(volume))
    assert versions(manager) == before
    assert set(sources(manager)) == {"a1", "b1"}


def test_hidden_and_editor_files_are_not_metadata(manager: MetadataManager, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    write(volume / "a.yaml", doc(module_yaml("m", notebook_source("a1"))))
    for name in (".hidden.yaml", "~a.yaml", "a.yaml.swp", ".git/x.yaml", "notes.txt"):
        write(volume / name, "modules: [\n")  # invalid: would fail the sync if it were read
    result = manager.sync_from_volume(str(volume))
    assert result.files == [str(volume / "a.yaml")]


@pytest.mark.parametrize("relative", [False, True])
def test_yaml_never_overwrites_an_invalid_sql_row(
    manager: MetadataManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool
) -> None:
    """A row INSERTed by SQL that does not even parse (only three columns, broken JSON) still
    owns its key: a YAML source or module of that name is an error and nothing is written."""
    manager.tables.control.append(
        [{"source_id": "half_row", "module_name": "sql_mod", "transformation_config": "{", "is_active": True}]
    )
    manager.tables.modules.append([{"module_name": "sql_settings", "settings": "[not json"}])
    before = versions(manager)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "s.yaml", doc(module_yaml("yaml_mod", notebook_source("half_row"))))
    write(tmp_path / "m.yaml", doc(module_yaml("sql_settings", notebook_source("fresh"))))
    for name, expected in (
        (
            "s.yaml",
            f"s.yaml:4: source_id 'half_row' already exists in table {manager.control_table} "
            "(inserted by SQL); YAML never overwrites such rows",
        ),
        ("m.yaml", "module 'sql_settings' already exists in table"),
    ):
        path = name if relative else str(tmp_path / name)
        with pytest.raises(MetadataValidationError) as info:
            manager.load_yaml(path)
        assert expected in str(info.value)
        assert versions(manager) == before
    # The monitor's entry rejects the file alone.
    result = manager.apply_file_changes({str(tmp_path / "s.yaml"): (tmp_path / "s.yaml").read_bytes()}, [])
    assert set(result.rejected) == {str(tmp_path / "s.yaml")} and not result.changed
    assert versions(manager) == before
    assert sources(manager)["half_row"]["module_name"] == "sql_mod"


# -- scoped desired state (the monitor's one-module cycles) --------------------------------------


def _table_row(source_id: str, module: str, config: dict) -> dict:
    return {
        "source_id": source_id,
        "module_name": module,
        "source_type": "job",
        "execution_order": 1,
        "source_config": "{}",
        "target_config": "{}",
        "transformation_config": json.dumps(config),
        "is_active": True,
        "source_file": None,
    }


def test_a_scoped_desired_state_reads_the_scope_and_the_modules_its_run_job_tasks_name() -> None:
    from lakeflow_job_meta.engine.metadata_manager import desired_state_from_rows

    notebook = {"task_type": "notebook", "notebook_path": "/Workspace/nb"}
    rows = [
        _table_row("a1", "a", {"task_type": "run_job", "run_job_task": {"module_name": "b"}}),
        _table_row("b1", "b", {"task_type": "run_job", "run_job_task": {"module_name": "c"}}),
        _table_row("c1", "c", notebook),
        _table_row("d1", "d", notebook),
        _table_row("e1", "e", {"task_type": "notebook"}),  # invalid, but out of scope
    ]
    state = desired_state_from_rows(
        rows, [], control_table="ctl", modules_table="ctl_modules", only_modules={"a"}
    )
    assert sorted(state.modules) == ["a", "b", "c"]
    assert state.issues == {}
    assert state.known == {"a", "b", "c", "d", "e"}
    whole = desired_state_from_rows(rows, [], control_table="ctl", modules_table="ctl_modules")
    assert sorted(whole.modules) == ["a", "b", "c", "d"]
    assert list(whole.issues) == ["e"]

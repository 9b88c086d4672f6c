"""Migration from the committed schema-version-1 tables (tests/fixtures/old_schema)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.tables import CONTROL_SPEC, JOBS_SPEC, MODULES_SPEC, SCHEMA_VERSION_PROPERTY

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "old_schema" / "tables"
WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def old_tables(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "tables")
    return open_tables(str(tmp_path / "tables" / "control"), actor="migrator")


def test_fixture_is_version_1(old_tables):
    for table in old_tables.all():
        assert DeltaTable(table.path).metadata().configuration[SCHEMA_VERSION_PROPERTY] == "1"
    names = set(DeltaTable(old_tables.jobs.path).schema().to_arrow().names)
    assert "managed_files" not in names
    assert "created_by" not in set(DeltaTable(old_tables.control.path).schema().to_arrow().names)


def test_reading_an_unmigrated_table_gives_none_for_new_columns(old_tables):
    rows = {r["source_id"]: r for r in old_tables.control.read_all()}
    assert rows["orders_ingest"]["created_by"] is None
    assert rows["orders_ingest"]["created_at"] == WHEN


def test_migration_adds_columns_and_keeps_rows(old_tables):
    before = {t.spec.kind: t.version() for t in old_tables.all()}
    old_tables.ensure_exists()
    for table, spec in (
        (old_tables.control, CONTROL_SPEC),
        (old_tables.modules, MODULES_SPEC),
        (old_tables.jobs, JOBS_SPEC),
    ):
        dt = DeltaTable(table.path)
        names = dt.schema().to_arrow().names
        # Added columns go last; the reference's columns keep their positions.
        assert sorted(names) == sorted(spec.column_names)
        assert names[:3] == list(spec.column_names[:3])
        assert dt.metadata().configuration[SCHEMA_VERSION_PROPERTY] == "2"
        assert table.version() > before[spec.kind]
    control_names = DeltaTable(old_tables.control.path).schema().to_arrow().names
    assert control_names[:8] == list(CONTROL_SPEC.column_names[:8])
    rows = {r["source_id"]: r for r in old_tables.control.read_all()}
    assert set(rows) == {"orders_ingest", "orders_clean"}
    assert rows["orders_ingest"]["created_at"] == WHEN
    assert rows["orders_ingest"]["created_by"] is None and rows["orders_ingest"]["source_file"] is None
    assert rows["orders_clean"]["is_active"] is False
    (job,) = old_tables.jobs.read_all()
    assert job["job_id"] == 123 and job["managed_files"] is None
    (module,) = old_tables.modules.read_all()
    assert module["settings"] == "{}" and module["updated_at"] is None
    # Migrating twice is a no-op.
    after = {t.spec.kind: t.version() for t in old_tables.all()}
    old_tables.ensure_exists()
    assert {t.spec.kind: t.version() for t in old_tables.all()} == after


def test_writes_after_migration(old_tables):
    old_tables.ensure_exists()
    base = old_tables.control.version()
    old_tables.control.merge(
        [
            {
                "source_id": "orders_ingest",
                "module_name": "sales_daily",
                "source_type": "sql",
                "execution_order": 3,
                "source_config": "{}",
                "target_config": "{}",
                "transformation_config": "{}",
                "is_active": True,
            }
        ]
    )
    row = next(r for r in old_tables.control.read_all() if r["source_id"] == "orders_ingest")
    assert row["execution_order"] == 3
    assert row["created_at"] == WHEN  # kept from the old row
    assert row["created_by"] is None  # created before the column existed; an update keeps it
    assert row["updated_by"] == "migrator"
    changes = old_tables.control.changes_since(base)
    assert {c["_change_type"] for c in changes} == {"update_preimage", "update_postimage"}
    old_tables.jobs.merge([{"target": "dev", "module_name": "sales_daily", "managed_files": '{"a":"1"}'}])
    (job,) = old_tables.jobs.read_all()
    assert job["managed_files"] == '{"a":"1"}' and job["job_id"] == 123


def test_interrupted_migration_resumes(old_tables):
    """Columns added but the version property not yet bumped (a crash between the commits)."""
    import deltalake

    dt = DeltaTable(old_tables.jobs.path)
    dt.alter.add_columns([deltalake.Field("managed_files", "string", nullable=True)])
    old_tables.jobs.create_or_migrate()
    dt = DeltaTable(old_tables.jobs.path)
    assert dt.metadata().configuration[SCHEMA_VERSION_PROPERTY] == "2"
    assert sorted(dt.schema().to_arrow().names) == sorted(JOBS_SPEC.column_names)


def test_newer_schema_version_is_left_alone(old_tables, caplog):
    old_tables.ensure_exists()
    DeltaTable(old_tables.state.path).alter.set_table_properties(
        {SCHEMA_VERSION_PROPERTY: "9"}, raise_if_not_exists=False
    )
    v = old_tables.state.version()
    old_tables.state.create_or_migrate()
    assert old_tables.state.version() == v
    assert "newer" in caplog.text

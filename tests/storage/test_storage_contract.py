"""One storage contract, run against both adapters: delta-rs on a temp folder, and Spark + Delta
Lake (the session-wide local Spark of tests/conftest.py) on ``spark_catalog.default`` tables.

Every test here gets a ``backend`` and must pass on both; what only one backend has (SQL INSERT
forms, the Spark reader options) is tested below the contract, marked ``spark``.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lakeflow_job_meta.engine.lease import Lease
from lakeflow_job_meta.storage import open_tables
from lakeflow_job_meta.storage.base import Table
from lakeflow_job_meta.storage.naming import control_table_id
from lakeflow_job_meta.storage.tables import (
    CDF_PROPERTY,
    CONTROL_SPEC,
    JOBS_SPEC,
    SCHEMA_VERSION_PROPERTY,
    SPECS,
    ToolTables,
)
from tests.fakes import FakeClock
from tests.storage.rows import source

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "old_schema" / "tables"


@dataclass
class Backend:
    kind: str
    root: Path
    spark: Any = None

    def name(self) -> str:
        """A fresh control-table reference on this backend."""
        suffix = uuid.uuid4().hex[:8]
        if self.kind == "delta_rs":
            return str(self.root / f"ctl_{suffix}")
        return f"spark_catalog.default.ctl_{suffix}"

    def tables(self, name: str | None = None) -> ToolTables:
        return open_tables(name or self.name(), actor="contract", spark=self.spark)

    def properties(self, table: Any) -> dict[str, str]:
        if self.kind == "delta_rs":
            from deltalake import DeltaTable

            return dict(DeltaTable(table.path).metadata().configuration)
        return table._properties()

    def columns(self, table: Any) -> list[str]:
        if self.kind == "delta_rs":
            from deltalake import DeltaTable

            return list(DeltaTable(table.path).schema().to_arrow().names)
        return list(self.spark.table(table.ref.sql_name).columns)

    def optimize(self, table: Any) -> None:
        """Compact the table's files: a version that changes no row."""
        if self.kind == "delta_rs":
            from deltalake import DeltaTable

            DeltaTable(table.path).optimize.compact()
        else:
            self.spark.sql(f"OPTIMIZE {table.ref.sql_name}")

    def old_schema(self) -> ToolTables:
        """The committed schema-version-1 tables, opened through this backend."""
        copy = self.root / f"old_{uuid.uuid4().hex[:8]}"
        shutil.copytree(FIXTURE, copy)
        if self.kind == "delta_rs":
            return self.tables(str(copy / "control"))
        from lakeflow_job_meta.storage.spark import sql_string

        name = self.name()
        for _spec, suffix in SPECS.values():
            location = sql_string(str(copy / f"control{suffix}"))
            self.spark.sql(f"CREATE TABLE {name}{suffix} USING DELTA LOCATION {location}")
        return self.tables(name)


def create(tables: ToolTables, *kinds: str) -> ToolTables:
    """Create only the tables a test uses (each costs several statements on Spark)."""
    for kind in kinds:
        seed = [tables.lease_seed()] if kind == "state" else []
        getattr(tables, kind).create_or_migrate(seed=seed)
    return tables


@pytest.fixture(params=["delta_rs", pytest.param("spark", marks=pytest.mark.spark)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "delta_rs":
        return Backend("delta_rs", tmp_path)
    return Backend("spark", tmp_path, spark=request.getfixturevalue("spark"))


# -- the contract --------------------------------------------------------------------------------


def test_create_with_properties_cdf_and_the_seeded_lease_row(backend: Backend) -> None:
    name = backend.name()
    tables = backend.tables(name)
    assert not tables.exists()
    tables.ensure_exists()
    assert tables.exists()
    for table in tables.all():
        props = backend.properties(table)
        assert props[SCHEMA_VERSION_PROPERTY] == "2", table.name
        assert (props.get(CDF_PROPERTY) == "true") is table.spec.change_data_feed, table.name
        assert backend.columns(table) == list(table.spec.column_names)
    # The lease row exists from the start, free (value NULL), exactly once.
    (seed,) = tables.state.read_all()
    assert (seed["scope"], seed["key"], seed["value"]) == (control_table_id(name), "lease", None)
    before = {t.spec.kind: t.version() for t in tables.all()}
    backend.tables(name).ensure_exists()  # again, through new objects: nothing to do
    assert {t.spec.kind: t.version() for t in tables.all()} == before
    assert len(tables.state.read_all()) == 1


def test_read_matching_reads_the_rows_of_some_modules_as_read_all_shapes_them(backend: Backend) -> None:
    tables = create(backend.tables(), "control")
    ctl = tables.control
    ctl.merge([source("a"), source("b", module_name="m2"), source("c", module_name="m3")])
    every = {r["source_id"]: r for r in ctl.read_all()}
    some = ctl.read_matching("module_name", ["m2", "m3", "absent"])
    assert sorted(r["source_id"] for r in some) == ["b", "c"]
    assert all(row == every[row["source_id"]] for row in some)
    assert ctl.read_matching("module_name", []) == []


def test_versions_merge_and_change_feed(backend: Backend) -> None:
    tables = create(backend.tables(), "control", "jobs")
    ctl = tables.control
    v0 = ctl.version()
    assert ctl.changes_since(v0) == []
    assert ctl.merge([source("a"), source("b", module_name="m2")]) is True
    assert ctl.version() == v0 + 1
    inserted = ctl.changes_since(v0)
    assert sorted((c["source_id"], c["_change_type"], c["_commit_version"]) for c in inserted) == [
        ("a", "insert", v0 + 1),
        ("b", "insert", v0 + 1),
    ]
    created = {r["source_id"]: r for r in ctl.read_all()}
    assert created["a"]["created_by"] == "contract" and created["a"]["created_at"] is not None

    # Upsert and delete in ONE commit; the update keeps created_* and sets updated_*.
    assert ctl.merge([source("a", execution_order=7)], [{"source_id": "b"}]) is True
    assert ctl.version() == v0 + 2
    changes = ctl.changes_since(v0 + 1)
    assert sorted((c["source_id"], c["_change_type"]) for c in changes) == [
        ("a", "update_postimage"),
        ("a", "update_preimage"),
        ("b", "delete"),
    ]
    assert {c["_commit_version"] for c in changes} == {v0 + 2}
    (row,) = ctl.read_all()
    assert row["execution_order"] == 7 and row["created_at"] == created["a"]["created_at"]
    assert row["updated_at"] >= row["created_at"] and row["updated_at"].utcoffset().total_seconds() == 0

    # Deleting an absent key writes nothing; a composite key works.
    assert ctl.merge([], [{"source_id": "zz"}]) is False
    assert ctl.version() == v0 + 2
    assert tables.jobs.merge([{"target": "dev", "module_name": "m1", "job_id": 5}]) is True
    assert tables.jobs.merge([{"target": "prod", "module_name": "m1", "job_id": 6}]) is True
    assert sorted((r["target"], r["job_id"]) for r in tables.jobs.read_all()) == [("dev", 5), ("prod", 6)]
    assert tables.jobs.changes_since(tables.jobs.version() - 1) is None  # no feed on the jobs table


def test_snapshot_id_names_one_state_of_one_table(backend: Backend) -> None:
    """What the desired-state cache is keyed by: it moves with every commit, and a table dropped
    and created again under the same name never repeats an old id."""
    name = backend.name()
    tables = create(backend.tables(name), "control")
    first = tables.control.snapshot_id()
    assert first == backend.tables(name).control.snapshot_id()  # stable across readers
    assert first.endswith(f"@{tables.control.version()}")
    tables.control.merge([source("a")])
    second = tables.control.snapshot_id()
    assert second != first and second.split("@")[0] == first.split("@")[0]
    if backend.kind == "delta_rs":
        shutil.rmtree(tables.control.path)
    else:
        backend.spark.sql(f"DROP TABLE {tables.control.ref.sql_name}")
    again = create(backend.tables(name), "control")
    again.control.merge([source("a")])
    assert again.control.snapshot_id() not in (first, second)


def test_migration_of_the_old_schema_fixture(backend: Backend) -> None:
    tables = backend.old_schema()
    before = {t.spec.kind: t.version() for t in tables.all()}
    assert backend.properties(tables.control)[SCHEMA_VERSION_PROPERTY] == "1"
    tables.ensure_exists()
    for table in tables.all():
        assert sorted(backend.columns(table)) == sorted(table.spec.column_names), table.name
        assert backend.properties(table)[SCHEMA_VERSION_PROPERTY] == "2"
    assert backend.columns(tables.control)[:8] == list(CONTROL_SPEC.column_names[:8])
    assert tables.control.version() > before["control"]
    rows = {r["source_id"]: r for r in tables.control.read_all()}
    assert set(rows) == {"orders_ingest", "orders_clean"}
    assert rows["orders_ingest"]["created_by"] is None and rows["orders_clean"]["is_active"] is False
    (job,) = tables.jobs.read_all()
    assert job["job_id"] == 123 and job["managed_files"] is None
    assert backend.columns(tables.jobs) == [*JOBS_SPEC.column_names[:-2], "updated_at", "managed_files"]
    # A table created before seeding gets its lease row on migration, once.
    leases = [r for r in tables.state.read_all() if r["key"] == "lease"]
    assert [r["scope"] for r in leases] == [control_table_id(tables.reference)]
    after = {t.spec.kind: t.version() for t in tables.all()}
    backend.tables(tables.reference.name).ensure_exists()
    assert {t.spec.kind: t.version() for t in tables.all()} == after
    # Writes after the migration fill the new columns.
    tables.control.merge([source("orders_ingest", module_name="sales_daily", execution_order=3)])
    row = next(r for r in tables.control.read_all() if r["source_id"] == "orders_ingest")
    assert row["execution_order"] == 3 and row["updated_by"] == "contract"


def race(leases: list[Lease]) -> dict[str, bool]:
    """``try_acquire`` on every lease at once (threads released by one barrier)."""
    barrier = threading.Barrier(len(leases))
    won: dict[str, bool] = {}
    errors: list[BaseException] = []

    def contend(lease: Lease) -> None:
        try:
            barrier.wait(timeout=60)
            won[lease.holder_id] = lease.try_acquire()
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return won


def test_lease_compare_and_set_with_two_concurrent_writers(backend: Backend) -> None:
    """Two writers, each with its own table objects, race for the seeded lease row: exactly one
    wins each round, the row names it, and there is still exactly one lease row."""
    name = backend.name()
    create(backend.tables(name), "state")
    clock = FakeClock()
    scope = control_table_id(name)
    leases = [
        Lease(backend.tables(name).state, holder_id=holder, scope=scope, clock=clock) for holder in "AB"
    ]
    rounds = 2 if backend.kind == "spark" else 4
    for round_no in range(rounds):
        won = race(leases)
        winners = [holder for holder, ok in won.items() if ok]
        assert len(winners) == 1, (round_no, won)
        winner = next(lease for lease in leases if lease.holder_id == winners[0])
        loser = next(lease for lease in leases if lease is not winner)
        info = loser.holder_info()
        assert info is not None and info.holder == winner.holder_id and info.generation == round_no + 1
        assert not loser.try_acquire()  # live and someone else's
        rows = [r for r in backend.tables(name).state.read_all() if r["key"] == "lease"]
        assert len(rows) == 1
        assert winner.release()


def test_maintenance_only_versions_are_idle(backend: Backend) -> None:
    tables = create(backend.tables(), "control")
    ctl: Table = tables.control
    ctl.merge([source("a")])
    ctl.merge([source("b")])  # a second data file, so OPTIMIZE has something to compact
    v = ctl.version()
    rows = sorted(r["source_id"] for r in ctl.read_all())
    backend.optimize(ctl)
    assert ctl.version() == v + 1
    assert ctl.history(1)[0].operation == "OPTIMIZE"
    assert ctl.maintenance_only(v, v + 1) is True
    assert ctl.maintenance_only(v - 1, v + 1) is False  # includes the second MERGE
    assert ctl.maintenance_only(v + 1, v + 1) is False  # an empty range proves nothing
    assert ctl.changes_since(v) == []  # and the feed agrees: no row changed
    assert sorted(r["source_id"] for r in ctl.read_all()) == rows


# -- Spark only ----------------------------------------------------------------------------------


@pytest.fixture
def spark_backend(spark: Any, tmp_path: Path) -> Backend:
    return Backend("spark", tmp_path, spark=spark)


def _reference_insert(name: str, source_id: str, tail: str = "", columns: bool = False) -> str:
    cols = "(" + ", ".join(f"`{c}`" for c in CONTROL_SPEC.column_names[:8]) + ") " if columns else ""
    values = f"'{source_id}', 'm', 'sql', 1, '{{}}', '{{}}', '{{}}', true{tail}"
    return f"INSERT INTO {name} {cols}VALUES ({values})"


@pytest.mark.spark
def test_user_insert_forms_on_delta(spark_backend: Backend) -> None:
    """The INSERT forms the README documents, on a Delta control table created by the tool."""
    spark = spark_backend.spark
    tables = create(spark_backend.tables(), "control")
    name = tables.control.ref.sql_name
    v = tables.control.version()
    spark.sql(_reference_insert(name, "named", columns=True))
    spark.sql(_reference_insert(name, "positional", tail=", DEFAULT, DEFAULT, DEFAULT, DEFAULT, DEFAULT"))
    with pytest.raises(Exception, match="ARITY_MISMATCH"):  # DELTA_INSERT_COLUMN_ARITY_MISMATCH
        spark.sql(_reference_insert(name, "eight"))
    rows = {r["source_id"]: r for r in tables.control.read_all()}
    assert set(rows) == {"named", "positional"}
    for row in rows.values():
        assert row["created_at"] is not None and row["updated_at"] is not None
        assert row["created_by"] and row["updated_by"] and row["source_file"] is None
    # The monitor sees both through the change feed.
    assert sorted(c["source_id"] for c in tables.control.changes_since(v)) == ["named", "positional"]


@pytest.mark.spark
def test_change_feed_uses_the_reader_options_and_warns_once(
    spark_backend: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spark = spark_backend.spark
    tables = create(spark_backend.tables(), "control", "modules")
    tables.modules.merge([{"module_name": "m", "settings": "{}", "is_active": True}])
    statements: list[str] = []
    original = spark.sql

    def recording(query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return original(query, *args, **kwargs)

    monkeypatch.setattr(spark, "sql", recording)
    changes = tables.modules.changes_since(tables.modules.version() - 1)
    assert [(c["module_name"], c["_change_type"]) for c in changes] == [("m", "insert")]
    assert statements and not [q for q in statements if "table_changes" in q]
    # A feed that cannot answer: a full read, said once at WARNING, then quietly.
    tables.control.merge([source("a")])
    with caplog.at_level("DEBUG", logger="lakeflow_job_meta.storage.spark"):
        assert tables.control.changes_since(-5) is None  # before version 0
        assert tables.control.changes_since(-5) is None
    fallbacks = [r for r in caplog.records if "falling back to a full read" in r.getMessage()]
    assert [r.levelname for r in fallbacks] == ["WARNING", "DEBUG"]


@pytest.mark.spark
def test_active_session_falls_back_to_the_builder(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Used as a library there may be no active session in this thread; the builder then
    returns the existing one instead of failing."""
    from pyspark.sql import SparkSession

    from lakeflow_job_meta.storage.spark import active_session

    calls: list[bool] = []

    def no_active() -> None:
        calls.append(True)

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(no_active))
    assert active_session() is spark
    assert calls == [True]


def test_the_runs_table_keeps_runs_by_id_and_deletes_old_ones(backend: Backend) -> None:
    """The optional runs table (issue 18) on both backends: not part of the five, created when
    asked, upserted by run id, timestamps and doubles round-trip, deleted by key (retention)."""
    from datetime import datetime, timezone

    from lakeflow_job_meta.storage.rows import RunRow

    tables = backend.tables()
    tables.ensure_exists()
    assert tables.runs not in tables.all() and not tables.runs.exists()
    tables.runs.create_or_migrate()
    started = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
    active = RunRow(run_id=2**60, job_id=2**55, module_name="m", target="workspace:h", started_at=started)
    assert tables.runs.merge([active.as_row()]) is True
    done = RunRow(
        run_id=2**60, job_id=2**55, module_name="m", target="workspace:h", started_at=started,
        ended_at=started, life_cycle_state="TERMINATED", result_state="FAILED", duration_seconds=12.5,
        error="cell 3: KeyError",
    )  # fmt: skip
    tables.runs.merge([done.as_row()])
    (row,) = tables.runs.read_all()
    assert (row["run_id"], row["job_id"], row["result_state"], row["duration_seconds"]) == (
        2**60, 2**55, "FAILED", 12.5,
    )  # fmt: skip
    assert row["started_at"] == started and row["updated_at"] is not None
    assert tables.runs.merge(deletes=[{"run_id": 2**60}]) is True
    assert tables.runs.read_all() == []

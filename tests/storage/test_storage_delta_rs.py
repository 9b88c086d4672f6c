"""The delta-rs backend against real Delta tables in tmp_path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakeflow_job_meta.errors import MissingDependencyError, StorageError, TableNotFoundError
from lakeflow_job_meta.metadata.models import CONTROL_COLUMNS, MODULE_COLUMNS
from lakeflow_job_meta.storage import open_tables, parse_table_reference
from lakeflow_job_meta.storage.delta_rs import DeltaRsTable, arrow_schema
from lakeflow_job_meta.storage.tables import (
    CONTROL_SPEC,
    MODULES_SPEC,
    SCHEMA_VERSION_PROPERTY,
    SPECS,
    ToolTables,
)
from tests.helpers.waiting import SAFETY_NET_SECONDS
from tests.storage.rows import source

WORKER = Path(__file__).with_name("race_worker.py")


@pytest.fixture
def tables(tmp_path) -> ToolTables:
    t = open_tables(str(tmp_path / "ctl"), actor="tester")
    t.ensure_exists()
    return t


def by_key(rows, key="source_id"):
    return {r[key]: r for r in rows}


# -- layout ------------------------------------------------------------------------------------


def test_specs_keep_the_reference_column_order():
    assert CONTROL_SPEC.column_names[:8] == CONTROL_COLUMNS
    assert MODULES_SPEC.column_names[:3] == MODULE_COLUMNS
    assert all(spec.schema_version == 2 for spec, _ in SPECS.values())


def test_create_exists_and_siblings(tmp_path):
    t = open_tables(str(tmp_path / "ctl"))
    assert not t.exists()
    with pytest.raises(TableNotFoundError, match="ctl"):
        t.require_exists()
    with pytest.raises(TableNotFoundError):
        t.control.version()
    with pytest.raises(TableNotFoundError):
        t.jobs.read_all()
    t.ensure_exists()
    assert t.exists()
    t.require_exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ctl",
        "ctl_history",
        "ctl_jobs",
        "ctl_modules",
        "ctl_state",
    ]
    for table in t.all():
        dt = DeltaTable(table.path)
        config = dt.metadata().configuration
        assert config[SCHEMA_VERSION_PROPERTY] == "2"
        assert config["lakeflow_job_meta.kind"] == table.spec.kind
        assert (config.get("delta.enableChangeDataFeed") == "true") == table.spec.change_data_feed
        assert dt.schema().to_arrow().names == list(table.spec.column_names)
    created_at = pa.schema(DeltaTable(t.control.path).schema().to_arrow()).field("created_at")
    assert created_at.type == pa.timestamp("us", tz="UTC")
    # Idempotent: a second ensure_exists writes nothing.
    versions = [x.version() for x in t.all()]
    t.ensure_exists()
    assert [x.version() for x in t.all()] == versions


def test_shared_shutil_removed_table_is_reported(tables):
    tables.control.version()
    shutil.rmtree(tables.control.path)
    with pytest.raises(TableNotFoundError):
        tables.control.version()


# -- merge -------------------------------------------------------------------------------------


def test_merge_upserts_and_deletes_in_one_commit(tmp_path):
    seconds = iter(range(1, 1000))  # the tables' clock: a second later at every write
    ticking = ToolTables(
        parse_table_reference(str(tmp_path / "ctl")),
        lambda ref, spec: DeltaRsTable(
            ref,
            spec,
            actor="tester",
            now=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=next(seconds)),
        ),
    )
    ticking.ensure_exists()
    ctl = ticking.control
    assert ctl.merge([source("a"), source("b"), source("c")]) is True
    v = ctl.version()
    first = by_key(ctl.read_all())
    assert first["a"]["created_by"] == "tester" and first["a"]["updated_by"] == "tester"
    assert first["a"]["created_at"].tzinfo is not None
    assert ctl.merge([source("a", source_type="py"), source("d")], [{"source_id": "b"}]) is True
    assert ctl.version() == v + 1
    rows = by_key(ctl.read_all())
    assert sorted(rows) == ["a", "c", "d"]
    assert rows["a"]["source_type"] == "py"
    assert rows["a"]["created_at"] == first["a"]["created_at"]
    assert rows["a"]["updated_at"] > first["a"]["updated_at"]
    assert rows["c"] == first["c"]
    assert [c.operation for c in ctl.history(2)] == ["MERGE", "MERGE"]
    assert ctl.history(1)[0].user == "tester"


def test_empty_merge_commits_nothing(tables):
    ctl = tables.control
    v = ctl.version()
    assert ctl.merge([], []) is False
    assert ctl.merge() is False
    assert ctl.merge([], [{"source_id": "absent"}]) is False
    assert ctl.version() == v


def test_update_keeps_columns_the_caller_did_not_supply(tables):
    ctl = tables.control
    ctl.merge([source("a", source_file="x.yaml")])
    partial = {k: v for k, v in source("a", is_active=False).items() if k != "source_file"}
    ctl.merge([partial])
    row = ctl.read_all()[0]
    assert row["is_active"] is False
    assert row["source_file"] == "x.yaml"


@pytest.mark.parametrize(
    ("upserts", "deletes", "match"),
    [
        ([source("a"), source("a")], [], "twice"),
        ([source("a")], [{"source_id": "a"}], "twice"),
        ([source(None)], [], "key"),
        ([{**source("a"), "bogus": 1}], [], "bogus"),
        ([source("a", execution_order="one")], [], "schema"),
    ],
)
def test_merge_refuses_bad_input(tables, upserts, deletes, match):
    v = tables.control.version()
    with pytest.raises(StorageError, match=match):
        tables.control.merge(upserts, deletes)
    assert tables.control.version() == v


def test_keyword_columns_of_the_state_table(tables):
    st = tables.state
    st.merge([{"scope": "s", "key": "k", "value": '{"a":1}'}])
    st.merge([{"scope": "s", "key": "k", "value": '{"a":2}'}, {"scope": "s", "key": "k2", "value": "null"}])
    rows = {r["key"]: r for r in st.read_all() if r["scope"] == "s"}
    assert rows["k"]["value"] == '{"a":2}' and rows["k"]["updated_at"] is not None
    assert set(rows) == {"k", "k2"}


def test_jobs_table_composite_key(tables):
    jobs = tables.jobs
    row = {"target": "dev", "module_name": "m", "job_id": 2**40, "managed_files": json.dumps({"a": "b"})}
    jobs.merge([row, {**row, "target": "prod", "job_id": 7}])
    jobs.merge([{**row, "status": "ok"}], [{"target": "prod", "module_name": "m"}])
    (only,) = jobs.read_all()
    assert only["job_id"] == 2**40 and only["status"] == "ok" and only["target"] == "dev"


# -- read_all, append, user inserts ------------------------------------------------------------


def test_append_and_read_all(tables):
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    rows = [
        {
            "run_id": "r1",
            "module_name": "m",
            "action": "create",
            "started_at": now,
            "writes": 1,
            "duration_ms": 5,
        },
        {"run_id": "r1", "module_name": "n", "action": "noop"},
    ]
    v = tables.history.version()
    tables.history.append(rows)
    tables.history.append([])
    assert tables.history.version() == v + 1
    read = sorted(tables.history.read_all(), key=lambda r: r["module_name"])
    assert read[0]["started_at"] == now and read[0]["writes"] == 1
    assert read[1]["job_id"] is None and set(read[1]) == set(tables.history.spec.column_names)


def test_user_insert_of_the_eight_reference_columns(tables):
    """What a user's INSERT of only the reference's columns looks like locally."""
    eight = {k: v for k, v in source("sql_row").items() if k in CONTROL_COLUMNS}
    tables.control.append([eight])
    # An external writer (another delta-rs program) that leaves the audit columns null.
    external = {k: None for k in CONTROL_SPEC.column_names} | {**eight, "source_id": "ext_row"}
    write_deltalake(
        tables.control.path,
        pa.Table.from_pylist([external], schema=arrow_schema(CONTROL_SPEC)),
        mode="append",
    )
    rows = by_key(tables.control.read_all())
    assert rows["sql_row"]["source_file"] is None
    assert rows["sql_row"]["created_at"] is not None and rows["sql_row"]["created_by"] == "tester"
    assert rows["ext_row"]["created_at"] is None and rows["ext_row"]["source_file"] is None
    assert rows["ext_row"]["execution_order"] == 1


# -- change data feed --------------------------------------------------------------------------


def test_changes_since(tables):
    ctl = tables.control
    base = ctl.version()
    assert ctl.changes_since(base) == []
    ctl.merge([source("a"), source("b")])
    ctl.merge([source("a", execution_order=5)], [{"source_id": "b"}])
    changes = ctl.changes_since(base)
    kinds = sorted((r["_change_type"], r["source_id"], r["_commit_version"]) for r in changes)
    assert kinds == [
        ("delete", "b", base + 2),
        ("insert", "a", base + 1),
        ("insert", "b", base + 1),
        ("update_postimage", "a", base + 2),
        ("update_preimage", "a", base + 2),
    ]
    post = next(r for r in changes if r["_change_type"] == "update_postimage")
    assert post["execution_order"] == 5 and set(CONTROL_SPEC.column_names) <= set(post)
    only_last = ctl.changes_since(base + 1)
    assert {r["_commit_version"] for r in only_last} == {base + 2}
    assert ctl.changes_since(ctl.version()) == []
    assert ctl.changes_since(ctl.version() + 10) == []


def test_changes_since_without_cdf_is_none(tables):
    tables.jobs.merge([{"target": "dev", "module_name": "m"}])
    assert tables.jobs.spec.change_data_feed is False
    assert tables.jobs.changes_since(0) is None


def test_changes_since_after_log_cleanup_is_none(tables):
    """History gone: the log before a checkpoint was cleaned up (what a log retention of a few
    days does to an old version), so CDF from an old version cannot be answered."""
    ctl = tables.control
    DeltaTable(ctl.path).alter.set_table_properties({"delta.logRetentionDuration": "interval 0 seconds"})
    for i in range(3):
        ctl.merge([source(f"s{i}")])
    dt = DeltaTable(ctl.path)
    dt.create_checkpoint()
    dt.cleanup_metadata()
    assert not (Path(ctl.path) / "_delta_log" / "00000000000000000001.json").exists()
    assert ctl.changes_since(1) is None
    assert len(ctl.read_all()) == 3  # the caller's fallback still works


def test_changes_since_with_vacuumed_change_files_is_none(tables):
    """The _change_data files of an update are gone (what VACUUM does after retention)."""
    ctl = tables.control
    ctl.merge([source("a")])
    base = ctl.version()
    ctl.merge([source("a", execution_order=9)])
    change_dir = Path(ctl.path) / "_change_data"
    assert change_dir.exists()
    shutil.rmtree(change_dir)
    assert ctl.changes_since(base) is None


def test_changes_across_a_version_written_before_cdf_was_enabled(tmp_path):
    table = DeltaRsTable(
        open_tables(str(tmp_path / "x")).reference,
        CONTROL_SPEC.__class__(**{**CONTROL_SPEC.__dict__, "change_data_feed": False}),
    )
    table.create_or_migrate()
    table.merge([source("a")])
    # Enabling CDF later (what migrating a table created without it does).
    DeltaTable(table.path).alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    table.merge([source("b")])
    assert table.changes_since(0) is None
    assert [r["source_id"] for r in table.changes_since(table.version() - 1)] == ["b"]


# -- compare and set ---------------------------------------------------------------------------


def test_compare_and_set_semantics(tables):
    st = tables.state
    lease = {"scope": "lease", "key": "writer"}
    assert st.compare_and_set({**lease, "value": "a"}, None) is True
    assert st.compare_and_set({**lease, "value": "b"}, None) is False
    assert st.compare_and_set({**lease, "value": "b"}, {"value": "zzz"}) is False
    assert st.compare_and_set({**lease, "value": "b"}, {"value": "a"}) is True
    assert st.compare_and_set({"scope": "lease", "key": "absent", "value": "x"}, {"value": None}) is False
    (row,) = [r for r in st.read_all() if r["scope"] == "lease"]
    assert row["value"] == "b"


def test_compare_and_set_threads_race(tables):
    st = tables.state
    rounds, workers = 6, 6
    for round_no in range(rounds):
        key = {"scope": "race", "key": f"r{round_no}"}
        barrier = threading.Barrier(workers)
        results: list[bool] = []
        lock = threading.Lock()

        def attempt(name: str, key=key, barrier=barrier, results=results, lock=lock) -> None:
            barrier.wait()
            won = st.compare_and_set({**key, "value": name}, None)
            with lock:
                results.append(won)

        threads = [threading.Thread(target=attempt, args=(f"w{i}",)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(True) == 1, results
    # Takeover race: everyone saw the same holder; only one may replace it.
    holder = next(r for r in st.read_all() if r["key"] == "r0")["value"]
    barrier = threading.Barrier(workers)
    results = []

    def take_over(name: str) -> None:
        barrier.wait()
        results.append(st.compare_and_set({"scope": "race", "key": "r0", "value": name}, {"value": holder}))

    threads = [threading.Thread(target=take_over, args=(f"t{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1, results
    assert len([r for r in st.read_all() if r["scope"] == "race"]) == rounds


class Racers:
    """Worker processes (``race_worker.py``) started together: each says ``ready`` once its
    interpreter has imported and opened everything, and acts only when told ``go``, which every
    worker is told at once."""

    def __init__(self, argvs: list[list[str]], env: dict[str, str]):
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), *argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for argv in argvs
        ]
        assert self.lines() == ["ready"] * len(self.procs)

    def lines(self) -> list[str]:
        """The next line of every worker."""
        lines = [proc.stdout.readline().strip() for proc in self.procs]  # type: ignore[union-attr]
        if not all(lines):
            self.finish()
            raise AssertionError(f"a worker exited early: {[p.stderr.read()[-2000:] for p in self.procs]}")  # type: ignore[union-attr]
        return lines

    def go(self) -> list[str]:
        for proc in self.procs:
            proc.stdin.write("go\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        return self.lines()

    def finish(self) -> None:
        outputs = [proc.communicate(timeout=SAFETY_NET_SECONDS) for proc in self.procs]
        assert all(p.returncode == 0 for p in self.procs), [err[-2000:] for _, err in outputs]


@pytest.mark.slow
def test_compare_and_set_processes_race(tables, subprocess_env):
    processes, rounds = 4, 8
    racers = Racers(
        [["cas", tables.reference.path, f"p{i}", str(rounds)] for i in range(processes)], subprocess_env
    )
    wins = {}
    for round_no in range(rounds):
        records = [json.loads(line) for line in racers.go()]
        assert {r["round"] for r in records} == {round_no}
        wins[round_no] = sum(r["insert"] for r in records)
    racers.finish()
    assert all(count == 1 for count in wins.values()), wins
    rows = [r for r in tables.state.read_all() if r["scope"] == "race"]
    assert len(rows) == rounds


@pytest.mark.slow
def test_concurrent_ensure_exists_in_processes(tmp_path, subprocess_env):
    path = str(tmp_path / "ctl")
    racers = Racers([["create", path] for _ in range(4)], subprocess_env)
    assert all(json.loads(line)["ok"] for line in racers.go())
    racers.finish()
    t = open_tables(path)
    t.require_exists()
    assert DeltaTable(t.control.path).schema().to_arrow().names == list(CONTROL_SPEC.column_names)
    # The lease row was seeded once, by the creator that won version 0.
    assert [(r["key"], r["value"]) for r in t.state.read_all()] == [("lease", None)]


# -- following other writers, and dependencies -------------------------------------------------


def test_version_follows_other_writers(tables):
    """(How cheap a warm version() is: benchmarks/bench_storage.py, figures in docs/STORAGE.md.)"""
    ctl = tables.control
    ctl.merge([source(f"s{i}") for i in range(2000)])
    v = ctl.version()
    # Another writer (a different object, as another process would be).
    other = open_tables(tables.reference.path).control
    other.merge([source("new")])
    assert ctl.version() == v + 1


def test_missing_deltalake_gives_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "deltalake", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'lakeflow-job-meta\[local\]'"):
        open_tables(str(tmp_path / "ctl"))


@pytest.mark.slow
def test_package_imports_without_deltalake_or_pyspark(subprocess_env):
    code = (
        "import sys\n"
        "for name in ('deltalake', 'pyspark', 'pyarrow'):\n"
        "    sys.modules[name] = None\n"
        "import lakeflow_job_meta.storage as s\n"
        "import lakeflow_job_meta.storage.spark, lakeflow_job_meta.storage.delta_rs\n"
        "s.parse_table_reference('a.b.c')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_delta_rs_table_refuses_uc_names():
    from lakeflow_job_meta.storage.naming import parse_table_reference

    with pytest.raises(StorageError):
        DeltaRsTable(parse_table_reference("a.b.c"), CONTROL_SPEC)


def test_timestamps_are_utc(tables):
    fixed = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    tables.state.merge([{"scope": "s", "key": "k", "value": "1", "updated_at": fixed}])
    (row,) = [r for r in tables.state.read_all() if r["scope"] == "s"]
    assert row["updated_at"] == fixed and row["updated_at"].utcoffset() == timedelta(0)

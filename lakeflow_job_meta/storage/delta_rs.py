"""Local Delta tables through delta-rs (the ``local`` extra).

Notes that shaped this module (see docs/STORAGE.md for measurements):

- ``DeltaTable.to_pyarrow_table()`` can abort the interpreter at exit, so full reads go through
  ``to_pyarrow_dataset().to_table(use_threads=False)``.
- ``version()`` keeps one ``DeltaTable`` open and calls ``update_incremental()``: about 1 ms warm
  against about 8 ms for re-opening a table with a few dozen commits.
- Every write is one Delta commit. ``merge`` is a single MERGE whose source carries an ``_op``
  column (``u`` upsert, ``d`` delete).
- ``compare_and_set`` commits with ``max_commit_retries=0``: the commit must land at exactly the
  version it read, so any concurrent commit (from any process) makes it fail instead of being
  rebased; it then re-reads and re-checks ``expected`` before trying again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from lakeflow_job_meta.errors import MissingDependencyError, StorageError, TableNotFoundError
from lakeflow_job_meta.storage.base import Commit, TableSpec, maintenance_only
from lakeflow_job_meta.storage.merge_rows import (
    OP_COLUMN,
    fill_row,
    key_of,
    merge_source_rows,
    update_columns,
)
from lakeflow_job_meta.storage.naming import TableReference
from lakeflow_job_meta.storage.tables import CDF_PROPERTY, KIND_PROPERTY, SCHEMA_VERSION_PROPERTY

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa
    from deltalake import DeltaTable

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'lakeflow-job-meta[local]'"
# Non-CDF tables are compacted after a write once they hold this many data files.
COMPACT_MIN_FILES = 8
# How often compare_and_set re-reads and retries after losing a commit race while its
# precondition still holds.
CAS_ATTEMPTS = 10
CREATE_ATTEMPTS = 5
# Messages of load_cdf failures that mean "CDF cannot answer", so the caller does a full read.
_CDF_UNAVAILABLE = (
    "change data",  # "... does not have change data enabled"
    "invalid table version",  # log files before the last checkpoint were cleaned up
    "not found",  # _change_data files vacuumed
    "no such file",
    "does not exist",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DELTA_TYPES = {
    "string": "string",
    "int": "integer",
    "bigint": "long",
    "boolean": "boolean",
    "double": "double",
    "timestamp": "timestamp",
}


def default_actor() -> str:
    """Who is written into created_by/updated_by and the commit's userName."""
    return f"lakeflow_job_meta@{socket.gethostname()}"


def _deltalake() -> Any:
    try:
        import deltalake
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(f"local Delta tables need deltalake: {INSTALL_HINT}") from exc
    return deltalake


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError(f"local Delta tables need pyarrow: {INSTALL_HINT}") from exc
    return pyarrow


def arrow_type(column_type: str) -> pa.DataType:
    pa_ = _pyarrow()
    return {
        "string": pa_.string(),
        "int": pa_.int32(),
        "bigint": pa_.int64(),
        "boolean": pa_.bool_(),
        "double": pa_.float64(),
        "timestamp": pa_.timestamp("us", tz="UTC"),
    }[column_type]


def arrow_schema(spec: TableSpec, extra: Sequence[tuple[str, str]] = ()) -> pa.Schema:
    pa_ = _pyarrow()
    fields = [pa_.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in spec.columns]
    fields += [pa_.field(name, arrow_type(type_)) for name, type_ in extra]
    return pa_.schema(fields)


def _q(column: str) -> str:
    """Quote a column for DataFusion SQL (``key``, ``value`` and ``action`` are keywords)."""
    return '"' + column.replace('"', '""') + '"'


def _key_in(data: pa.Table, column: str, values: Collection[str]) -> Any:
    """Mask of the rows whose ``column`` is one of ``values``, applied after the scan on the
    column cast to plain strings: delta-rs declares ``string`` where its compacted files hold
    ``string_view``, and Arrow has no kernel comparing the two, so a scan filter on a key fails
    as soon as a table has been compacted (and statistics no longer rule every file out)."""
    import pyarrow.compute as pc

    keys = data.column(column).cast(_pyarrow().string())
    return pc.is_in(keys, value_set=_pyarrow().array(sorted(values), type=_pyarrow().string()))


class DeltaRsTable:
    """One local Delta table; implements :class:`lakeflow_job_meta.storage.base.Table`."""

    def __init__(
        self,
        ref: TableReference,
        spec: TableSpec,
        *,
        actor: str | None = None,
        now: Callable[[], datetime] | None = None,
    ):
        if ref.path is None:
            raise StorageError(f"{ref.name} is not a local path; delta-rs tables need a path")
        _deltalake()
        self.ref = ref
        self.name = ref.name
        self.path = ref.path
        self.spec = spec
        self.actor = actor or default_actor()
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._cached: DeltaTable | None = None
        # Lowest version known to have been written with the change data feed on.
        self._cdf_from: int | None = None
        self._seeded = False  # seed rows known to be present (checked once per object)

    def __repr__(self) -> str:
        return f"DeltaRsTable({self.name!r}, kind={self.spec.kind!r})"

    # -- reading -------------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(_deltalake().DeltaTable.is_deltatable(self.path))

    def _open(self) -> DeltaTable:
        dl = _deltalake()
        try:
            table: DeltaTable = dl.DeltaTable(self.path)
        except dl.exceptions.TableNotFoundError as exc:
            raise TableNotFoundError(self.name) from exc
        except (dl.exceptions.DeltaError, OSError) as exc:
            raise StorageError(f"cannot open {self.name}: {exc}") from exc
        return table

    def _snapshot(self) -> DeltaTable:
        """The cached DeltaTable brought up to date; caller holds ``self._lock``. Re-opening costs
        about 10 ms on a table with a few dozen commits, ``update_incremental`` about 1 ms."""
        if self._cached is not None:
            try:
                self._cached.update_incremental()
                version = int(self._cached.version())
                # The newest commit file is never cleaned up, so if it is missing the table was
                # deleted or replaced under us: re-open instead of trusting the cache.
                if os.path.exists(os.path.join(self.path, "_delta_log", f"{version:020d}.json")):
                    return self._cached
            except Exception:  # log damaged or rewritten: fall back to a fresh open
                log.debug("cached snapshot of %s unusable, re-opening", self.name)
            self._cached = None
            self._cdf_from = None
        self._cached = self._open()
        return self._cached

    def version(self) -> int:
        with self._lock:
            return int(self._snapshot().version())

    def snapshot_id(self) -> str:
        with self._lock:
            snapshot = self._snapshot()
            return f"{snapshot.metadata().id}@{int(snapshot.version())}"

    def read_all(self) -> list[dict[str, Any]]:
        return self._rows(self._scan())

    def _scan(self) -> pa.Table:
        with self._lock:
            dataset = self._snapshot().to_pyarrow_dataset()
        try:
            return dataset.to_table(use_threads=False)
        except (_deltalake().exceptions.DeltaError, OSError) as exc:
            raise StorageError(f"cannot read {self.name}: {exc}") from exc

    def read_matching(self, column: str, values: Collection[str]) -> list[dict[str, Any]]:
        """Rows whose ``column`` is one of ``values``: Arrow reads and filters, only the matches
        become Python objects (converting 10,000 rows costs about 40 ms; a module's few rows,
        microseconds)."""
        data = self._scan()
        return self._rows(data.filter(_key_in(data, column, values)))

    def _rows(self, data: pa.Table, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows of an Arrow table projected onto the spec's columns (missing ones None) plus
        ``extra``. Converted column by column: ``Table.to_pylist`` is about 3x slower here
        because it builds a ZoneInfo datetime per timestamp."""
        pa_ = _pyarrow()
        names = (*self.spec.column_names, *extra)
        columns: list[list[Any]] = []
        for name in names:
            if name not in data.column_names:
                columns.append([None] * data.num_rows)
                continue
            column = data.column(name)
            if pa_.types.is_timestamp(column.type):
                micros = column.cast(pa_.timestamp("us", tz="UTC")).cast(pa_.int64()).to_pylist()
                columns.append([None if v is None else _EPOCH + timedelta(microseconds=v) for v in micros])
            else:
                columns.append(column.to_pylist())
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def changes_since(self, version: int) -> list[dict[str, Any]] | None:
        dl = _deltalake()
        pa_ = _pyarrow()
        with self._lock:
            dt = self._snapshot()
            current = int(dt.version())
            if version >= current:
                return []
            if not _cdf_enabled(dt):
                return None
            start = max(0, version + 1)
            try:
                # delta-rs checks that the feed was enabled only when reading from version 0; for
                # a later version written before it was enabled it derives "changes" from whole
                # rewritten files (every row of a file deleted and re-inserted, order undefined).
                # Spark refuses such ranges; so do we. One snapshot load, remembered.
                if start > 0 and (self._cdf_from is None or start < self._cdf_from):
                    if not _cdf_enabled(dl.DeltaTable(self.path, version=start)):
                        return None
                    self._cdf_from = start
                reader = dt.load_cdf(starting_version=start, ending_version=current)
                data = pa_.table(reader.read_all())
            except Exception as exc:  # the Arrow stream reports file errors as plain Exception
                message = str(exc).lower()
                if not any(marker in message for marker in _CDF_UNAVAILABLE):
                    log.warning(
                        "change data feed of %s failed, falling back to a full read: %s", self.name, exc
                    )
                else:
                    log.debug("change data feed of %s unavailable: %s", self.name, exc)
                return None
        rows = self._rows(data, extra=("_change_type", "_commit_version"))
        for row in rows:
            row["_commit_version"] = int(row["_commit_version"])
        rows.sort(key=lambda r: r["_commit_version"])
        return rows

    def history(self, limit: int = 20) -> list[Commit]:
        entries = self._open().history(limit)
        commits = []
        for entry in entries:
            ts = entry.get("timestamp")
            commits.append(
                Commit(
                    version=int(entry["version"]),
                    timestamp=datetime.fromtimestamp(ts / 1000, tz=timezone.utc) if ts else None,
                    operation=str(entry.get("operation", "")),
                    user=entry.get("userName"),
                )
            )
        commits.sort(key=lambda c: c.version, reverse=True)
        return commits[:limit]

    def maintenance_only(self, since: int, until: int) -> bool:
        try:
            return maintenance_only(self.history, since, until)
        except Exception as exc:  # an unreadable log: let the caller read the feed instead
            log.debug("history of %s unreadable: %s", self.name, exc)
            return False

    # -- writing -------------------------------------------------------------------------------

    def _commit_properties(self, **kwargs: Any) -> Any:
        return _deltalake().CommitProperties(custom_metadata={"userName": self.actor}, **kwargs)

    def _fill(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        return fill_row(self.spec, self.name, row, now, self.actor)

    def _key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return key_of(self.spec, self.name, row)

    def _source(self, rows: list[dict[str, Any]]) -> pa.Table:
        try:
            return _pyarrow().Table.from_pylist(rows, schema=arrow_schema(self.spec, [(OP_COLUMN, "string")]))
        except Exception as exc:  # pyarrow raises several types for bad values
            raise StorageError(f"{self.name}: rows do not fit the table schema: {exc}") from exc

    def _update_columns(self, upserts: Sequence[Mapping[str, Any]]) -> list[str]:
        return update_columns(self.spec, upserts)

    def _merger(self, dt: DeltaTable, source: pa.Table, update_columns: list[str], **commit: Any) -> Any:
        predicate = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in self.spec.key)
        merger = dt.merge(
            source,
            predicate,
            source_alias="s",
            target_alias="t",
            commit_properties=self._commit_properties(**commit),
        )
        op = f"s.{_q(OP_COLUMN)}"
        if update_columns:
            merger = merger.when_matched_update(
                {_q(c): f"s.{_q(c)}" for c in update_columns}, predicate=f"{op} = 'u'"
            )
        merger = merger.when_matched_delete(predicate=f"{op} = 'd'")
        return merger.when_not_matched_insert(
            {_q(c): f"s.{_q(c)}" for c in self.spec.column_names}, predicate=f"{op} = 'u'"
        )

    def merge(
        self,
        upserts: Sequence[Mapping[str, Any]] = (),
        deletes: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """One MERGE commit. Returns True when a commit was written (False when both inputs are
        empty, or when nothing matched, e.g. deleting absent keys)."""
        if not upserts and not deletes:
            return False
        now = self._now()
        rows = merge_source_rows(self.spec, self.name, upserts, deletes, now, self.actor)
        source = self._source(rows)
        dl = _deltalake()
        try:
            metrics = self._merger(self._open(), source, self._update_columns(upserts)).execute()
        except dl.exceptions.DeltaError as exc:
            raise StorageError(f"merge into {self.name} failed: {exc}") from exc
        if int(metrics.get("num_target_rows_inserted", 0)):
            self._compact_if_fragmented()
        changed = sum(
            int(metrics.get(name, 0))
            for name in ("num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted")
        )
        return changed > 0

    def _compact_if_fragmented(self) -> None:
        """Every MERGE that inserts a row adds a file (the jobs table gets one per job created),
        and reads slow down with the file count: 150 files took 300 ms to read, 1 file 4 ms.
        Compact (OPTIMIZE, no data change) once there are many. Not on tables with the change
        data feed: the monitor would see the OPTIMIZE as a new version. Best effort."""
        if self.spec.change_data_feed:
            return
        try:
            dt = self._open()
            if len(dt.file_uris()) >= COMPACT_MIN_FILES:
                dt.optimize.compact(commit_properties=self._commit_properties())
        except Exception as exc:  # a concurrent writer won, or the table is busy: next time
            log.debug("compacting %s skipped: %s", self.name, exc)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append in one commit; absent audit columns are filled like Databricks DEFAULTs would."""
        if not rows:
            return
        dl = _deltalake()
        now = self._now()
        data = _pyarrow().Table.from_pylist(
            [self._fill(r, now) for r in rows], schema=arrow_schema(self.spec)
        )
        try:
            dl.write_deltalake(self._open(), data, mode="append", commit_properties=self._commit_properties())
        except dl.exceptions.DeltaError as exc:
            raise StorageError(f"append to {self.name} failed: {exc}") from exc
        self._compact_if_fragmented()

    def _current(self, dt: DeltaTable, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """The row with ``key`` in the snapshot ``dt`` (the one the CAS commit is based on)."""
        import pyarrow.compute as pc

        data = dt.to_pyarrow_dataset().to_table(use_threads=False)
        mask = None
        for name, value in zip(self.spec.key, key, strict=True):
            term = _key_in(data, name, [str(value)])
            mask = term if mask is None else pc.and_(mask, term)
        rows = self._rows(data.filter(mask))
        if len(rows) > 1:
            raise StorageError(f"{self.name}: {len(rows)} rows share the key {key}")
        return rows[0] if rows else None

    def compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        return self._compare_and_set(row, expected)

    def _compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        dl = _deltalake()
        key = self._key_of(row)
        update_columns = self._update_columns([row])
        for _attempt in range(CAS_ATTEMPTS):
            dt = self._open()
            current = self._current(dt, key)
            if expected is None:
                if current is not None:
                    return False
            elif current is None or any(current.get(c) != v for c, v in expected.items()):
                return False
            source = self._source([{**self._fill(row, self._now()), OP_COLUMN: "u"}])
            try:
                self._merger(dt, source, update_columns, max_commit_retries=0).execute()
                return True
            except dl.exceptions.CommitFailedError as exc:
                log.debug("compare_and_set on %s lost a commit race, re-reading: %s", self.name, exc)
            except dl.exceptions.DeltaError as exc:
                # Two writers can also collide on the log file itself, reported as a plain error.
                if "already exists" not in str(exc).lower() and "conflict" not in str(exc).lower():
                    raise StorageError(f"compare_and_set on {self.name} failed: {exc}") from exc
        return False

    # -- schema --------------------------------------------------------------------------------

    def create_or_migrate(self, seed: Sequence[Mapping[str, Any]] = ()) -> None:
        dl = _deltalake()
        last: Exception | None = None
        for _attempt in range(CREATE_ATTEMPTS):
            try:
                if not self.exists():
                    self._create(seed)
                    self._seeded = True
                self._migrate()
                if seed and not self._seeded:
                    # A table created before seeding: insert the rows whose key is absent (the
                    # CAS refuses when the key exists, and commits at exactly version n+1).
                    for row in seed:
                        self._compare_and_set(row, None)
                    self._seeded = True
                return
            except (dl.exceptions.CommitFailedError, dl.exceptions.DeltaError) as exc:
                # Most likely another process created or migrated the table at the same moment:
                # look again.
                log.debug("create_or_migrate %s raced, retrying: %s", self.name, exc)
                last = exc
        raise StorageError(f"cannot create or migrate {self.name}: {last}")

    def _properties(self) -> dict[str, str]:
        props = {
            SCHEMA_VERSION_PROPERTY: str(self.spec.schema_version),
            KIND_PROPERTY: self.spec.kind,
        }
        if self.spec.change_data_feed:
            props[CDF_PROPERTY] = "true"
        return props

    def _create(self, seed: Sequence[Mapping[str, Any]] = ()) -> None:
        """Version 0, with the seed rows in the same commit: ``mode="error"`` makes a concurrent
        creator fail (and retry as a migration) instead of adding the rows twice.
        ``write_deltalake`` refuses non-Delta property keys, so ours follow in ``_migrate``."""
        dl = _deltalake()
        if seed:
            now = self._now()
            data = _pyarrow().Table.from_pylist(
                [self._fill(r, now) for r in seed], schema=arrow_schema(self.spec)
            )
            dl.write_deltalake(
                self.path,
                data,
                mode="error",
                configuration={k: v for k, v in self._properties().items() if k.startswith("delta.")},
                # Without this a losing creator's write is rebased into an append of the rows.
                commit_properties=self._commit_properties(max_commit_retries=0),
            )
            return
        dl.DeltaTable.create(
            self.path,
            arrow_schema(self.spec),
            mode="error",
            configuration=self._properties(),
            commit_properties=self._commit_properties(),
            raise_if_key_not_exists=False,
        )

    def _migrate(self) -> None:
        """Add missing columns (never drop), then record the schema version. Decided from the
        actual schema, so a migration interrupted between the two commits resumes cleanly."""
        dl = _deltalake()
        dt = self._open()
        present = {field.name for field in dt.schema().fields}
        missing = [c for c in self.spec.columns if c.name not in present]
        if missing:
            dt.alter.add_columns(
                [
                    dl.Field(c.name, dl.schema.PrimitiveType(_DELTA_TYPES[c.type]), nullable=True)
                    for c in missing
                ],
                commit_properties=self._commit_properties(),
            )
        config = dt.metadata().configuration
        stored = _int_or_none(config.get(SCHEMA_VERSION_PROPERTY))
        if stored is not None and stored > self.spec.schema_version:
            log.warning(
                "%s has schema version %s, newer than this tool's %s; leaving it as it is",
                self.name,
                stored,
                self.spec.schema_version,
            )
            return
        wanted = {k: v for k, v in self._properties().items() if config.get(k) != v}
        if wanted:
            dt.alter.set_table_properties(
                wanted, raise_if_not_exists=False, commit_properties=self._commit_properties()
            )


def _cdf_enabled(dt: DeltaTable) -> bool:
    return str(dt.metadata().configuration.get(CDF_PROPERTY, "false")).lower() == "true"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None

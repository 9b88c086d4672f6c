"""Delta tables in Unity Catalog through Spark SQL (the ``spark`` extra, or a Databricks cluster).

SQL text is built only by the pure ``*_sql`` functions below, which take validated
:class:`TableReference` names (every identifier backquoted) and spec column names; every value
travels through a temp view of a DataFrame with an explicit schema (MERGE, CAS, INSERT and seed
sources, and a CAS's expected values). No parameter markers: with Delta's SQL extension on Spark
4.2 they are left unbound (UNBOUND_SQL_PARAMETER). ``pyspark`` is imported only inside methods.

The storage contract suite runs this adapter on local Spark with Delta Lake (tests/storage);
docs/STORAGE.md lists what still differs from Databricks.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from lakeflow_job_meta.errors import MissingDependencyError, StorageError, TableNotFoundError
from lakeflow_job_meta.storage.base import Column, Commit, TableSpec, maintenance_only
from lakeflow_job_meta.storage.merge_rows import (
    OP_COLUMN,
    fill_row,
    key_of,
    merge_source_rows,
    update_columns,
)
from lakeflow_job_meta.storage.naming import TableReference
from lakeflow_job_meta.storage.tables import CDF_PROPERTY, KIND_PROPERTY, SCHEMA_VERSION_PROPERTY

log = logging.getLogger(__name__)
_T = TypeVar("_T")

INSTALL_HINT = (
    "run on Databricks (a notebook or job), or from a laptop `pip install databricks-connect` "
    "(Databricks Connect, the version of your cluster or serverless compute) with "
    "DATABRICKS_CLUSTER_ID or DATABRICKS_SERVERLESS_COMPUTE_ID=auto set; a local pyspark "
    "(`lakeflow-job-meta[spark]`) cannot reach Unity Catalog"
)
DEFAULTS_FEATURE = "delta.feature.allowColumnDefaults"
ISOLATION_PROPERTY = "delta.isolationLevel"
_IDENT = re.compile(r"[A-Za-z0-9_-]+")
_SQL_TYPES = {
    "string": "STRING",
    "int": "INT",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
    "timestamp": "TIMESTAMP",
}
# Error classes of Delta's optimistic-concurrency failures: another commit won; re-running an
# idempotent statement on the new snapshot is correct. ``DELTA_CONCURRENT_*`` covers
# ConcurrentAppend/DeleteRead/DeleteDelete/Transaction/WriteException.
_CONFLICT_PREFIX = "DELTA_CONCURRENT_"
_CONFLICT_CLASSES = frozenset({"DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED"})
CONFLICT_ATTEMPTS = 5
CAS_ATTEMPTS = CONFLICT_ATTEMPTS


class DeltaConflictError(StorageError):
    """A Delta commit lost an optimistic-concurrency race (see :func:`conflict_class`)."""

    def __init__(self, message: str, error_class: str):
        super().__init__(message)
        self.error_class = error_class


# -- pure SQL generation ----------------------------------------------------------------------


def quote(identifier: str) -> str:
    """Backquote one identifier; refuse anything outside ``[A-Za-z0-9_-]`` rather than escape."""
    if not _IDENT.fullmatch(identifier):
        raise StorageError(f"refusing unsafe SQL identifier {identifier!r}")
    return f"`{identifier}`"


def sql_string(value: str) -> str:
    """A SQL string literal (only used for table property keys/values we define ourselves)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_properties(spec: TableSpec) -> dict[str, str]:
    props = {
        SCHEMA_VERSION_PROPERTY: str(spec.schema_version),
        KIND_PROPERTY: spec.kind,
    }
    if any(c.default_sql for c in spec.columns):
        props[DEFAULTS_FEATURE] = "supported"
    if spec.change_data_feed:
        props[CDF_PROPERTY] = "true"
    if spec.kind == "state":
        # The writer lease is a compare-and-set on this table: make every conflicting pair of
        # commits fail, not only write-write ones.
        props[ISOLATION_PROPERTY] = "Serializable"
    return props


def column_ddl(column: Column, *, with_default: bool = True) -> str:
    parts = [quote(column.name), _SQL_TYPES[column.type]]
    if not column.nullable:
        parts.append("NOT NULL")
    if with_default and column.default_sql:
        parts.append(f"DEFAULT {column.default_sql}")
    return " ".join(parts)


def properties_clause(props: Mapping[str, str]) -> str:
    return ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in props.items())


def create_table_sql(ref: TableReference, spec: TableSpec, *, provider: str = "DELTA") -> str:
    """CREATE TABLE IF NOT EXISTS with column DEFAULTs and the tool's table properties.
    ``provider`` exists so tests can run the same DDL with ``parquet`` on a local Spark."""
    if not _IDENT.fullmatch(provider):
        raise StorageError(f"refusing unsafe provider {provider!r}")
    columns = ",\n  ".join(column_ddl(c) for c in spec.columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {ref.sql_name} (\n  {columns}\n) USING {provider}\n"
        f"TBLPROPERTIES ({properties_clause(table_properties(spec))})"
    )


def migrate_sql(ref: TableReference, missing: Sequence[Column], props: Mapping[str, str]) -> list[str]:
    """Statements that bring an older table up to ``spec``: enable the defaults feature first,
    ADD COLUMNS without defaults (Delta refuses DEFAULT in ADD COLUMNS), then SET DEFAULT per
    column, then the properties (schema version last, so an interrupted run redoes the rest)."""
    statements: list[str] = []
    name = ref.sql_name
    if any(c.default_sql for c in missing) and DEFAULTS_FEATURE in props:
        statements.append(
            f"ALTER TABLE {name} SET TBLPROPERTIES ({properties_clause({DEFAULTS_FEATURE: 'supported'})})"
        )
    if missing:
        columns = ", ".join(column_ddl(Column(c.name, c.type), with_default=False) for c in missing)
        statements.append(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
    for c in missing:
        if c.default_sql:
            statements.append(f"ALTER TABLE {name} ALTER COLUMN {quote(c.name)} SET DEFAULT {c.default_sql}")
    rest = {k: v for k, v in props.items() if k != SCHEMA_VERSION_PROPERTY}
    if rest:
        statements.append(f"ALTER TABLE {name} SET TBLPROPERTIES ({properties_clause(rest)})")
    if SCHEMA_VERSION_PROPERTY in props:
        statements.append(
            f"ALTER TABLE {name} SET TBLPROPERTIES "
            f"({properties_clause({SCHEMA_VERSION_PROPERTY: props[SCHEMA_VERSION_PROPERTY]})})"
        )
    return statements


def version_sql(ref: TableReference) -> str:
    return f"DESCRIBE HISTORY {ref.sql_name} LIMIT 1"


def detail_sql(ref: TableReference) -> str:
    return f"DESCRIBE DETAIL {ref.sql_name}"


def history_sql(ref: TableReference, limit: int) -> str:
    return f"DESCRIBE HISTORY {ref.sql_name} LIMIT {int(limit)}"


def select_sql(ref: TableReference, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(quote(c) for c in columns)} FROM {ref.sql_name}"


def _key_condition(spec: TableSpec) -> str:
    return " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in spec.key)


def _insert_clause(spec: TableSpec) -> str:
    cols = ", ".join(quote(c) for c in spec.column_names)
    values = ", ".join(f"s.{quote(c)}" for c in spec.column_names)
    return f"INSERT ({cols}) VALUES ({values})"


def _update_clause(columns: Sequence[str]) -> str:
    return "UPDATE SET " + ", ".join(f"t.{quote(c)} = s.{quote(c)}" for c in columns)


def merge_sql(ref: TableReference, view: str, spec: TableSpec, update_columns: Sequence[str]) -> str:
    """One MERGE applying upserts (``_op = 'u'``) and deletes (``_op = 'd'``) from ``view``."""
    op = f"s.{quote(OP_COLUMN)}"
    clauses = [f"WHEN MATCHED AND {op} = 'd' THEN DELETE"]
    if update_columns:
        clauses.append(f"WHEN MATCHED AND {op} = 'u' THEN {_update_clause(update_columns)}")
    clauses.append(f"WHEN NOT MATCHED AND {op} = 'u' THEN {_insert_clause(spec)}")
    return f"MERGE INTO {ref.sql_name} AS t USING {quote(view)} AS s ON {_key_condition(spec)}\n" + "\n".join(
        clauses
    )


def cas_expected_columns(
    ref: TableReference, spec: TableSpec, expected: Mapping[str, Any]
) -> list[tuple[str, str, Any]]:
    """``(source column, type, value)`` per expected column, in name order: the expected values
    travel in the CAS's source view as ``_expected_<i>``, like every other value."""
    out = []
    by_name = {c.name: c for c in spec.columns}
    for i, (column, value) in enumerate(sorted(expected.items())):
        if column not in by_name:
            raise StorageError(f"{ref.name}: unknown column {column!r} in expected")
        out.append((f"_expected_{i}", by_name[column].type, value))
    return out


def cas_sql(
    ref: TableReference,
    view: str,
    spec: TableSpec,
    update_columns: Sequence[str],
    expected: Mapping[str, Any] | None,
) -> str:
    """MERGE writing the single row in ``view`` only if the stored row equals ``expected`` on
    its columns (null-safe, against the view's ``_expected_<i>`` columns), or is absent when
    ``expected`` is None."""
    head = f"MERGE INTO {ref.sql_name} AS t USING {quote(view)} AS s ON {_key_condition(spec)}\n"
    if expected is None:
        return head + f"WHEN NOT MATCHED THEN {_insert_clause(spec)}"
    names = [column for column, _type, _value in cas_expected_columns(ref, spec, expected)]
    terms = [f"t.{quote(c)} <=> s.{quote(n)}" for c, n in zip(sorted(expected), names, strict=True)]
    condition = " AND ".join(terms) or "TRUE"
    update = _update_clause(update_columns) if update_columns else "UPDATE SET *"
    return head + f"WHEN MATCHED AND {condition} THEN {update}"


def insert_sql(ref: TableReference, view: str, columns: Sequence[str]) -> str:
    """INSERT with an explicit column list, so omitted columns take their DEFAULTs."""
    cols = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {ref.sql_name} ({cols}) SELECT {cols} FROM {quote(view)}"


def spark_schema(spec: TableSpec, extra: Sequence[tuple[str, str]] = ()) -> Any:
    """The pyspark StructType of ``spec`` (+ extra columns)."""
    T = _types()
    types = {
        "string": T.StringType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "boolean": T.BooleanType(),
        "double": T.DoubleType(),
        "timestamp": T.TimestampType(),
    }
    fields = [T.StructField(c.name, types[c.type], True) for c in spec.columns]
    fields += [T.StructField(n, types[t], True) for n, t in extra]
    return T.StructType(fields)


def error_class(exc: BaseException) -> str | None:
    """The Spark error class (condition) of ``exc`` or of an exception it wraps, e.g.
    ``DELTA_CONCURRENT_APPEND``. pyspark exceptions expose it as ``getCondition()`` (Spark 4)
    or ``getErrorClass()`` (3.4+); messages are not parsed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # pyspark re-raises exceptions it has no Python class for (Delta's Concurrent*Exception
        # unless delta-spark's converter was imported) as a bare Py4JJavaError: ask the Java
        # exception, a SparkThrowable, directly.
        for source in (current, getattr(current, "java_exception", None)):
            value = _condition_of(source)
            if value:
                return value
        current = current.__cause__ or current.__context__
    return None


def _condition_of(source: Any) -> str | None:
    for getter in ("getCondition", "getErrorClass"):
        try:
            method = getattr(source, getter, None)
            value = method() if callable(method) else None
        except Exception:  # not a SparkThrowable, or a half-converted JVM exception
            value = None
        if value:
            return str(value)
    return None


def conflict_class(exc: BaseException) -> str | None:
    """The error class when ``exc`` is a Delta concurrency conflict, else None. Sub-classes
    (``DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT``) count as their parent."""
    cls = error_class(exc)
    if cls is None:
        return None
    base = cls.split(".", 1)[0].upper()
    return cls if base.startswith(_CONFLICT_PREFIX) or base in _CONFLICT_CLASSES else None


def changes_options(version: int, current: int) -> dict[str, str]:
    """Reader options for the Change Data Feed after ``version`` up to ``current`` (inclusive).
    The ``readChangeFeed`` reader works on every supported runtime; ``table_changes`` accepts
    parameter markers only from DBR 18."""
    return {
        "readChangeFeed": "true",
        "startingVersion": str(int(version) + 1),
        "endingVersion": str(int(current)),
    }


def key_count_sql(ref: TableReference, view: str, spec: TableSpec) -> str:
    """Rows sharing the key of the row in ``view``: a CAS checks it is exactly one."""
    return f"SELECT count(*) AS n FROM {ref.sql_name} AS t JOIN {quote(view)} AS s ON {_key_condition(spec)}"


def seed_create_sql(ref: TableReference, spec: TableSpec, view: str) -> str:
    """CREATE TABLE ... AS SELECT: the table and its seed rows in one commit, so two creators
    cannot both insert them. Only for specs without column DEFAULTs (CTAS cannot declare them)."""
    if any(c.default_sql for c in spec.columns):
        raise StorageError(f"{ref.name}: a seeded table cannot have column DEFAULTs")
    cols = ", ".join(quote(c) for c in spec.column_names)
    return (
        f"CREATE TABLE IF NOT EXISTS {ref.sql_name} USING DELTA\n"
        f"TBLPROPERTIES ({properties_clause(table_properties(spec))})\n"
        f"AS SELECT {cols} FROM {quote(view)}"
    )


# -- adapter -----------------------------------------------------------------------------------


def _types() -> Any:
    try:
        from pyspark.sql import types
    except ImportError as exc:
        raise MissingDependencyError(f"Unity Catalog tables need Spark: {INSTALL_HINT}") from exc
    return types


def _databricks_connect() -> Any:
    """``DatabricksSession`` when Databricks Connect is installed and we are not in the Databricks
    Runtime: from a laptop it is the way to Unity Catalog (its session authenticates as the SDK
    does: profile, environment variables, OAuth). None otherwise."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return None
    try:
        from databricks.connect import DatabricksSession
    except ImportError:
        return None
    return DatabricksSession


def active_session() -> Any:
    """The active SparkSession (on Databricks: the notebook's or job's), else the builder's:
    used as a library (a wheel task, another thread, Databricks Connect) there may be no active
    session in this thread although one exists or can be made."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MissingDependencyError(f"Unity Catalog tables need Spark: {INSTALL_HINT}") from exc
    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    connect = _databricks_connect()
    try:
        if connect is not None:
            return connect.builder.getOrCreate()
        return SparkSession.builder.getOrCreate()
    except Exception as exc:
        raise StorageError(
            f"no SparkSession and none could be created ({exc}); catalog.schema.table names need Spark: {INSTALL_HINT}"
        ) from exc


def _utc(value: Any) -> Any:
    """pyspark collects TIMESTAMPs as naive local datetimes; make them aware UTC."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _not_found(exc: Exception) -> bool:
    text = str(exc).upper()
    return "TABLE_OR_VIEW_NOT_FOUND" in text or "DELTA_TABLE_NOT_FOUND" in text or "NOT A DELTA TABLE" in text


class SparkTable:
    """One Delta table in Unity Catalog; implements :class:`lakeflow_job_meta.storage.base.Table`."""

    def __init__(self, ref: TableReference, spec: TableSpec, spark: Any, *, actor: str | None = None):
        if ref.parts is None:
            raise StorageError(f"{ref.name} is a path; Spark tables need catalog.schema.table")
        self.ref = ref
        self.name = ref.name
        self.spec = spec
        self.spark = spark
        self._actor = actor
        self._warned_fallback = False
        self._seeded = False  # seed rows known to be present (checked once per object)

    def __repr__(self) -> str:
        return f"SparkTable({self.name!r}, kind={self.spec.kind!r})"

    @property
    def actor(self) -> str:
        if self._actor is None:
            self._actor = str(self.spark.sql("SELECT current_user() AS u").collect()[0]["u"])
        return self._actor

    def _sql(self, query: str) -> Any:
        try:
            return self.spark.sql(query)
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> StorageError:
        if _not_found(exc):
            return TableNotFoundError(self.name)
        conflict = conflict_class(exc)
        if conflict is not None:
            return DeltaConflictError(f"{self.name}: {exc}", conflict)
        return StorageError(f"{self.name}: {exc}")

    def _retrying(self, what: str, action: Callable[[], _T]) -> _T:
        """Run an idempotent ``action`` again when a concurrent commit won (bounded, with a short
        random backoff so racing writers spread out). The last conflict is raised."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return action()
            except DeltaConflictError as exc:
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                log.debug("%s on %s lost a commit race (%s), retrying", what, self.name, exc.error_class)
                time.sleep(random.uniform(0, 0.05 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading -------------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.spark.catalog.tableExists(self.ref.sql_name))

    def version(self) -> int:
        rows = self._sql(version_sql(self.ref)).collect()
        if not rows:
            raise TableNotFoundError(self.name)
        return int(rows[0]["version"])

    def snapshot_id(self) -> str:
        rows = self._sql(detail_sql(self.ref)).collect()
        if not rows:
            raise TableNotFoundError(self.name)
        return f"{rows[0]['id']}@{self.version()}"

    def _present_columns(self) -> list[str]:
        try:
            return list(self.spark.table(self.ref.sql_name).columns)
        except Exception as exc:
            if _not_found(exc):
                raise TableNotFoundError(self.name) from exc
            raise StorageError(f"{self.name}: {exc}") from exc

    def _rows(self, rows: Sequence[Any], extra: Sequence[str] = ()) -> list[dict[str, Any]]:
        names = (*self.spec.column_names, *extra)
        out = []
        for row in rows:
            data = row.asDict() if hasattr(row, "asDict") else dict(row)
            out.append({n: _utc(data.get(n)) for n in names})
        return out

    def read_all(self) -> list[dict[str, Any]]:
        present = set(self._present_columns())
        columns = [c for c in self.spec.column_names if c in present]
        return self._rows(self._sql(select_sql(self.ref, columns)).collect())

    def read_matching(self, column: str, values: Collection[str]) -> list[dict[str, Any]]:
        """Filtered by Spark (a DataFrame filter, no SQL text): only the matches are collected."""
        if column not in self.spec.column_names:
            raise StorageError(f"{self.name}: no column {column!r}")
        from pyspark.sql import functions as sql_functions

        present = set(self._present_columns())
        columns = [c for c in self.spec.column_names if c in present]
        try:
            frame = self.spark.table(self.ref.sql_name).select(*columns)
            rows = frame.filter(sql_functions.col(column).isin(sorted(values))).collect()
        except Exception as exc:
            if _not_found(exc):
                raise TableNotFoundError(self.name) from exc
            raise StorageError(f"{self.name}: {exc}") from exc
        return self._rows(rows)

    def _properties(self) -> dict[str, str]:
        rows = self._sql(f"SHOW TBLPROPERTIES {self.ref.sql_name}").collect()
        return {str(r["key"]): str(r["value"]) for r in rows}

    def changes_since(self, version: int) -> list[dict[str, Any]] | None:
        current = self.version()
        if version >= current:
            return []
        if self._properties().get(CDF_PROPERTY, "false").lower() != "true":
            self._fallback(f"{CDF_PROPERTY} is not true")
            return None
        present = set(self._present_columns())
        columns = [c for c in self.spec.column_names if c in present]
        try:
            reader = self.spark.read.options(**changes_options(version, current))
            frame = reader.table(self.ref.sql_name).select(*columns, "_change_type", "_commit_version")
            rows = frame.collect()
        except Exception as exc:
            if _not_found(exc):
                raise TableNotFoundError(self.name) from exc
            self._fallback(str(exc))
            return None
        out = self._rows(rows, extra=("_change_type", "_commit_version"))
        for row in out:
            row["_commit_version"] = int(row["_commit_version"])
        out.sort(key=lambda r: r["_commit_version"])
        return out

    def _fallback(self, reason: str) -> None:
        """Say once per table, at WARNING, that the feed cannot answer (then at DEBUG): a silent
        fallback would turn every change into a full reconcile without anyone noticing."""
        level = logging.DEBUG if self._warned_fallback else logging.WARNING
        self._warned_fallback = True
        log.log(
            level, "change data feed of %s cannot answer; falling back to a full read: %s", self.name, reason
        )

    def history(self, limit: int = 20) -> list[Commit]:
        rows = self._sql(history_sql(self.ref, limit)).collect()
        return [
            Commit(
                version=int(r["version"]),
                timestamp=_utc(r["timestamp"]),
                operation=str(r["operation"]),
                user=r["userName"] if "userName" in r.asDict() else None,
            )
            for r in rows
        ]

    def maintenance_only(self, since: int, until: int) -> bool:
        try:
            return maintenance_only(self.history, since, until)
        except StorageError as exc:  # history unreadable: let the caller read the feed instead
            log.debug("history of %s unreadable: %s", self.name, exc)
            return False

    # -- writing -------------------------------------------------------------------------------

    def _fill(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        return fill_row(self.spec, self.name, row, now, self.actor)

    def _key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return key_of(self.spec, self.name, row)

    def _update_columns(self, upserts: Sequence[Mapping[str, Any]]) -> list[str]:
        return update_columns(self.spec, upserts)

    def source_view(
        self, rows: Sequence[Mapping[str, Any]], extra: Sequence[tuple[str, str]] = ((OP_COLUMN, "string"),)
    ) -> str:
        """Register ``rows`` (full spec rows, plus the ``extra`` columns, by default ``_op``) as a
        uniquely named temp view."""
        name = f"lakeflow_job_meta_src_{uuid.uuid4().hex}"
        schema = spark_schema(self.spec, extra)
        frame = self.spark.createDataFrame(
            [tuple(r.get(f.name) for f in schema.fields) for r in rows], schema
        )
        frame.createOrReplaceTempView(name)
        return name

    def _drop_view(self, name: str) -> None:
        try:
            self.spark.catalog.dropTempView(name)
        except Exception:  # pragma: no cover - best effort cleanup
            log.debug("could not drop temp view %s", name)

    def merge(
        self,
        upserts: Sequence[Mapping[str, Any]] = (),
        deletes: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        if not upserts and not deletes:
            return False
        now = datetime.now(timezone.utc)
        rows = merge_source_rows(self.spec, self.name, upserts, deletes, now, self.actor)
        view = self.source_view(rows)
        query = merge_sql(self.ref, view, self.spec, self._update_columns(upserts))
        try:
            # Re-running the MERGE from the same source rows is idempotent.
            result = self._retrying("merge", lambda: self._sql(query).collect())
        finally:
            self._drop_view(view)
        return _affected(result) > 0

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        now = datetime.now(timezone.utc)
        view = self.source_view([self._fill(r, now) for r in rows], extra=())
        try:
            self._sql(insert_sql(self.ref, view, self.spec.column_names))
        finally:
            self._drop_view(view)

    def compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        return self._compare_and_set(row, expected)

    def _compare_and_set(self, row: Mapping[str, Any], expected: Mapping[str, Any] | None) -> bool:
        key = self._key_of(row)
        checks = cas_expected_columns(self.ref, self.spec, expected or {})
        source = {**self._fill(row, datetime.now(timezone.utc)), **{n: v for n, _t, v in checks}}
        view = self.source_view([source], extra=[(n, t) for n, t, _v in checks])
        try:
            query = cas_sql(self.ref, view, self.spec, self._update_columns([row]), expected)
            try:
                # On a conflict the MERGE is run again: it re-checks ``expected`` on the new
                # snapshot, so it is still a compare-and-set.
                affected = _affected(self._retrying("compare_and_set", lambda: self._sql(query).collect()))
            except DeltaConflictError:
                return False
            if affected == 0:
                return False
            # Verify one row after writing: an insert racing another insert of the same key may
            # both commit under row-level concurrency; two rows for one key is a broken lease.
            counted = self._sql(key_count_sql(self.ref, view, self.spec)).collect()
            count = int(counted[0]["n"]) if counted else 0
        finally:
            self._drop_view(view)
        if affected != 1 or count != 1:
            raise StorageError(
                f"{self.name}: {count} rows share the key {key} (compare_and_set wrote {affected}); "
                "delete all but one"
            )
        return True

    # -- schema --------------------------------------------------------------------------------

    def create_or_migrate(self, seed: Sequence[Mapping[str, Any]] = ()) -> None:
        # A concurrent creator or migrator may win a commit race; every step re-reads the table.
        self._retrying("create_or_migrate", lambda: self._create_or_migrate(seed))

    def _create_or_migrate(self, seed: Sequence[Mapping[str, Any]]) -> None:
        if not self.exists():
            if seed:
                self._create_seeded(seed)
            else:
                # IF NOT EXISTS makes a concurrent creation harmless.
                self._sql(create_table_sql(self.ref, self.spec))
            if self._properties().get(SCHEMA_VERSION_PROPERTY) == str(self.spec.schema_version):
                return  # ours, complete (or a concurrent creator's, equally complete)
        present = set(self._present_columns())
        missing = [c for c in self.spec.columns if c.name not in present]
        props = self._properties()
        stored = props.get(SCHEMA_VERSION_PROPERTY)
        if stored is not None and stored.isdigit() and int(stored) > self.spec.schema_version:
            log.warning("%s has a newer schema version (%s); leaving it as it is", self.name, stored)
            return
        wanted = {k: v for k, v in table_properties(self.spec).items() if props.get(k) != v}
        for statement in migrate_sql(self.ref, missing, wanted):
            self._sql(statement)
        if seed and not self._seeded:
            # A table created before seeding: insert the rows whose key is absent.
            for row in seed:
                self._compare_and_set(row, None)
            self._seeded = True

    def _create_seeded(self, seed: Sequence[Mapping[str, Any]]) -> None:
        now = datetime.now(timezone.utc)
        view = self.source_view([self._fill(r, now) for r in seed], extra=())
        try:
            self._sql(seed_create_sql(self.ref, self.spec, view))
        finally:
            self._drop_view(view)
        self._seeded = True


def _affected(result: Sequence[Any]) -> int:
    """``num_affected_rows`` of a Delta MERGE result (0 when the engine reports nothing)."""
    if not result:
        return 0
    data = result[0].asDict() if hasattr(result[0], "asDict") else dict(result[0])
    return int(data.get("num_affected_rows") or 0)

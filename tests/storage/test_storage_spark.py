"""The Spark backend: generated SQL (pure), error-class mapping, and the adapter on local Spark.

The session (tests/conftest.py ``spark``) has Delta Lake; what Delta executes (MERGE, the change
feed, history, defaults, the lease) is covered by the storage contract suite that runs on both
backends (test_storage_contract.py). Here: the SQL text, a fake session for the retry paths, and
a few checks that need no Delta (the same DDL on parquet).
"""

from __future__ import annotations

import importlib.util

import pytest

from lakeflow_job_meta.errors import StorageError
from lakeflow_job_meta.storage.naming import parse_table_reference
from lakeflow_job_meta.storage.spark import (
    DeltaConflictError,
    cas_expected_columns,
    cas_sql,
    changes_options,
    conflict_class,
    create_table_sql,
    error_class,
    insert_sql,
    key_count_sql,
    merge_sql,
    migrate_sql,
    quote,
    seed_create_sql,
    select_sql,
    table_properties,
    version_sql,
)
from lakeflow_job_meta.storage.tables import CONTROL_SPEC, JOBS_SPEC, STATE_SPEC

HAVE_PYSPARK = importlib.util.find_spec("pyspark") is not None
REF = parse_table_reference("main.meta.ctl")


# -- pure SQL generation ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a`b", "a b", "a;b", "", "a.b", "é", "a'b", "x\n"])
def test_quote_refuses_unsafe_identifiers(bad):
    with pytest.raises(StorageError):
        quote(bad)


def test_create_table_sql():
    sql = create_table_sql(REF, CONTROL_SPEC)
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `main`.`meta`.`ctl` (\n  `source_id` STRING,")
    assert "`execution_order` INT," in sql
    assert "`created_at` TIMESTAMP DEFAULT current_timestamp()" in sql
    assert "`created_by` STRING DEFAULT current_user()" in sql
    assert "`source_file` STRING DEFAULT NULL" in sql
    assert "USING DELTA" in sql
    assert "'delta.enableChangeDataFeed' = 'true'" in sql
    assert "'delta.feature.allowColumnDefaults' = 'supported'" in sql
    assert "'lakeflow_job_meta.schema_version' = '2'" in sql
    # Column order: the reference's eight first.
    body = sql.split("(\n", 1)[1]
    assert [line.strip().split()[0].strip("`") for line in body.splitlines()[:8]] == list(
        CONTROL_SPEC.column_names[:8]
    )


def test_table_properties_per_kind():
    assert "delta.enableChangeDataFeed" not in table_properties(JOBS_SPEC)
    assert "delta.feature.allowColumnDefaults" not in table_properties(JOBS_SPEC)
    assert table_properties(STATE_SPEC)["delta.isolationLevel"] == "Serializable"


def test_migrate_sql_order():
    missing = [c for c in CONTROL_SPEC.columns if c.name in ("created_by", "source_file")]
    statements = migrate_sql(REF, missing, table_properties(CONTROL_SPEC))
    assert statements[0].endswith("SET TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')")
    assert (
        statements[1]
        == "ALTER TABLE `main`.`meta`.`ctl` ADD COLUMNS (`created_by` STRING, `source_file` STRING)"
    )
    assert (
        statements[2]
        == "ALTER TABLE `main`.`meta`.`ctl` ALTER COLUMN `created_by` SET DEFAULT current_user()"
    )
    assert statements[3] == "ALTER TABLE `main`.`meta`.`ctl` ALTER COLUMN `source_file` SET DEFAULT NULL"
    assert statements[-1] == (
        "ALTER TABLE `main`.`meta`.`ctl` SET TBLPROPERTIES ('lakeflow_job_meta.schema_version' = '2')"
    )
    assert migrate_sql(REF, [], {}) == []


def test_read_sql():
    assert version_sql(REF) == "DESCRIBE HISTORY `main`.`meta`.`ctl` LIMIT 1"
    assert (
        select_sql(REF, ["source_id", "is_active"])
        == "SELECT `source_id`, `is_active` FROM `main`.`meta`.`ctl`"
    )
    assert changes_options(4, 9) == {"readChangeFeed": "true", "startingVersion": "5", "endingVersion": "9"}
    assert key_count_sql(REF.sibling("_state"), "v", STATE_SPEC) == (
        "SELECT count(*) AS n FROM `main`.`meta`.`ctl_state` AS t JOIN `v` AS s"
        " ON t.`scope` = s.`scope` AND t.`key` = s.`key`"
    )


def test_seeded_create_is_one_ctas_and_refuses_defaults():
    sql = seed_create_sql(REF.sibling("_state"), STATE_SPEC, "v")
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `main`.`meta`.`ctl_state` USING DELTA\n")
    assert "'delta.isolationLevel' = 'Serializable'" in sql
    assert sql.endswith("AS SELECT `scope`, `key`, `value`, `updated_at` FROM `v`")
    with pytest.raises(StorageError, match="DEFAULT"):
        seed_create_sql(REF, CONTROL_SPEC, "v")


class _Classy(Exception):
    """An exception exposing only the Spark 3.4 accessor."""

    def __init__(self, cls):
        super().__init__("a message that never says the c-word")
        self.cls = cls

    def getErrorClass(self):
        return self.cls


@pytest.mark.parametrize(
    ("cls", "conflict"),
    [
        ("DELTA_CONCURRENT_APPEND", True),
        ("DELTA_CONCURRENT_DELETE_READ", True),
        ("DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT", True),
        ("DELTA_METADATA_CHANGED", True),
        ("DELTA_PROTOCOL_CHANGED", True),
        ("TABLE_OR_VIEW_NOT_FOUND", False),
        ("DELTA_MERGE_MULTIPLE_SOURCE_ROWS_MATCHING_TARGET_ROW_IN_MERGE", False),
        (None, False),
    ],
)
def test_conflicts_are_classified_by_error_class(cls, conflict):
    exc = _Classy(cls)
    assert error_class(exc) == cls
    assert (conflict_class(exc) is not None) is conflict
    # Found through the chain too (the adapter wraps errors), and never from the message.
    try:
        raise StorageError("wrapped") from exc
    except StorageError as wrapped:
        assert (conflict_class(wrapped) is not None) is conflict
    assert conflict_class(RuntimeError("ConcurrentAppendException: concurrent update")) is None


class _JavaThrowable:
    def __init__(self, cls):
        self.cls = cls

    def getErrorClass(self):
        return self.cls


class _Py4JJavaErrorLike(Exception):
    """What pyspark re-raises for a JVM exception it has no Python class for."""

    def __init__(self, cls):
        super().__init__("An error occurred while calling o57.sql.")
        self.java_exception = _JavaThrowable(cls)


def test_conflict_class_is_read_from_a_bare_java_exception():
    assert (
        conflict_class(_Py4JJavaErrorLike("DELTA_CONCURRENT_TRANSACTION")) == "DELTA_CONCURRENT_TRANSACTION"
    )
    assert conflict_class(_Py4JJavaErrorLike(None)) is None


def test_merge_sql():
    sql = merge_sql(REF.sibling("_jobs"), "v1", JOBS_SPEC, ["job_id", "updated_at"])
    assert sql.startswith("MERGE INTO `main`.`meta`.`ctl_jobs` AS t USING `v1` AS s ON ")
    assert "ON t.`target` = s.`target` AND t.`module_name` = s.`module_name`" in sql
    assert "WHEN MATCHED AND s.`_op` = 'd' THEN DELETE" in sql
    assert (
        "WHEN MATCHED AND s.`_op` = 'u' THEN UPDATE SET t.`job_id` = s.`job_id`, t.`updated_at` = s.`updated_at`"
        in sql
    )
    assert "WHEN NOT MATCHED AND s.`_op` = 'u' THEN INSERT (`target`, `module_name`, `job_id`" in sql


def test_cas_sql_compares_against_expected_values_in_the_source_view():
    evil = "x' OR 1=1 --"
    state = REF.sibling("_state")
    sql = cas_sql(state, "v", STATE_SPEC, ["value", "updated_at"], {"value": evil})
    assert evil not in sql
    assert "WHEN MATCHED AND t.`value` <=> s.`_expected_0` THEN UPDATE SET" in sql
    assert cas_expected_columns(state, STATE_SPEC, {"value": evil}) == [("_expected_0", "string", evil)]
    sql = cas_sql(state, "v", STATE_SPEC, ["value"], {"value": None, "key": "k"})
    assert "WHEN MATCHED AND t.`key` <=> s.`_expected_0` AND t.`value` <=> s.`_expected_1` THEN" in sql
    sql = cas_sql(state, "v", STATE_SPEC, ["value"], None)
    assert "WHEN NOT MATCHED THEN INSERT" in sql and "WHEN MATCHED" not in sql
    with pytest.raises(StorageError):
        cas_sql(REF, "v", STATE_SPEC, ["value"], {"value; DROP": 1})


def test_injection_never_reaches_sql():
    from lakeflow_job_meta.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        parse_table_reference("main.meta.ctl`; DROP TABLE x; --")
    with pytest.raises(StorageError):
        merge_sql(REF, "v`; DROP TABLE x", CONTROL_SPEC, [])


def test_insert_sql_names_columns():
    assert (
        insert_sql(REF, "v", ["a", "b"])
        == "INSERT INTO `main`.`meta`.`ctl` (`a`, `b`) SELECT `a`, `b` FROM `v`"
    )


# -- local Spark -------------------------------------------------------------------------------


def _local_ref(name: str):
    return parse_table_reference(f"spark_catalog.default.{name}")


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_missing_and_non_delta_tables_fail_clearly(spark):
    from lakeflow_job_meta.errors import TableNotFoundError
    from lakeflow_job_meta.storage.spark import SparkTable

    missing = SparkTable(_local_ref("absent"), CONTROL_SPEC, spark)
    with pytest.raises(TableNotFoundError):
        missing.read_all()
    ref = _local_ref("ctl_ddl2")
    spark.sql(create_table_sql(ref, CONTROL_SPEC, provider="parquet"))
    with pytest.raises(StorageError):
        SparkTable(ref, CONTROL_SPEC, spark).version()  # DESCRIBE HISTORY is Delta syntax


class _Result:
    def __init__(self, rows):
        self._rows = rows

    def collect(self):
        return self._rows


class FakeSpark:
    """Records SQL; answers MERGE with scripted results or errors (no JVM needed)."""

    def __init__(self, merge_outcomes):
        self.queries: list[tuple[str, dict | None]] = []
        self.outcomes = list(merge_outcomes)
        self.views: set[str] = set()
        self.catalog = self
        self.key_rows = 1
        self.frames: list[list[dict]] = []

    def sql(self, query, args=None):
        self.queries.append((query, args))
        if query.startswith("SELECT count"):
            return _Result([{"n": self.key_rows}])
        if query.startswith("MERGE"):
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return _Result([{"num_affected_rows": outcome}])
        return _Result([])

    def createDataFrame(self, rows, schema):
        spark = self
        self.frames.append([dict(zip(schema.names, row, strict=True)) for row in rows])

        class Frame:
            def createOrReplaceTempView(self, name):
                spark.views.add(name)

        return Frame()

    def dropTempView(self, name):
        self.views.discard(name)


def _conflict(cls: str = "DELTA_CONCURRENT_APPEND") -> Exception:
    from pyspark.errors import AnalysisException

    return AnalysisException(message=f"[{cls}] Files were added by a concurrent update", errorClass=cls)


@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_spark_cas_retries_conflicts_by_class_and_verifies_one_row():
    from lakeflow_job_meta.storage.spark import SparkTable

    ref = REF.sibling("_state")
    fake = FakeSpark([_conflict(), 1, 0, RuntimeError("concurrent, but no error class")])
    table = SparkTable(ref, STATE_SPEC, fake, actor="me")
    assert table.compare_and_set({"scope": "l", "key": "w", "value": "a"}, None) is True
    merges = [q for q in fake.queries if q[0].startswith("MERGE")]
    assert len(merges) == 2 and merges[0] == merges[1]
    assert (
        fake.queries[-1][0].startswith("SELECT count")
        and " JOIN `lakeflow_job_meta_src_" in fake.queries[-1][0]
    )
    assert table.compare_and_set({"scope": "l", "key": "w", "value": "b"}, {"value": "zz"}) is False
    assert fake.queries[-1][1] is None and "s.`_expected_0`" in fake.queries[-1][0]
    assert fake.frames[-1] == [
        {
            "scope": "l",
            "key": "w",
            "value": "b",
            "updated_at": fake.frames[-1][0]["updated_at"],
            "_expected_0": "zz",
        }
    ]
    # A message mentioning "concurrent" without a conflict class is an error, not a retry.
    with pytest.raises(StorageError, match="no error class"):
        table.compare_and_set({"scope": "l", "key": "w", "value": "b"}, {"value": "a"})
    # Conflicts every time: bounded, then "not won".
    fake.outcomes = [_conflict("DELTA_METADATA_CHANGED")] * 5
    assert table.compare_and_set({"scope": "l", "key": "w", "value": "c"}, {"value": "a"}) is False
    assert fake.outcomes == []
    # Two rows for the key after the write: a broken lease, said so.
    fake.outcomes, fake.key_rows = [1], 2
    with pytest.raises(StorageError, match="2 rows share the key"):
        table.compare_and_set({"scope": "l", "key": "w", "value": "d"}, None)
    assert fake.views == set()


@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_spark_merge_retries_conflicts_with_a_bound():
    from lakeflow_job_meta.storage.spark import SparkTable

    fake = FakeSpark([_conflict("DELTA_CONCURRENT_DELETE_READ"), 2])
    table = SparkTable(REF, CONTROL_SPEC, fake, actor="me")
    assert table.merge([{"source_id": "a", "module_name": "m"}]) is True
    assert len([q for q in fake.queries if q[0].startswith("MERGE")]) == 2
    fake.outcomes = [_conflict()] * 5
    with pytest.raises(DeltaConflictError) as raised:
        table.merge([{"source_id": "a", "module_name": "m"}])
    assert raised.value.error_class == "DELTA_CONCURRENT_APPEND" and fake.outcomes == []
    assert fake.views == set()


@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_spark_merge_flow_with_fake_session():
    from lakeflow_job_meta.storage.spark import SparkTable

    fake = FakeSpark([3, 0])
    table = SparkTable(REF, CONTROL_SPEC, fake, actor="me")
    assert table.merge() is False and fake.queries == []
    assert table.merge([{"source_id": "a", "module_name": "m"}], [{"source_id": "b"}]) is True
    (query, args) = fake.queries[-1]
    assert args is None
    assert (
        "UPDATE SET t.`module_name` = s.`module_name`, t.`updated_at` = s.`updated_at`, t.`updated_by` = s.`updated_by`"
        in query
    )
    assert "`created_at` = s" not in query.split("INSERT")[0]
    assert table.merge([], [{"source_id": "zz"}]) is False
    with pytest.raises(StorageError, match="twice"):
        table.merge([{"source_id": "a"}], [{"source_id": "a"}])
    assert fake.views == set()

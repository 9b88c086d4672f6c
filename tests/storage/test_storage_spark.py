"""The Spark backend: generated SQL (pure) and the parts a local Spark without Delta can run.

Local Spark has no Delta (its jars come from Maven, unreachable here), so MERGE, CDF, DESCRIBE
HISTORY and Delta table features are checked only as SQL text or as "parses and binds"; see
docs/STORAGE.md for the list of what stays untested.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone

import pytest

from lakeflow_job_meta.errors import StorageError
from lakeflow_job_meta.storage.naming import parse_table_reference
from lakeflow_job_meta.storage.spark import (
    cas_sql,
    changes_args,
    changes_sql,
    create_table_sql,
    insert_sql,
    merge_sql,
    migrate_sql,
    quote,
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
    assert changes_sql(["key"]).endswith("FROM table_changes(:table_name, :start, :end)")
    assert changes_args(REF, 4, 9) == {"table_name": "`main`.`meta`.`ctl`", "start": 5, "end": 9}


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


def test_cas_sql_binds_expected_values_as_parameters():
    evil = "x' OR 1=1 --"
    sql, args = cas_sql(REF.sibling("_state"), "v", STATE_SPEC, ["value", "updated_at"], {"value": evil})
    assert evil not in sql
    assert "WHEN MATCHED AND t.`value` <=> :expected_0 THEN UPDATE SET" in sql
    assert args == {"expected_0": evil}
    sql, args = cas_sql(REF.sibling("_state"), "v", STATE_SPEC, ["value"], None)
    assert "WHEN NOT MATCHED THEN INSERT" in sql and "WHEN MATCHED" not in sql and args == {}
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


# -- local Spark (no Delta) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    if not HAVE_PYSPARK:
        pytest.skip("pyspark is not installed")
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("lakeflow_job_meta-storage-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _local_ref(name: str):
    return parse_table_reference(f"spark_catalog.default.{name}")


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_same_ddl_runs_on_parquet_and_read_path_works(spark):
    from lakeflow_job_meta.storage.spark import SparkTable

    ref = _local_ref("ctl_ddl")
    spark.sql(create_table_sql(ref, CONTROL_SPEC, provider="parquet"))
    table = SparkTable(ref, CONTROL_SPEC, spark, actor="tester")
    assert table.exists()
    assert not SparkTable(_local_ref("nope"), CONTROL_SPEC, spark).exists()
    assert spark.table(ref.sql_name).columns == list(CONTROL_SPEC.column_names)
    # append = INSERT with a column list from a temp view of a DataFrame.
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    table.append(
        [
            {
                "source_id": "a",
                "module_name": "m",
                "source_type": "sql",
                "execution_order": 1,
                "source_config": "{}",
                "target_config": "{}",
                "transformation_config": "{}",
                "is_active": True,
                "created_at": when,
            }
        ]
    )
    (row,) = table.read_all()
    assert row["source_id"] == "a" and row["execution_order"] == 1 and row["is_active"] is True
    assert row["created_at"] == when and row["created_at"].tzinfo is not None
    assert row["created_by"] == "tester" and row["source_file"] is None
    assert not [v for v in spark.catalog.listTables() if v.name.startswith("lakeflow_job_meta_src_")]


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_user_inserts_against_defaults(spark):
    """Which user INSERT forms fill the DEFAULTs. Local Spark 4.2, parquet (not Delta)."""
    ref = _local_ref("ctl_ins")
    spark.sql(create_table_sql(ref, CONTROL_SPEC, provider="parquet"))
    values = "'s1', 'm', 'sql', 1, '{}', '{}', '{}', true"
    cols = ", ".join(f"`{c}`" for c in CONTROL_SPEC.column_names[:8])
    spark.sql(f"INSERT INTO {ref.sql_name} ({cols}) VALUES ({values})")
    spark.sql(
        f"INSERT INTO {ref.sql_name} VALUES ({values.replace('s1', 's2')}, DEFAULT, DEFAULT, DEFAULT, DEFAULT, DEFAULT)"
    )
    # The reference's positional 8-value INSERT: refused by open-source Spark 4.2.
    with pytest.raises(Exception, match="NOT_ENOUGH_DATA_COLUMNS"):
        spark.sql(f"INSERT INTO {ref.sql_name} VALUES ({values.replace('s1', 's3')})")
    rows = {r["source_id"]: r for r in spark.table(ref.sql_name).collect()}
    assert set(rows) == {"s1", "s2"}
    for r in rows.values():
        assert r["created_at"] is not None and r["created_by"] and r["source_file"] is None


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_merge_and_cas_sql_parse_and_bind(spark):
    """MERGE needs Delta; on a parquet table Spark must get past parsing and parameter binding
    and fail only because the table cannot MERGE."""
    from lakeflow_job_meta.storage.spark import SparkTable

    ref = _local_ref("state_merge")
    spark.sql(create_table_sql(ref, STATE_SPEC, provider="parquet"))
    table = SparkTable(ref, STATE_SPEC, spark, actor="tester")
    view = table.source_view([{"scope": "s", "key": "k", "value": "v", "_op": "u"}])
    assert spark.table(view).collect()[0]["_op"] == "u"
    for sql, args in (
        (merge_sql(ref, view, STATE_SPEC, ["value", "updated_at"]), {}),
        cas_sql(ref, view, STATE_SPEC, ["value"], {"value": "x' OR 1=1 --", "updated_at": None}),
        cas_sql(ref, view, STATE_SPEC, ["value"], None),
    ):
        with pytest.raises(Exception, match=r"TABLE_OPERATION|does not support MERGE"):
            spark.sql(sql, args=args or None)
    with pytest.raises(StorageError, match="MERGE"):
        table.merge([{"scope": "s", "key": "k", "value": "1"}])
    spark.catalog.dropTempView(view)
    # merge() dropped its own temp view although the MERGE failed.
    assert not [v for v in spark.catalog.listTables() if v.name.startswith("lakeflow_job_meta_src_")]


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_migration_statements_on_parquet(spark):
    """ADD COLUMNS + SET DEFAULT run on parquet; the Delta feature property is only stored."""
    from lakeflow_job_meta.storage.spark import SparkTable

    ref = _local_ref("ctl_old")
    old_cols = ", ".join(f"`{c.name}` {c.type.upper()}" for c in CONTROL_SPEC.columns[:8])
    spark.sql(f"CREATE TABLE {ref.sql_name} ({old_cols}) USING parquet")
    spark.sql(f"INSERT INTO {ref.sql_name} VALUES ('old', 'm', 'sql', 1, '{{}}', '{{}}', '{{}}', true)")
    missing = list(CONTROL_SPEC.columns[8:])
    for statement in migrate_sql(ref, missing, table_properties(CONTROL_SPEC)):
        spark.sql(statement)
    table = SparkTable(ref, CONTROL_SPEC, spark, actor="t")
    assert table._properties()["lakeflow_job_meta.schema_version"] == "2"
    (row,) = table.read_all()
    assert row["source_id"] == "old" and row["created_at"] is None
    cols = ", ".join(f"`{c}`" for c in CONTROL_SPEC.column_names[:8])
    spark.sql(
        f"INSERT INTO {ref.sql_name} ({cols}) VALUES ('new', 'm', 'sql', 2, '{{}}', '{{}}', '{{}}', true)"
    )
    new = next(r for r in table.read_all() if r["source_id"] == "new")
    assert new["created_at"] is not None  # the default set by ALTER COLUMN applies


@pytest.mark.spark
@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_delta_only_reads_fail_clearly_without_delta(spark):
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

    def sql(self, query, args=None):
        self.queries.append((query, args))
        if query.startswith("MERGE"):
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return _Result([{"num_affected_rows": outcome}])
        return _Result([])

    def createDataFrame(self, rows, schema):
        spark = self

        class Frame:
            def createOrReplaceTempView(self, name):
                spark.views.add(name)

        return Frame()

    def dropTempView(self, name):
        self.views.discard(name)


@pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed")
def test_spark_cas_retries_concurrent_failures_and_reads_affected_rows():
    from lakeflow_job_meta.storage.spark import SparkTable

    ref = REF.sibling("_state")
    conflict = RuntimeError("[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added")
    fake = FakeSpark([conflict, 1, 0, RuntimeError("boom")])
    table = SparkTable(ref, STATE_SPEC, fake, actor="me")
    assert table.compare_and_set({"scope": "l", "key": "w", "value": "a"}, None) is True
    merges = [q for q in fake.queries if q[0].startswith("MERGE")]
    assert len(merges) == 2 and merges[0] == merges[1]
    assert table.compare_and_set({"scope": "l", "key": "w", "value": "b"}, {"value": "zz"}) is False
    assert fake.queries[-1][1] == {"expected_0": "zz"}
    with pytest.raises(StorageError, match="boom"):
        table.compare_and_set({"scope": "l", "key": "w", "value": "b"}, {"value": "a"})
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

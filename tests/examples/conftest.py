"""A local Spark session for running the examples (notebooks and SQL) as far as they run here.

Tables are Delta when the session can load Delta (its jars), else Parquet: the examples read
them through ``spark.table`` and SQL, which behave the same for both.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("lakeflow_job_meta-examples")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def table_format(spark: Any) -> str:
    """``delta`` when this session has Delta's jars, else ``parquet``."""
    try:
        spark.sql("CREATE TABLE IF NOT EXISTS default.__delta_probe (x INT) USING delta")
    except Exception:
        return "parquet"
    spark.sql("DROP TABLE default.__delta_probe")
    return "delta"

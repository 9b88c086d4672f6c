"""One local Spark session with Delta Lake for the whole pytest session.

The ``delta-spark`` wheel carries only Python; its jars come from Maven Central through Spark's
own resolver (``spark.jars.packages``, as ``configure_spark_with_delta_pip`` does), cached under
``~/.cache/lakeflow_job_meta/ivy`` so only the first run downloads them (about 30 s). The artifact
is derived from the installed versions: ``io.delta:delta-spark_<spark major.minor>_2.13:<delta>``.
Transitive jars that pyspark already ships (Hadoop client, Jackson, Parquet, logging, codecs)
are excluded: loading a second, older copy next to Spark's own is asking for class conflicts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any

HAVE_SPARK_DELTA = all(importlib.util.find_spec(m) is not None for m in ("pyspark", "delta"))

# Read at import (collection) time, before any test points HOME at a temp dir.
IVY_DIR = Path(
    os.environ.get("LAKEFLOW_JOB_META_IVY_DIR") or Path.home() / ".cache" / "lakeflow_job_meta" / "ivy"
)

# groupId:artifactId pulled in by delta-spark that pyspark's own jars/ already provide.
EXCLUDED = (
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "com.fasterxml.jackson.core:jackson-annotations",
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.fasterxml.jackson.datatype:jackson-datatype-jdk8",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.slf4j:slf4j-api",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-jackson",
    "org.xerial.snappy:snappy-java",
    "com.github.luben:zstd-jni",
    "io.airlift:aircompressor",
    "org.roaringbitmap:RoaringBitmap",
    "org.roaringbitmap:shims",
    "commons-logging:commons-logging",
)


def delta_artifact() -> str:
    """The Maven coordinate of the Delta jar matching the installed pyspark and delta-spark."""
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_version = importlib.metadata.version("delta-spark")
    return f"io.delta:delta-spark_{spark_minor}_2.13:{delta_version}"


def build_session(warehouse: Path) -> Any:
    """Start local Spark with the Delta extension and catalog (one JVM; about 10-30 s here)."""
    from pyspark.sql import SparkSession

    IVY_DIR.mkdir(parents=True, exist_ok=True)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("lakeflow_job_meta-tests")
        .config("spark.jars.packages", delta_artifact())
        .config("spark.jars.excludes", ",".join(EXCLUDED))
        .config("spark.jars.ivy", str(IVY_DIR))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.sql.session.timeZone", "UTC")
        # Small local tables: skip the stats collection and checkpoints that cost seconds each.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session

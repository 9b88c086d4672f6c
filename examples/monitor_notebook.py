# Databricks notebook source
# MAGIC %md
# MAGIC # lakeflow_job_meta monitor (notebook entry)
# MAGIC Runs the monitor with the reference's parameters as widgets. Install the wheel on the
# MAGIC cluster or with `%pip install /Volumes/.../lakeflow_job_meta-0.1.0-py3-none-any.whl`.

# COMMAND ----------
dbutils.widgets.text("control_table", "")
dbutils.widgets.text("volume_path", "")
dbutils.widgets.text("check_interval_seconds", "60")
dbutils.widgets.text("max_iterations", "")

# COMMAND ----------
from lakeflow_job_meta import MetadataMonitor  # noqa: E402
from lakeflow_job_meta.engine.monitor import install_signal_handlers  # noqa: E402

control_table = dbutils.widgets.get("control_table").strip()
if not control_table:
    raise ValueError("the control_table parameter is required (catalog.schema.table)")
volume_path = dbutils.widgets.get("volume_path") or None
check_interval_seconds = float(dbutils.widgets.get("check_interval_seconds") or 60)
max_iterations_text = dbutils.widgets.get("max_iterations")
max_iterations = int(max_iterations_text) if max_iterations_text.strip() else None

monitor = MetadataMonitor(
    control_table,
    check_interval_seconds=check_interval_seconds,
    volume_path=volume_path,
    target="workspace",
)
install_signal_handlers(monitor)
monitor.run_continuous(max_iterations=max_iterations)

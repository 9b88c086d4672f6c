"""Storage adapters: the tool's Delta tables through delta-rs (local) or Spark (Databricks)."""

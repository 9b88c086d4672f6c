"""One constant per limit: the schema's copies of the limits it can express agree with them."""

from __future__ import annotations

import json
from importlib import resources

from lakeflow_job_meta.metadata.limits import MAX_CONCURRENT_RUNS, MAX_DESCRIPTION_CHARS


def test_schema_limits_equal_the_constants() -> None:
    text = resources.files("lakeflow_job_meta.metadata").joinpath("schema.json").read_text(encoding="utf-8")
    module = json.loads(text)["$defs"]["module"]["properties"]
    assert module["description"]["maxLength"] == MAX_DESCRIPTION_CHARS
    assert module["max_concurrent_runs"]["maximum"] == MAX_CONCURRENT_RUNS

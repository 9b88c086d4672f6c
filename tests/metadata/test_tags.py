"""Tag rules per cloud (databricks/cli libs/tags) and the strictest common default."""

from __future__ import annotations

import re

import pytest

from lakeflow_job_meta.metadata.tags import (
    MAX_USER_TAGS,
    OWNERSHIP_TAG_KEYS,
    TOOL_TAG_KEYS,
    cloud_for_host,
    key_problem,
    tag_issues,
    value_problem,
)
from lakeflow_job_meta.planning.ownership import is_owned_by_us, label_value, owner_tags


@pytest.mark.parametrize(
    ("host", "cloud"),
    [
        ("https://adb-123.4.azuredatabricks.net", "azure"),
        ("https://1234.5.gcp.databricks.com/", "gcp"),
        ("https://dbc-a1b2.cloud.databricks.com", "aws"),
        ("http://127.0.0.1:8080", None),
        ("https://databricks.example.com", None),
        (None, None),
    ],
)
def test_cloud_comes_from_the_host_or_stays_unknown(host, cloud):
    assert cloud_for_host(host) == cloud


@pytest.mark.parametrize(
    ("value", "gcp", "aws", "azure"),
    [
        ("sales-analytics", True, True, True),
        ("", True, True, True),  # an empty value is allowed everywhere
        ("Data Engineering", False, True, True),  # spaces: not a GCP label
        ("R&D", False, False, True),
        ("x" * 64, False, True, True),
        ("x" * 256, False, False, True),
        ("x" * 257, False, False, False),
        ("café", False, False, True),  # Go's \w is ASCII-only, so the CLI's AWS pattern rejects é
        ("日本", False, False, False),  # outside Latin-1
    ],
)
def test_value_rules_per_cloud(value, gcp, aws, azure):
    verdicts = {c: value_problem(value, c) is None for c in ("gcp", "aws", "azure")}
    assert verdicts == {"gcp": gcp, "aws": aws, "azure": azure}
    # unknown cloud: valid only where every cloud accepts it
    assert (value_problem(value) is None) == all(verdicts.values())


def test_key_rules():
    assert key_problem("") == "tag key must not be empty"
    assert key_problem("cost_center") is None
    assert key_problem("a/b", "aws") is None and key_problem("a/b", "azure") is not None
    assert key_problem("_private") == (
        "tag key '_private' does not match GCP's pattern ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
    )
    assert key_problem("k" * 64, "azure") is None and "at most 63" in (key_problem("k" * 64) or "")


def test_tag_issues_reserved_and_bad_values():
    tags = {f"t{i}": "v" for i in range(21)}
    assert tag_issues(tags) == []
    found = tag_issues({**tags, "ljm_table": "x", "ljm_removed": "true", "bad key": "ok"})
    assert [field for field, _ in found] == [("ljm_table",), ("ljm_removed",), ("bad key",)]


def test_schema_limit_matches_the_job_limit_minus_every_tool_tag():
    from lakeflow_job_meta.metadata.schema import metadata_schema

    tags_schema = metadata_schema()["$defs"]["module"]["properties"]["tags"]
    # the 3 ownership tags and ljm_removed, added when a removed module's job is paused
    assert (*OWNERSHIP_TAG_KEYS, "ljm_removed") == TOOL_TAG_KEYS
    assert tags_schema["maxProperties"] == MAX_USER_TAGS == 25 - len(TOOL_TAG_KEYS) == 21


@pytest.mark.parametrize(
    "name", ["sales_", "_tmp", "-x-", "Sales Daily", "a" * 80, "main.ops.etl_control", "é"]
)
def test_ownership_labels_are_valid_on_every_cloud(name):
    label = label_value(name)
    assert re.fullmatch(r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?", label)  # a GCP label
    assert key_problem("ljm_module") is None and value_problem(label) is None


def test_jobs_tagged_with_the_old_label_rule_stay_ours():
    # earlier versions tagged module "sales_" with the name itself (not a GCP label)
    old = {**owner_tags("tbl", "sales_"), "ljm_module": "sales_"}
    assert owner_tags("tbl", "sales_")["ljm_module"] != "sales_"
    assert is_owned_by_us(old, "tbl", "sales_")
    assert is_owned_by_us(owner_tags("tbl", "sales_"), "tbl", "sales_")
    assert not is_owned_by_us({**old, "ljm_module": "sales"}, "tbl", "sales_")

"""Ownership tags: valid cloud labels, deterministic, never overridable."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lakeflow_job_meta.planning.ownership import (
    is_managed_by_tool,
    is_owned_by_us,
    label_value,
    merge_tags,
    owner_tags,
)

LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=200))
def test_owner_tags_are_valid_labels_and_deterministic(table_id: str, module: str) -> None:
    tags = owner_tags(table_id, module)
    for key, value in tags.items():
        assert LABEL.match(key), key
        assert LABEL.match(value), value
    assert owner_tags(table_id, module) == tags
    assert is_owned_by_us(tags, table_id, module)
    assert is_managed_by_tool(tags)


@given(st.text(min_size=1, max_size=100), st.text(min_size=1, max_size=100))
def test_different_names_get_different_labels(a: str, b: str) -> None:
    if a != b:
        assert label_value(a) != label_value(b)


def test_valid_names_are_kept_and_others_get_a_hash() -> None:
    assert label_value("sales_daily") == "sales_daily"
    assert label_value("Sales") != label_value("sales")
    assert label_value("Sales").startswith("sales-")
    long = label_value("x" * 100)
    assert len(long) <= 63 and long.startswith("x")


def test_ownership_checks() -> None:
    tags = {**owner_tags("t1", "m"), "team": "x"}
    assert is_owned_by_us(tags, "t1", "m")
    assert not is_owned_by_us(tags, "t2", "m")
    assert not is_owned_by_us(tags, "t1", "other")
    assert not is_owned_by_us(None, "t1", "m")
    assert not is_managed_by_tool({"team": "x"})
    assert not is_managed_by_tool(None)


def test_merge_rejects_overrides_and_too_many_tags() -> None:
    merged, issues = merge_tags({"team": True}, "t", "m", location="module m")
    assert merged == {**owner_tags("t", "m"), "team": "true"}
    assert issues == []
    _, issues = merge_tags({"lakeflow_job_meta": "mine"}, "t", "m", location="module m")
    assert [i.field for i in issues] == ["tags.lakeflow_job_meta"]
    _, issues = merge_tags({f"k{i}": "v" for i in range(22)}, "t", "m", location="module m")
    assert ["at most 21" in i.message for i in issues] == [True]
    _, issues = merge_tags({f"k{i}": "v" for i in range(21)}, "t", "m", location="module m")
    assert issues == []

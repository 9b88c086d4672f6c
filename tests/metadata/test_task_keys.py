from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from lakeflow_job_meta.metadata.task_keys import MAX_TASK_KEY_LENGTH, sanitize_task_key

VALID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
VALID_CHARS = st.text(alphabet=st.sampled_from("abcXYZ019_-"), min_size=1, max_size=100)


def test_examples() -> None:
    assert sanitize_task_key("orders_ingest") == "orders_ingest"
    assert sanitize_task_key("sales.orders daily") == "sales_orders_daily"
    assert sanitize_task_key("kunde/straße") == "kunde_stra_e"
    assert sanitize_task_key("") == "_"


def test_long_key_is_truncated_with_stable_hash() -> None:
    key = sanitize_task_key("x" * 150)
    assert len(key) == MAX_TASK_KEY_LENGTH
    assert key.startswith("x" * 91 + "_")
    assert key == sanitize_task_key("x" * 150)
    assert key != sanitize_task_key("x" * 151)
    assert sanitize_task_key("y" * 100) == "y" * 100  # exactly at the limit: unchanged


@given(st.text(max_size=300))
def test_any_text_gives_a_valid_deterministic_key(source_id: str) -> None:
    key = sanitize_task_key(source_id)
    assert VALID.match(key)
    assert len(key) <= MAX_TASK_KEY_LENGTH
    assert key == sanitize_task_key(source_id)


@given(VALID_CHARS)
def test_valid_ids_are_kept_as_they_are(source_id: str) -> None:
    assert sanitize_task_key(source_id) == source_id


@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), min_size=101, max_size=200),
        min_size=2,
        max_size=20,
        unique=True,
    )
)
def test_distinct_long_ids_do_not_collide(source_ids: list[str]) -> None:
    # Same first 91 characters on purpose: only the hash tells them apart.
    prefixed = ["p" * 91 + s for s in source_ids]
    keys = {sanitize_task_key(s) for s in prefixed}
    assert len(keys) == len(prefixed)


@given(st.lists(VALID_CHARS, min_size=2, max_size=50, unique=True))
def test_distinct_valid_ids_never_collide(source_ids: list[str]) -> None:
    assert len({sanitize_task_key(s) for s in source_ids}) == len(source_ids)

"""The bundle files are PyYAML's bytes whichever emitter writes them: libyaml's emitter is used
only where the two agree (see ``adapters.bundle._dump``)."""

from __future__ import annotations

import string
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakeflow_job_meta.adapters import bundle

OPTIONS = bundle._EMIT_OPTIONS
ASCII_TEXT = string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "")
# Characters where the two emitters differ (quoting style or escapes), mixed into some strings.
AWKWARD = "\r\x0b\x0c\x00\x7f\x85\u2028\xa0é€😀\ufeff"

# Long words (paths, URLs) make lines over the width that cannot fold.
WORD = ASCII_TEXT.replace(" ", "").replace("\n", "").replace("\t", "")

scalars = st.one_of(
    st.text(ASCII_TEXT, max_size=130),
    st.text(WORD, min_size=60, max_size=160),
    st.text(WORD + " ", min_size=90, max_size=160),
    st.text(ASCII_TEXT + AWKWARD, max_size=40),
    st.sampled_from(["", " ", "null", "true", "1.0", "0x1F", "-", "? x", "a: b", "#c", "'q'", '"d"', "x\n"]),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
keys = st.one_of(
    st.text(ASCII_TEXT, max_size=30),
    st.text(ASCII_TEXT + AWKWARD, max_size=10),
    st.text(WORD, min_size=60, max_size=140),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


def python_dump(document: Any) -> str:
    return bundle.YAML_HEADER + yaml.safe_dump(document, **OPTIONS)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_every_document_is_written_as_pyyaml_writes_it(value: Any) -> None:
    document = {"resources": {"jobs": {"k": value}}}
    assert bundle._dump(document) == python_dump(document)


@pytest.mark.skipif(bundle._CSafeDumper is None, reason="pyyaml without libyaml")
def test_libyaml_writes_plain_ascii_documents(mocker) -> None:
    """The fast emitter is really used for the common case (else this file tests nothing new)."""
    spy = mocker.spy(yaml, "safe_dump")
    document = {"resources": {"jobs": {"sales": {"name": "sales", "tasks": [{"task_key": "a b"}]}}}}
    assert bundle._dump(document) == python_dump(document)
    assert spy.call_count == 1  # only python_dump's own call


@pytest.mark.parametrize(
    "value",
    [
        "caf\u00e9",
        "line\rbreak",
        "x " * 60,
        {"": None},
        "\x7f",
        "tab\there and a \\u escape",
        {"k" * 120: "v w"},
        ["- " + "y" * 120],
        "q'" + "z" * 120,
    ],
)
def test_documents_the_emitters_disagree_on_are_written_by_pyyaml(value: Any) -> None:
    document = {"resources": {"jobs": {"k": value}}}
    assert bundle._dump(document) == python_dump(document)

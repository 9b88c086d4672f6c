"""Table references: classification, strict validation, siblings and ids."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.storage.naming import control_table_id, parse_table_reference

SAFE_PART = re.compile(r"[A-Za-z0-9_-]+")


def test_absolute_path(tmp_path):
    ref = parse_table_reference(str(tmp_path / "ctl"))
    assert ref.is_path and ref.path == str(tmp_path / "ctl")


def test_relative_path_and_dotdot_are_normalised(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert parse_table_reference("./ctl").path == str(tmp_path / "ctl")
    assert parse_table_reference("sub/../ctl").path == str(tmp_path / "ctl")
    assert parse_table_reference("sub/ctl/").path == str(tmp_path / "sub" / "ctl")


def test_file_uri(tmp_path):
    assert parse_table_reference(f"file://{tmp_path}/my%20ctl").path == os.path.join(str(tmp_path), "my ctl")


@pytest.mark.parametrize("ref", ["s3://bucket/ctl", "abfss://c@a/ctl", "file://host/ctl", "/", "./", ".."])
def test_unsupported_or_empty_paths(ref):
    with pytest.raises(ConfigurationError):
        parse_table_reference(ref)


def test_three_part_name():
    ref = parse_table_reference("main.meta.control")
    assert not ref.is_path
    assert ref.parts == ("main", "meta", "control")
    assert ref.sql_name == "`main`.`meta`.`control`"
    assert parse_table_reference("`main`.`my-schema`.ctl").parts == ("main", "my-schema", "ctl")


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "   ",
        "control",  # ambiguous: write ./control for a directory
        "meta.control",
        "a.b.c.d",
        "a.b.c; DROP TABLE x",
        "a.b.`c`; DROP TABLE x --`",
        "a.b.c`",
        "a.`b.c`.d",
        "a.b.c'",
        "a..c",
        "a.b.c\n",
        "a.b.c\x00",
        "/tmp/ctl\x00",
        "/tmp/c\ntl",
        "main.meta.ta ble",
        "main.meta.t\u00e9",
    ],
)
def test_rejected(ref):
    with pytest.raises(ConfigurationError):
        parse_table_reference(ref)


def test_error_names_the_bad_part():
    with pytest.raises(ConfigurationError, match=r"table part 'c; DROP TABLE x'"):
        parse_table_reference("a.b.c; DROP TABLE x")


def test_siblings(tmp_path):
    path = parse_table_reference(str(tmp_path / "ctl"))
    assert path.sibling("_jobs").path == str(tmp_path / "ctl_jobs")
    uc = parse_table_reference("main.meta.ctl")
    assert uc.sibling("_history").sql_name == "`main`.`meta`.`ctl_history`"
    with pytest.raises(ConfigurationError):
        uc.sibling("; drop")


def test_control_table_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = control_table_id(str(tmp_path / "ctl"))
    assert re.fullmatch(r"[0-9a-f]{12}", a)
    assert control_table_id("./ctl") == a == control_table_id(f"file://{tmp_path}/ctl")
    assert control_table_id("Main.Meta.Ctl") == control_table_id("main.meta.ctl")
    assert control_table_id("main.meta.ctl") != control_table_id("main.meta.ctl2")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"[ -~]{0,12}\.[ -~]{0,12}\.[ -~]{0,12}", fullmatch=True))
def test_any_string_parses_safely_or_raises(text):
    try:
        ref = parse_table_reference(text)
    except ConfigurationError:
        return
    if ref.is_path:
        assert os.path.isabs(ref.path)
        assert not re.search(r"[\x00-\x1f\x7f]", ref.path)
    else:
        assert len(ref.parts) == 3
        assert all(SAFE_PART.fullmatch(p) for p in ref.parts)
        assert ref.sql_name == ".".join(f"`{p}`" for p in ref.parts)

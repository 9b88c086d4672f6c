"""Bad metadata files: each yields its own specific, located message (the corpus is
``tests/helpers/bad_inputs.py``). Every case is a real file on disk read through ``parse_files``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.loader import parse_document, parse_files
from tests.helpers.bad_inputs import CASES, MARK, Case


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_reported_at_its_line(case: Case, tmp_path: Path) -> None:
    path = tmp_path / f"{case.id}.yaml"
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    expected_line = case.line
    if expected_line is None:
        text = case.content.decode() if isinstance(case.content, bytes) else case.content
        marked = [n for n, line in enumerate(text.splitlines(), start=1) if MARK in line]
        assert len(marked) == 1, "a case marks exactly one line"
        expected_line = marked[0]

    if case.id == "unknown_environment":
        # No file declares it: a usage error (exit 2); one file alone still reports its line.
        with pytest.raises(ConfigurationError, match=case.message.replace("(", r"\(").replace(")", r"\)")):
            parse_files([str(path)], **case.kwargs)
        issues = parse_document(path.read_text(encoding="utf-8"), str(path), **case.kwargs).issues
    else:
        _, issues = parse_files([str(path)], **case.kwargs)

    message = case.message.replace("{path}", str(path))
    matching = [i for i in issues if message in i.message]
    assert matching, f"no issue contains {message!r}; got: {[str(i) for i in issues]}"
    issue = matching[0]
    assert issue.location == f"{path}:{expected_line}"
    assert issue.field == case.field
    assert str(issue) == (
        f"{path}:{expected_line}: {case.field}: {issue.message}"
        if case.field
        else f"{path}:{expected_line}: {issue.message}"
    )
    if case.count is not None:
        assert len(issues) == case.count, [str(i) for i in issues]


def test_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.message for c in CASES}) >= 45


def test_unsafe_tag_is_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(
        f"modules:\n  - module_name: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
    )
    _, issues = parse_files([str(path)])
    assert not marker.exists()
    assert any("unsupported YAML tag '!!python/object/apply:pathlib.Path.touch'" in i.message for i in issues)


def test_missing_file_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    documents, issues = parse_files([str(missing)])
    assert documents == []
    assert [i.location for i in issues] == [f"{missing}:1"]
    assert "cannot read file" in issues[0].message

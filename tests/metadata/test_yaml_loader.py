from __future__ import annotations

import pytest
import yaml

from lakeflow_job_meta.metadata.locations import LineMap, format_path
from lakeflow_job_meta.metadata.yaml_loader import (
    LoadedYaml,
    TrackingLoader,
    YamlLimits,
    _load_from_events,
    load_yaml,
)
from tests.helpers.yaml_cases import TRICKY_PLAIN_SCALARS, pure_python

TEXT = """\
# comment
modules:
  - module_name: m
    tags:
      a: "1"
    sources:
      - source_id: x
        transformation_config:
          task_type: notebook
          depends_on:
            - y
            - {source_id: z}
    when: 2024-01-31
"""


def loaded(text: str, **limits: int) -> LoadedYaml:
    result = load_yaml(text, "f.yaml", YamlLimits(**limits))
    assert isinstance(result, LoadedYaml), result
    return result


def test_every_node_has_its_line() -> None:
    lines = loaded(TEXT).lines
    expected = {
        ("modules",): 2,
        ("modules", 0): 3,
        ("modules", 0, "module_name"): 3,
        ("modules", 0, "tags"): 4,
        ("modules", 0, "tags", "a"): 5,
        ("modules", 0, "sources", 0): 7,
        ("modules", 0, "sources", 0, "transformation_config"): 8,
        ("modules", 0, "sources", 0, "transformation_config", "task_type"): 9,
        ("modules", 0, "sources", 0, "transformation_config", "depends_on", 0): 11,
        ("modules", 0, "sources", 0, "transformation_config", "depends_on", 1, "source_id"): 12,
    }
    assert {path: lines.line_of(path) for path in expected} == expected
    # A field that does not exist is reported at its nearest ancestor.
    assert lines.line_of(("modules", 0, "sources", 0, "transformation_config", "notebook_path")) == 8


def test_dates_stay_strings() -> None:
    assert loaded(TEXT).data["modules"][0]["when"] == "2024-01-31"


def test_merge_keys_and_aliases_are_expanded_with_own_keys_winning() -> None:
    data = loaded("base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\nl: &l [1]\nn: *l\nmodules: []\n").data
    assert data["m"] == {"a": 1, "b": 3}
    assert data["n"] == [1] and data["n"] is not data["l"]  # copies: later edits never alias


def test_merging_a_scalar_is_an_issue() -> None:
    result = load_yaml("m:\n  <<: 5\n", "f.yaml")
    assert [str(i) for i in result] == ["f.yaml:2: m: '<<' must merge a mapping or a list of mappings"]  # type: ignore[union-attr]


def test_limits_are_configurable() -> None:
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    assert isinstance(load_yaml(text, "f.yaml"), LoadedYaml)
    assert "more than 2 aliases" in str(load_yaml(text, "f.yaml", YamlLimits(max_aliases=2))[0])  # type: ignore[index]
    assert "expands to more than 10 nodes" in str(load_yaml(text, "f.yaml", YamlLimits(max_nodes=10))[0])  # type: ignore[index]
    deep = "a: " + "[" * 10 + "]" * 10 + "\n"
    assert "nested deeper than 5 levels" in str(load_yaml(deep, "f.yaml", YamlLimits(max_depth=5))[0])  # type: ignore[index]


def test_recursive_alias_is_refused() -> None:
    (issue,) = load_yaml("a: &x [1, *x]\n", "f.yaml")  # type: ignore[misc]
    assert issue.message == "recursive alias: a node contains itself"


def test_very_deep_nesting_does_not_crash() -> None:
    (issue,) = load_yaml("a: " + "[" * 20000 + "]" * 20000, "f.yaml")  # type: ignore[misc]
    assert "nested deeper than" in issue.message


def test_control_character_is_located() -> None:
    (issue,) = load_yaml("a: 1\nb: x\x07y\n", "f.yaml")  # type: ignore[misc]
    assert str(issue) == "f.yaml:2: invalid YAML: unacceptable character #x0007"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("modules", 0, "sources", 2, "execution_order"), "modules[0].sources[2].execution_order"),
        (("tags", "cost.center"), 'tags["cost.center"]'),
        (("tags", "team-a"), "tags.team-a"),
    ],
)
def test_format_path(path: tuple, text: str) -> None:
    assert format_path(path) == text


def test_line_map_falls_back_to_line_one() -> None:
    assert LineMap().line_of(("x", 1)) == 1


def test_aliases_cannot_nest_deeper_than_the_limit() -> None:
    # Every anchor is shallow; only alias expansion makes the result deep.
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 12)] + ["modules: []"]
    (issue,) = load_yaml("\n".join(lines), "f.yaml", YamlLimits(max_depth=8))  # type: ignore[misc]
    assert issue.message == "nested deeper than 8 levels"
    assert isinstance(load_yaml("\n".join(lines), "f.yaml", YamlLimits(max_depth=20)), LoadedYaml)


# ------------------------------------------------------------------ the event tier


def test_the_event_tier_builds_what_the_node_builder_builds() -> None:
    for text in (
        TEXT,
        "- {a: 1, b: [x, {c: ~}]}\n- []\n- b: 2024-01-31\n  c: ''\n  d: '1'\n",
        "url: https://x.example/y?a=b\nflow: {a: [1, 2]}\n",  # a '?' outside flow collections
    ):
        fast = _load_from_events(text, YamlLimits())
        assert fast is not None
        data, lines, issues = pure_python(text)
        assert not issues
        assert repr(fast.data) == repr(data)
        assert fast.lines.items() == lines


STEP_ASIDE = {
    "anchor": "a: &x 1\nb: 2\n",
    "alias": "a: &x 1\nb: *x\n",
    "merge_key": "base: {a: 1}\nm:\n  <<: {a: 2}\n",
    "merge_of_a_scalar": "m:\n  <<: 5\n",
    "duplicate_key": "a: 1\nb: 2\na: 3\n",
    "integer_key": "1: a\n",
    "date_key": "2024-01-31: a\n",
    "null_key": "~: a\n",
    "empty_key": "? \n: a\n",
    "list_key": "? [a]\n: b\n",
    "explicit_str_tag": "a: !!str 1\n",
    "custom_tag": "a: !thing 1\n",
    "non_specific_tag": "a: !\n",  # libyaml reads it as '', PyYAML as null
    "python_tag": "a: !!python/object/apply:os.system ['echo']\n",
    "collection_tag": "a: !!set {x}\n",
    "value_tag": "a: =\n",
    "huge_integer": "a: " + "9" * 5000 + "\n",
    "infinity": "a: .inf\n",
    "not_a_number": "a: .nan\n",
    "two_documents": "a: 1\n---\nb: 2\n",
    "scalar_top_level": "just text\n",
    "empty": "",
    "syntax_error": "a: [1, 2\n",
    "tab": "a:\n\t- 1\n",
    # PyYAML ends a plain scalar at a '?' inside a flow collection, libyaml does not.
    "question_mark_in_flow": "a: [{0?name: x}]\n",
    "question_mark_after_colon_in_flow": "- [a:?]\n",
}


@pytest.mark.parametrize("name", sorted(STEP_ASIDE))
def test_the_event_tier_steps_aside_for_the_loaders_that_word_messages(name: str) -> None:
    assert _load_from_events(STEP_ASIDE[name], YamlLimits()) is None


@pytest.mark.parametrize("token", TRICKY_PLAIN_SCALARS)
def test_the_event_tier_answers_exactly_when_the_pure_python_loader_has_no_issue(token: str) -> None:
    """A tricky plain scalar as a value, a list item and a key: answered only when the node
    builder records no issue, and then with the same values and lines."""
    for text in (f"k: {token}\n", f"k:\n  - {token}\n", f"{token}: v\n"):
        try:
            data, lines, issues = pure_python(text)
        except yaml.YAMLError:
            assert _load_from_events(text, YamlLimits()) is None, text
            continue
        fast = _load_from_events(text, YamlLimits())
        assert (fast is not None) == (not issues), text
        if fast is not None:
            assert (repr(fast.data), fast.lines.items()) == (repr(data), lines)


def test_the_event_tier_holds_the_node_and_depth_limits() -> None:
    """At the limit it answers; one node or level more, it steps aside (and the pure-Python
    loader words the refusal)."""
    nodes = "a: [1, 2, 3]\n"  # the mapping, the key, the list and three items
    assert _load_from_events(nodes, YamlLimits(max_nodes=6)) is not None
    assert _load_from_events(nodes, YamlLimits(max_nodes=5)) is None
    assert "expands to more than 5 nodes" in str(load_yaml(nodes, "f.yaml", YamlLimits(max_nodes=5))[0])  # type: ignore[index]
    for inner in ("1", "[]", "{}"):
        deep = (
            "a: " + "[" * 4 + inner + "]" * 4 + "\n"
        )  # the scalar or empty collection sits at depth 5 (5 in all)
        assert _load_from_events(deep, YamlLimits(max_depth=5)) is not None
        assert _load_from_events(deep, YamlLimits(max_depth=4)) is None
        assert "nested deeper than 4 levels" in str(load_yaml(deep, "f.yaml", YamlLimits(max_depth=4))[0])  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!bool maybe", "'maybe' is tagged !!bool but is not a boolean"),
        ("!!int x", "'x' is tagged !!int but is not an integer"),
        ("!!float x", "'x' is tagged !!float but is not a number"),
    ],
)
def test_an_explicit_tag_on_the_wrong_text_is_a_located_issue(value: str, message: str) -> None:
    """Found by review: these were a KeyError, a ValueError and "integer ... too large"."""
    issues = load_yaml(f"modules:\n  - module_name: {value}\n", "f.yaml")
    assert isinstance(issues, list)
    assert [(i.location, i.message) for i in issues] == [("f.yaml:2", message)]


@pytest.mark.parametrize("text", ["modules: []\nk: !\n", "modules: []\nk: {0?name: x}\n"])
def test_the_libyaml_tiers_leave_an_empty_tag_and_a_flow_question_mark_to_pyyaml(text: str) -> None:
    """libyaml reads these otherwise than PyYAML (found by review): only PyYAML answers them."""
    from lakeflow_job_meta.metadata.yaml_loader import _load_with_libyaml

    assert _load_with_libyaml(text, YamlLimits()) is None
    assert _load_from_events(text, YamlLimits()) is None
    reference = TrackingLoader(text, YamlLimits())
    try:
        expected: object = reference.get_single_data()
    except yaml.YAMLError:
        expected = "refused"
    result = load_yaml(text, "f.yaml")
    answered = result.data if isinstance(result, LoadedYaml) else "refused"
    assert answered == expected

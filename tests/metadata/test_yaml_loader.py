from __future__ import annotations

import pytest

from lakeflow_job_meta.metadata.locations import LineMap, format_path
from lakeflow_job_meta.metadata.yaml_loader import LoadedYaml, YamlLimits, load_yaml

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

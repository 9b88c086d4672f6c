from __future__ import annotations

import json
from importlib import resources

from jsonschema import Draft202012Validator

from lakeflow_job_meta.metadata.dependencies import Dependency, find_cycles, resolve_dependencies
from lakeflow_job_meta.metadata.models import TASK_TYPES, Source
from lakeflow_job_meta.metadata.schema import metadata_schema, schema_problems


def test_schema_ships_as_package_data_and_is_valid_2020_12() -> None:
    text = resources.files("lakeflow_job_meta.metadata").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert metadata_schema() == schema


def test_schema_task_types_match_the_models() -> None:
    defs = metadata_schema()["$defs"]
    assert defs["task"]["properties"]["task_type"]["enum"] == list(TASK_TYPES)
    covered = [part["if"]["properties"]["task_type"]["const"] for part in defs["taskBody"]["allOf"]]
    assert sorted(covered) == sorted(TASK_TYPES)


def test_module_and_source_keys_are_closed() -> None:
    defs = metadata_schema()["$defs"]
    assert defs["module"]["additionalProperties"] is False
    assert defs["source"]["additionalProperties"] is False
    assert defs["task"]["unevaluatedProperties"] is False


def test_free_form_maps_accept_anything() -> None:
    source = {
        "source_id": "a",
        "source_type": "x",
        "execution_order": 0,
        "source_config": {"anything": {"nested": [1, None]}},
        "target_config": {"k": True},
        "transformation_config": {
            "task_type": "notebook",
            "notebook_path": "/n",
            "base_parameters": {"p": {"q": 1}},
        },
    }
    assert schema_problems(source, "source") == []


def test_wrong_task_type_reports_only_the_type() -> None:
    problems = schema_problems({"task_type": "notebok", "notebook_path": "/x", "sql_task": {}}, "task")
    assert [(p.path, p.message.split(":")[0]) for p in problems] == [(("task_type",), "must be one of")]


def _source(source_id: str, order: int, depends_on: list | None = None, active: bool = True) -> Source:
    config: dict = {"task_type": "notebook", "notebook_path": "/n"}
    if depends_on is not None:
        config["depends_on"] = depends_on
    return Source(source_id, "m", "x", order, transformation_config=config, is_active=active)


def test_dependencies_follow_the_closest_lower_order_and_explicit_lists() -> None:
    sources = [
        _source("a1", 1),
        _source("a2", 1),
        _source("off", 2, active=False),
        _source("b", 5),
        _source("c", 9, depends_on=[]),
        _source("d", 9, depends_on=["a1", {"source_id": "b", "outcome": "true"}]),
    ]
    assert resolve_dependencies(sources) == {
        "a1": (),
        "a2": (),
        "b": (Dependency("a1"), Dependency("a2")),
        "c": (),
        "d": (Dependency("a1"), Dependency("b", "true")),
    }


def test_find_cycles_names_each_cycle_once_from_its_smallest_node() -> None:
    graph = {"c": ["a"], "a": ["b"], "b": ["c"], "x": ["x"], "y": ["z"], "z": []}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["x", "x"]]


def test_find_cycles_handles_long_chains_without_recursion() -> None:
    chain = {f"n{i:05d}": [f"n{i + 1:05d}"] for i in range(5000)}
    chain["n05000"] = ["n00000"]
    (cycle,) = find_cycles(chain)
    assert len(cycle) == 5002 and cycle[0] == cycle[-1] == "n00000"

"""Every compiled settings dict survives the SDK: ``JobSettings.from_dict(s).as_dict() == s``.

The SDK silently drops unknown keys, unknown enum values and empty lists, so a settings dict that
does not round-trip would be sent (and hashed) differently from what we think we send.
"""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service.jobs import JobSettings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.metadata.loader import validate_all
from lakeflow_job_meta.metadata.models import Module, ModuleSettings
from lakeflow_job_meta.metadata.rows import module_settings_from_row, source_from_row
from lakeflow_job_meta.planning.compiler import compile_module
from tests.planning.builders import CTX, JOB_CLUSTERS, TASK_TYPE_SOURCES, example_modules, src


def assert_round_trips(settings_dict: dict[str, Any]) -> None:
    assert JobSettings.from_dict(settings_dict).as_dict() == settings_dict


def assert_no_empty_containers(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "continuous" and item == {}:
                continue
            assert item not in ({}, []), f"empty {path}.{key}"
            assert_no_empty_containers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_empty_containers(item, f"{path}[{index}]")


@pytest.mark.parametrize("module", example_modules(), ids=lambda m: m.name)
def test_examples_round_trip_through_the_sdk(module: Module) -> None:
    result = compile_module(module, CTX)
    assert result.job is not None, result.issues
    assert_round_trips(result.job.settings)
    assert_no_empty_containers(result.job.settings)


SOURCE_IDS = st.text(alphabet="abcdefgh_.-XY01", min_size=1, max_size=12)
MODULE_SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "description": st.text(max_size=30),
        "schedule": st.fixed_dictionaries(
            {
                "quartz_cron_expression": st.just("0 0 * * * ?"),
                "timezone_id": st.sampled_from(["UTC", "Europe/Paris"]),
            },
            optional={"pause_status": st.sampled_from(["PAUSED", "UNPAUSED"])},
        ),
        "email_notifications": st.fixed_dictionaries(
            {},
            optional={
                "on_failure": st.lists(st.emails(), max_size=2),
                "on_success": st.lists(st.emails(), max_size=2),
            },
        ),
        "tags": st.dictionaries(
            st.text(alphabet="abcxyz", min_size=1, max_size=5),
            st.text(alphabet="abc019", max_size=5),
            max_size=4,
        ),
        "parameters": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.text(alphabet="pqr", min_size=1, max_size=3),
                    "default": st.text(alphabet="abc019", max_size=4),
                }
            ),
            max_size=3,
            unique_by=lambda p: p["name"],
        ),
        "timeout_seconds": st.integers(0, 10_000),
        "max_concurrent_runs": st.integers(0, 1000),
        "queue": st.fixed_dictionaries({"enabled": st.booleans()}),
        "edit_mode": st.sampled_from(["UI_LOCKED", "EDITABLE"]),
        "job_clusters": st.just(JOB_CLUSTERS),
        "health": st.just({"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 10}]}),
    },
)
TASK_CONFIGS = st.sampled_from(sorted(TASK_TYPE_SOURCES)).map(
    lambda t: {"task_type": t, **TASK_TYPE_SOURCES[t]}
)
COMMON = st.fixed_dictionaries(
    {},
    optional={
        "run_if": st.sampled_from(["ALL_SUCCESS", "ALL_DONE", "NONE_FAILED"]),
        "max_retries": st.integers(-1, 5),
        "retry_on_timeout": st.booleans(),
        "email_notifications": st.fixed_dictionaries(
            {}, optional={"on_start": st.lists(st.emails(), max_size=1)}
        ),
        "base_parameters": st.dictionaries(
            st.text(alphabet="kl", min_size=1, max_size=2), st.integers(), max_size=2
        ),
    },
)


@st.composite
def modules(draw: st.DrawFn) -> Module:
    ids = draw(st.lists(SOURCE_IDS, min_size=1, max_size=6, unique=True))
    sources = []
    for source_id in ids:
        tc = {**draw(TASK_CONFIGS), **draw(COMMON)}
        if tc["task_type"] != "notebook":
            tc.pop("base_parameters", None)
        sources.append(src(source_id, draw(st.integers(0, 4)), module="gen", **tc))
    module_settings = draw(MODULE_SETTINGS)
    module_settings.setdefault("job_clusters", JOB_CLUSTERS)  # spark_jar tasks name the "big" cluster
    return Module(name="gen", sources=tuple(sources), settings=module_settings)


def validation_issues(module: Module) -> list[MetadataIssue]:
    """Schema and semantic checks as the manager runs them on table rows; ``partial`` because
    the run_job task names a module ("other") outside this one."""
    settings = ModuleSettings(module.name, dict(module.settings))
    parsed = [source_from_row(s.content_row(), "ctl") for s in module.sources]
    parsed.append(module_settings_from_row(settings.content_row(), "ctl_modules"))
    issues = [i for p in parsed if isinstance(p, list) for i in p]
    return issues + validate_all(
        list(module.sources), [settings], default_warehouse_id=CTX.default_warehouse_id, partial=True
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules())
def test_generated_modules_round_trip_through_the_sdk(module: Module) -> None:
    issues = validation_issues(module)
    if issues:
        # Sanitising distinct ids can collide ("_" and "."): the one invalid input generated. It
        # is reported once, as the collision, never as a false dependency cycle besides it.
        assert all("becomes task key" in i.message for i in issues), [str(i) for i in issues]
        assume(False)
    result = compile_module(module, CTX)  # the compiler only ever sees validated modules
    assert result.issues == []
    assert result.job is not None
    assert_round_trips(result.job.settings)
    assert_no_empty_containers(result.job.settings)

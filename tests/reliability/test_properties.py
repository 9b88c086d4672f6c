"""Property-based tests (hypothesis) of the pure layers: compiled task graphs, spec hashes and
plans, for modules hypothesis makes up (tests/planning/test_canonical.py checks the hash of the
example modules under shuffled sources and keys; here the modules are random and the key order
goes through YAML)."""

from __future__ import annotations

import random

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lakeflow_job_meta.metadata.dependencies import find_cycles
from lakeflow_job_meta.metadata.loader import parse_document
from lakeflow_job_meta.metadata.models import Module, Source
from lakeflow_job_meta.metadata.validation import validate_all
from lakeflow_job_meta.planning.compiler import compile_module
from lakeflow_job_meta.planning.plan import TrackedJob, plan_module
from tests.helpers.shuffle import shuffled_dict
from tests.planning.builders import CTX

pytestmark = pytest.mark.reliability
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def modules(draw: st.DrawFn) -> Module:
    """1-10 sources with random orders (ties run in parallel), some inactive, some with an
    explicit ``depends_on`` (which, mixed with orders, may close a cycle)."""
    count = draw(st.integers(1, 10))
    sources = []
    for i in range(count):
        tc: dict = {"task_type": "notebook", "notebook_path": f"/Workspace/nb/s{i}"}
        if i and draw(st.booleans()) and draw(st.booleans()):
            tc["depends_on"] = sorted(
                set(draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]), max_size=3)))
            )
        sources.append(
            Source(
                source_id=f"s{i}",
                module_name="m",
                source_type="notebook",
                execution_order=draw(st.integers(0, 4)),
                transformation_config=tc,
                is_active=i == 0 or draw(st.integers(0, 5)) > 0,
            )
        )
    return Module(name="m", sources=tuple(sources), settings={})


def valid(module: Module) -> bool:
    """Whether validation passes the module (the compiler assumes it did)."""
    return not validate_all(module.sources, [], control_table="main.meta.etl_control")


def expected_upstream(module: Module) -> dict[str, set[str]]:
    """The order semantics, restated: explicit ``depends_on`` wins; otherwise every active source
    of the closest lower order."""
    active = [s for s in module.sources if s.is_active]
    result = {}
    for s in active:
        explicit = s.transformation_config.get("depends_on")
        if explicit is not None:
            result[s.source_id] = set(explicit)
            continue
        lower = sorted({o.execution_order for o in active if o.execution_order < s.execution_order})
        result[s.source_id] = {o.source_id for o in active if lower and o.execution_order == lower[-1]}
    return result


@PROPERTY
@given(modules())
def test_modules_compile_to_acyclic_graphs_that_respect_the_order_semantics(module: Module):
    """Validation (which owns the dependency rules) and the compiler together: a module that
    passes both compiles to an acyclic graph with exactly the edges the order semantics give."""
    issues = validate_all(module.sources, [], control_table="main.meta.etl_control")
    active_ids = {s.source_id for s in module.sources if s.is_active}
    inactive_named = any(
        set(s.transformation_config.get("depends_on") or []) - active_ids
        for s in module.sources
        if s.is_active
    )
    if inactive_named:  # depending on an inactive source is an error, never a silent edge
        assert issues
        return
    expected = expected_upstream(module)
    if find_cycles(expected):  # the metadata itself has a cycle: reported, so never applied
        assert any("cycle" in issue.message for issue in issues), issues
        return
    assert issues == []
    result = compile_module(module, CTX)  # the compiler takes valid modules only
    assert result.issues == [] and result.job is not None
    tasks = result.job.settings["tasks"]
    graph = {t["task_key"]: [d["task_key"] for d in t.get("depends_on", [])] for t in tasks}
    assert find_cycles(graph) == []
    assert {key: set(deps) for key, deps in graph.items()} == expected


@PROPERTY
@given(modules(), st.randoms(use_true_random=False))
def test_the_spec_hash_does_not_depend_on_row_order(module: Module, rnd: random.Random):
    assume(valid(module))
    shuffled = list(module.sources)
    rnd.shuffle(shuffled)
    first = compile_module(module, CTX).job
    second = compile_module(Module(name="m", sources=tuple(shuffled), settings={}), CTX).job
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert first.spec_hash == second.spec_hash
        assert first.settings == second.settings


@PROPERTY
@given(modules(), st.randoms(use_true_random=False))
def test_the_spec_hash_does_not_depend_on_yaml_key_order(module: Module, rnd: random.Random):
    assume(valid(module))
    document = {
        "modules": [
            {
                "module_name": "m",
                "schedule": {"quartz_cron_expression": "0 0 5 * * ?", "timezone_id": "UTC"},
                "tags": {"team": "a", "cost": "b"},
                "sources": [
                    {
                        "source_id": s.source_id,
                        "source_type": s.source_type,
                        "execution_order": s.execution_order,
                        "is_active": s.is_active,
                        "transformation_config": dict(s.transformation_config),
                    }
                    for s in module.sources
                ],
            }
        ]
    }
    hashes = set()
    for variant in (document, shuffled_dict(document, rnd)):
        parsed = parse_document(yaml.safe_dump(variant, sort_keys=False), "m.yaml")
        assert parsed.document is not None, parsed.issues
        (loaded,) = parsed.document.modules
        job = compile_module(
            Module(name="m", sources=tuple(parsed.document.sources), settings=loaded.settings), CTX
        ).job
        hashes.add(job.spec_hash if job is not None else None)
    assert len(hashes) == 1


@PROPERTY
@given(modules())
def test_planning_the_desired_state_against_itself_is_all_noop(module: Module):
    assume(valid(module))
    job = compile_module(module, CTX).job
    if job is None:
        return
    tracked = TrackedJob(
        module_name="m", job_id=42, spec_hash=job.spec_hash, managed_files=job.managed_file_hashes
    )
    change = plan_module(job, tracked, job.settings, check_drift=True)
    assert change.action == "noop" and not change.diff and not change.has_file_changes

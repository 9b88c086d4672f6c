"""Spec hash: stable under reordering, moved by any real change."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lakeflow_job_meta.metadata.models import Module
from lakeflow_job_meta.planning.canonical import HASH_VERSION, canonical_settings, spec_hash
from lakeflow_job_meta.planning.compiler import compile_module
from tests.helpers.shuffle import shuffled_dict
from tests.planning.builders import CTX, example_modules, mod, src


def _hash(module: Module) -> str:
    job = compile_module(module, CTX).job
    assert job is not None
    return job.spec_hash


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(example_modules()))
def test_hash_ignores_source_order_and_dict_key_order(rng: random.Random, module: Module) -> None:
    sources = list(module.sources)
    rng.shuffle(sources)
    shuffled = Module(
        name=module.name,
        sources=tuple(
            type(s)(**{**s.__dict__, "transformation_config": shuffled_dict(s.transformation_config, rng)})
            for s in sources
        ),
        settings=shuffled_dict(module.settings, rng),
    )
    assert _hash(shuffled) == _hash(module)


@given(st.permutations(["a", "b", "c", "d"]))
def test_hash_ignores_list_order_the_service_ignores(order: list[str]) -> None:
    base = {
        "name": "j",
        "tasks": [{"task_key": k, "depends_on": [{"task_key": x} for x in order if x < k]} for k in order],
        "parameters": [{"name": k, "default": ""} for k in order],
        "tags": {k: "v" for k in order},
    }
    assert spec_hash(base, explicit_pause=False) == spec_hash(canonical_settings(base), explicit_pause=False)
    assert [t["task_key"] for t in canonical_settings(base)["tasks"]] == ["a", "b", "c", "d"]


def test_hash_is_versioned_and_pinned() -> None:
    """Pinned value: if this changes, every job in every workspace gets rewritten. Bump
    HASH_VERSION on purpose, never by accident."""
    value = spec_hash({"name": "j", "tasks": [{"task_key": "a"}]}, explicit_pause=False)
    assert value.startswith(f"v{HASH_VERSION}:")
    assert (
        value
        == "v1:"
        + __import__("hashlib")
        .sha256(
            json.dumps(
                {"settings": {"name": "j", "tasks": [{"task_key": "a"}]}},
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
        )
        .hexdigest()
    )


def test_pause_status_counts_only_when_explicit() -> None:
    paused = {
        "name": "j",
        "schedule": {"quartz_cron_expression": "x", "timezone_id": "UTC", "pause_status": "PAUSED"},
    }
    unpaused = {
        "name": "j",
        "schedule": {"quartz_cron_expression": "x", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
    }
    assert spec_hash(paused, explicit_pause=False) == spec_hash(unpaused, explicit_pause=False)
    assert spec_hash(paused, explicit_pause=True) != spec_hash(unpaused, explicit_pause=True)


def test_volatile_fields_do_not_count() -> None:
    base = {"name": "j"}
    assert spec_hash(
        {**base, "format": "MULTI_TASK", "deployment": {"kind": "BUNDLE"}}, explicit_pause=False
    ) == spec_hash(base, explicit_pause=False)


def test_real_changes_move_the_hash() -> None:
    base = _hash(mod("m", src("a"), src("b", 2)))
    assert _hash(mod("m", src("a"), src("b", 3))) == base  # still the next order: same job
    assert _hash(mod("m", src("a"), src("b", 1))) != base
    assert _hash(mod("m", src("a"), src("b", 2, notebook_path="/other"))) != base
    assert _hash(mod("m", src("a"), src("b", 2), description="d")) != base
    assert (
        _hash(
            mod("m", src("a"), src("b", 2), permissions=[{"user_name": "u", "permission_level": "CAN_VIEW"}])
        )
        != base
    )


def test_run_job_target_moves_the_hash() -> None:
    one = _hash(mod("m", src("r", task_type="run_job", run_job_task={"module_name": "x"})))
    two = _hash(mod("m", src("r", task_type="run_job", run_job_task={"module_name": "y"})))
    assert one != two


def test_inline_sql_text_is_not_in_the_job_hash() -> None:
    one = compile_module(
        mod("m", src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 1"})), CTX
    ).job
    two = compile_module(
        mod("m", src("q", task_type="sql_query", sql_task={"sql_query": "SELECT 2"})), CTX
    ).job
    assert one is not None and two is not None
    assert one.spec_hash == two.spec_hash
    assert one.managed_file_hashes != two.managed_file_hashes

"""The shipped examples (validated by the metadata layer) compile cleanly and round-trip.

This is where the metadata validator and the compiler must agree: what validation accepts,
compile must turn into a job without issues.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.sdk.service.jobs import JobSettings

from lakeflow_job_meta.metadata.loader import parse_files_detailed
from lakeflow_job_meta.metadata.models import Module
from lakeflow_job_meta.planning.compiler import compile_module
from tests.planning.builders import CTX

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "metadata_examples.yaml"


def _example_modules(env: str | None) -> list[Module]:
    if not EXAMPLES.is_file():
        pytest.skip(f"{EXAMPLES} not found")
    result = parse_files_detailed([str(EXAMPLES)], env=env)
    assert result.issues == [], [str(i) for i in result.issues]
    (document,) = result.documents
    return [
        Module(
            name=m.module_name,
            sources=tuple(s for s in document.sources if s.module_name == m.module_name),
            settings=dict(m.settings),
        )
        for m in document.modules
    ]


@pytest.mark.parametrize("env", [None, "dev", "prod"])
def test_example_modules_compile_without_issues_and_round_trip(env: str | None) -> None:
    modules = _example_modules(env)
    assert modules
    for module in modules:
        result = compile_module(module, CTX)
        assert result.issues == [], [str(i) for i in result.issues]
        if result.job is None:  # inactive module or no active source
            continue
        assert JobSettings.from_dict(result.job.settings).as_dict() == result.job.settings, module.name

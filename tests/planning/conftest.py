"""Fixtures for the planning tests."""

from __future__ import annotations

import pytest

from lakeflow_job_meta.planning.compiler import CompileContext
from tests.planning.builders import CTX


@pytest.fixture
def ctx() -> CompileContext:
    return CTX

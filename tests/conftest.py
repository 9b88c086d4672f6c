"""Shared fixtures. Every test runs with no ambient Databricks configuration: all
``DATABRICKS_*`` variables removed and ``HOME`` pointing at a temp dir (no ~/.databrickscfg)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.fixtures import (  # noqa: F401
    jobs_emulator,
    make_workspace_client,
    sdk_clock,
    workspace_client,
)
from tests.fakews import fakews  # noqa: F401
from tests.run_world import sink  # noqa: F401
from tests.spark_delta import HAVE_SPARK_DELTA, build_session


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The one local Spark + Delta session of the test run (started on first use: about 10-30 s,
    plus a one-time jar download from Maven Central). Skipped without the ``spark`` extra."""
    if not HAVE_SPARK_DELTA:
        pytest.skip("pyspark and delta-spark are not installed (the spark extra)")
    session = build_session(tmp_path_factory.mktemp("warehouse"))
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _no_ambient_databricks_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(autouse=True)
def _restore_package_loggers() -> Iterator[None]:
    """The CLI's monitor command configures the monitor logger (its own handler, no
    propagation); give every test the loggers as they were, so caplog keeps working."""
    loggers = [logging.getLogger(name) for name in ("lakeflow_job_meta", "lakeflow_job_meta.monitor")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate

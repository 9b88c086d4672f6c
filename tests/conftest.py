"""Shared fixtures. Every test runs with no ambient Databricks configuration: all
``DATABRICKS_*`` variables removed and ``HOME`` pointing at a temp dir (no ~/.databrickscfg).

Markers (registered in pyproject.toml) are set here from what a test uses, so that
``pytest -m "not slow"`` is the fast loop: a test that needs Spark, the fake workspace, a
browser or the Jobs API emulator, or belongs to the reliability suite, is ``slow``; so is one
marked ``slow`` by hand because it starts a process (anything else that tries is refused)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.fixtures import (  # noqa: F401
    jobs_emulator,
    make_workspace_client,
    sdk_clock,
    workspace_client,
)
from tests.emulator.server import JobsEmulator
from tests.fakews import fakews  # noqa: F401
from tests.run_world import sink  # noqa: F401
from tests.spark_delta import HAVE_SPARK_DELTA, build_session

# A test that uses one of these fixtures gets the marker of the same name.
MARKING_FIXTURES = {"spark": "spark", "fakews": "fakews", "jobs_emulator": "emulator"}
# A test with one of these markers is slow.
SLOW_MARKERS = {"spark", "fakews", "browser", "emulator", "reliability"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, marker in MARKING_FIXTURES.items():
            if fixture in fixtures and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        if item.get_closest_marker("slow") is None and any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker("slow")


@pytest.fixture(autouse=True)
def _fast_tests_stay_fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the fast loop fast: a test not marked ``slow`` may neither start a process nor the
    Jobs API emulator (an emulator test not using the ``jobs_emulator`` fixture is marked
    ``emulator`` by hand)."""
    if request.node.get_closest_marker("slow") is not None:
        return
    nodeid = request.node.nodeid

    def no_process(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{nodeid} starts a process ({args!r}): mark it slow")

    def no_emulator(self: JobsEmulator) -> JobsEmulator:
        raise AssertionError(f"{nodeid} starts the Jobs API emulator: mark it emulator")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(JobsEmulator, "start", no_emulator)


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

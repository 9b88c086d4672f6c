"""Pytest fixtures for the Jobs API emulator.

Import them from ``tests/conftest.py``::

    from tests.emulator.fixtures import jobs_emulator, make_workspace_client, workspace_client  # noqa: F401

``workspace_client`` is a real ``databricks.sdk.WorkspaceClient`` pointed at a fresh
emulator, with no ambient configuration (every ``DATABRICKS_*`` variable removed, ``HOME``
moved to ``tmp_path`` so no ``~/.databrickscfg`` is read) and short timeouts:

* ``retry_timeout_seconds=15``: the SDK's overall retry budget per call;
* ``http_timeout_seconds=5``: per HTTP request.

The SDK waits between its retries on ``sdk_clock`` (an ``InstantSdkClock``): each wait is
recorded in ``sdk_clock.sleeps`` and moves that clock, none is slept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.fakes import InstantSdkClock

from .server import JobsEmulator

RETRY_TIMEOUT_SECONDS = 15
HTTP_TIMEOUT_SECONDS = 5
TEST_TOKEN = "test-token"


def _isolate_env(monkeypatch: pytest.MonkeyPatch, home) -> None:
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))


@pytest.fixture
def jobs_emulator() -> Iterator[JobsEmulator]:
    """A started emulator with fresh state, stopped after the test."""
    with JobsEmulator() as emu:
        yield emu


@pytest.fixture
def sdk_clock() -> InstantSdkClock:
    """The clock the SDK of every ``make_workspace_client`` client waits on: recorded, not slept."""
    return InstantSdkClock()


@pytest.fixture
def make_workspace_client(
    jobs_emulator: JobsEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path, sdk_clock: InstantSdkClock
) -> Callable:
    """Factory: ``make_workspace_client(retry_timeout_seconds=..., http_timeout_seconds=...)``."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    _isolate_env(monkeypatch, tmp_path)

    def make(
        *,
        retry_timeout_seconds: int = RETRY_TIMEOUT_SECONDS,
        http_timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
        token: str = TEST_TOKEN,
    ) -> WorkspaceClient:
        cfg = Config(
            host=jobs_emulator.url,
            token=token,
            retry_timeout_seconds=retry_timeout_seconds,
            http_timeout_seconds=http_timeout_seconds,
            clock=sdk_clock,
        )
        return WorkspaceClient(config=cfg)

    return make


@pytest.fixture
def workspace_client(make_workspace_client: Callable):
    """A real ``WorkspaceClient`` talking to ``jobs_emulator``."""
    return make_workspace_client()

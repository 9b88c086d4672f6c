"""Shared fixtures. Every test runs with no ambient Databricks configuration: all
``DATABRICKS_*`` variables removed and ``HOME`` pointing at a temp dir (no ~/.databrickscfg)."""

from __future__ import annotations

import os

import pytest

from tests.emulator.fixtures import jobs_emulator, make_workspace_client, workspace_client  # noqa: F401


@pytest.fixture(autouse=True)
def _no_ambient_databricks_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for key in list(os.environ):
        if key.startswith("DATABRICKS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))

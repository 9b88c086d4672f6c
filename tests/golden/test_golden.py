"""Behaviour unchanged: the examples' job bodies, bundle files and plan JSON equal the fixtures
byte for byte. Regenerate with ``python tests/golden/generate.py`` only for an intended change."""

from __future__ import annotations

import pytest

from tests.golden.generate import ENVIRONMENTS, FIXTURES, bundle_outputs, workspace_outputs

pytest.importorskip("deltalake")


def _check(outputs: dict[str, str]) -> None:
    for name, text in outputs.items():
        expected = (FIXTURES / name).read_text(encoding="utf-8")
        assert text == expected, f"{name} differs from tests/golden/fixtures/{name}"


@pytest.mark.emulator
@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env or "no-env")
def test_workspace_outputs_match_the_fixtures(env: str | None) -> None:
    _check(workspace_outputs(env))


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: env or "no-env")
def test_bundle_outputs_match_the_fixtures(env: str | None) -> None:
    _check(bundle_outputs(env))


def test_every_fixture_is_checked() -> None:
    """A stale fixture (one no test compares) fails here instead of lingering."""
    kinds = {"workspace": ("plan", "writes", "replan"), "bundle": ("plan", "files")}
    expected = {
        f"{kind}-{env or 'none'}.{part}.json"
        for kind, parts in kinds.items()
        for part in parts
        for env in ENVIRONMENTS
    }
    assert {p.name for p in FIXTURES.glob("*.json")} == expected

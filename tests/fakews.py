"""Databricks' own fake workspace as a pytest fixture: the contract lane (marker ``fakews``).

``fakews`` is the Databricks CLI's test server (databricks/cli ``libs/testserver``, which
Databricks keeps for the CLI's acceptance tests and aligns with recorded cloud behaviour), built
as a program that serves it on a loopback port (``shared/tools/README.md``). Nobody on this
project wrote it, so it checks the tool, and our own emulator, against a second opinion.

The binaries live in ``<repo>/../shared/tools/`` (``fakews`` and ``databricks``, the real CLI), or
in the folder named by ``LJM_SHARED_TOOLS``. Without them the lane is skipped with one line.

One ``fakews`` process serves the whole test session. Each test gets its own token, and each
token is its own workspace in the fake (``dbapi0...`` a user, ``dbapi1...`` a service principal).
The fake logs one JSON line per request; :meth:`FakeWorkspace.mark` and
:meth:`FakeWorkspace.requests` read what was sent since a mark (tests in one session run one after
the other, so a mark is per test).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(os.environ.get("LJM_SHARED_TOOLS") or REPO.parent / "shared" / "tools")
FAKEWS = TOOLS / "fakews"
DATABRICKS_CLI = TOOLS / "databricks"
# The fake's user (a token starting with dbapi0): fixed in libs/testserver.
FAKE_USER = "tester@databricks.com"

_JOB_WRITES = ("/jobs/create", "/jobs/reset", "/jobs/update", "/jobs/delete")


def missing_tools() -> str | None:
    """Why the lane cannot run here, in one line, or None."""
    for tool in (FAKEWS, DATABRICKS_CLI):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found (set LJM_SHARED_TOOLS to the folder with fakews and databricks)"
    return None


@dataclass(frozen=True)
class Logged:
    """One request as the fake logged it."""

    method: str
    path: str
    query: str
    status: int
    body: Any
    response: str

    @property
    def is_write(self) -> bool:
        """A job write: create, reset, update, delete, or a change of a job's permissions."""
        if self.method == "POST" and self.path.endswith(_JOB_WRITES):
            return True
        return self.method in ("PUT", "PATCH") and self.path.startswith("/api/2.0/permissions/jobs/")


class FakeWorkspace:
    """The running fake: its URL, fresh tokens, its request log and SDK clients."""

    def __init__(self, url: str, log: Path):
        self.url = url
        self.log = log

    @staticmethod
    def new_token(*, service_principal: bool = False) -> str:
        """A token nobody used yet: a new, empty workspace."""
        return ("dbapi1" if service_principal else "dbapi0") + secrets.token_hex(8)

    def mark(self) -> int:
        """A position in the request log; :meth:`requests` reads from one."""
        return self.log.stat().st_size

    def requests(self, since: int = 0) -> list[Logged]:
        """The requests logged after ``since`` (complete lines only)."""
        with self.log.open("rb") as f:
            f.seek(since)
            data = f.read()
        lines = data[: data.rfind(b"\n") + 1].splitlines()
        out = []
        for line in lines:
            d = json.loads(line)  # Python keeps big integers exact: job ids stay ints
            out.append(Logged(d["method"], d["path"], d["query"], d["status"], d["body"], d["response"]))
        return out

    def writes(self, since: int = 0) -> list[Logged]:
        return [r for r in self.requests(since) if r.is_write]

    def client(self, token: str) -> Any:
        """A real WorkspaceClient on ``token``'s workspace, with short retry deadlines."""
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        return WorkspaceClient(
            config=Config(host=self.url, token=token, retry_timeout_seconds=10, http_timeout_seconds=10)
        )


@pytest.fixture(scope="session")
def fakews(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeWorkspace]:
    """One fake workspace process for the session, terminated at teardown."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("fakews")
    port_file, log_file = folder / "url", folder / "requests.jsonl"
    with (folder / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [str(FAKEWS), str(port_file), str(log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")},
        )
    try:
        # fakews writes the file by rename once it listens: it is whole when it exists.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: port_file.exists() or proc.poll() is not None, "fakews to listen")
        if not port_file.exists():
            pytest.fail(f"fakews did not start: {(folder / 'stderr').read_text()[-2000:]}")
        yield FakeWorkspace(port_file.read_text().strip(), log_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

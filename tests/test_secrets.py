"""Issue 9: no token in any output, log or table row, ``--debug`` included.

Real processes (``python -m lakeflow_job_meta --debug ...``) against the Jobs API emulator through
the real SDK, configured only by ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``; real delta-rs tables.
Every byte of stdout and stderr, and every row of every tool table, is searched for the token
and for a long piece of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta.storage import open_tables

pytest.importorskip("deltalake")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
TOKEN = "dapi-SECRET-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def run(*argv: str, cwd: Path, host: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "HOME": str(cwd),
            "NO_COLOR": "1",
            "DATABRICKS_HOST": host,
            "DATABRICKS_TOKEN": TOKEN,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "lakeflow_job_meta", "--debug", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_full_debug_apply_never_shows_the_token(tmp_path: Path, jobs_emulator) -> None:
    ctl = str(tmp_path / "ctl")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "examples.yaml").write_text(EXAMPLES.read_text())
    table = ["--control-table", ctl]
    workspace = ["--target", "workspace"]
    runs = [
        run("load", str(volume), *table, "--sync", cwd=tmp_path, host=jobs_emulator.url),
        run("plan", *table, *workspace, cwd=tmp_path, host=jobs_emulator.url),
        run("apply", *table, *workspace, "--auto-run", cwd=tmp_path, host=jobs_emulator.url),
        run("apply", *table, *workspace, "--json", cwd=tmp_path, host=jobs_emulator.url),
        run(
            "monitor",
            *table,
            *workspace,
            "--volume-path",
            str(volume),
            "--once",
            "--log-format",
            "json",
            cwd=tmp_path,
            host=jobs_emulator.url,
        ),
        run("status", *table, "--json", cwd=tmp_path, host=jobs_emulator.url),
        # an error path: a bad host still names no token
        run("apply", *table, *workspace, "--lease-timeout", "0", cwd=tmp_path, host="http://127.0.0.1:9"),
    ]
    assert [r.returncode for r in runs[:6]] == [0, 0, 0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    assert runs[6].returncode != 0
    # the run really was verbose and talked to the service with the token
    debug = "\n".join(r.stderr for r in runs)
    assert "DEBUG" in debug and "jobs/create" in debug
    assert jobs_emulator.count("jobs/create") == 5

    tables = open_tables(ctl)
    rows = [
        *tables.history.read_all(),
        *tables.jobs.read_all(),
        *tables.state.read_all(),
        *tables.control.read_all(),
        *tables.modules.read_all(),
    ]
    assert any(row.get("action") == "create" for row in tables.history.read_all())
    texts = [r.stdout for r in runs] + [r.stderr for r in runs] + [repr(row) for row in rows]
    for piece in (TOKEN, TOKEN[5:], TOKEN[-16:]):
        leaks = [text for text in texts if piece in text]
        assert not leaks, f"{piece!r} found in: {leaks[0][:500]}"

"""The README's commands that can run here, as a user would type them: every line of the block
marked ``<!-- runnable -->`` runs in a fresh folder holding the examples, and each must exit 0.
``lakeflow-job-meta`` is the installed console script; here it is ``python -m lakeflow_job_meta``
(the same entry point) since the tests run from the source tree."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.example_files import EXAMPLES_DIR, REPO

pytest.importorskip("deltalake")


def runnable_lines() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- runnable -->\n```bash\n(.*?)```", text, flags=re.S)
    assert block, "README.md has no <!-- runnable --> bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_names_every_command() -> None:
    commands = {line.split()[1] for line in runnable_lines() if line.startswith("lakeflow-job-meta ")}
    assert commands >= {"init", "validate", "plan", "export-bundle", "graph", "status", "history", "monitor"}


def test_every_runnable_readme_command_works(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES_DIR, tmp_path / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update({"PYTHONPATH": str(REPO), "HOME": str(tmp_path), "NO_COLOR": "1"})
    cli = f"{shlex.quote(sys.executable)} -m lakeflow_job_meta"
    for line in runnable_lines():
        command = re.sub(r"(^|&& )lakeflow-job-meta ", lambda m: f"{m.group(1)}{cli} ", line)
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr, line
    assert (tmp_path / "try_bundle" / "databricks.yml").is_file()


def test_the_readmes_coverage_command_works(tmp_path: Path) -> None:
    """``pytest --cov=lakeflow_job_meta`` (the reference's test command): pytest-cov is in dev."""
    pytest.importorskip("pytest_cov")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--cov=lakeflow_job_meta", "--cov-report=term", "-q",
         "-p", "no:cacheprovider", "tests/metadata/test_cron.py"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "COVERAGE_FILE": str(tmp_path / ".coverage")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "lakeflow_job_meta/metadata/cron.py" in proc.stdout and "TOTAL" in proc.stdout

"""The README's blocks, as a new user runs them: the Quick start, then "Try it", in order, in one
fresh copy of the repository, in one shell session each, and every command exits 0.

Every line runs as written but the two install lines (``python3 -m venv .venv`` and its ``pip
install``), which need the network and minutes: the test stands in a ``.venv`` whose
``bin/activate`` puts a ``lakeflow-job-meta`` on PATH that runs this interpreter on the copy's
source (the same console entry point; ``tests/test_packaging.py`` builds and installs the real
wheel). The Quick start's monitor runs until its first cycle has written the bundle, then gets
the Ctrl-C the README tells the user to press, and must stop with exit 0.

Afterwards ``git`` in the copy sees no new untracked file: ``.gitignore`` covers everything the
blocks generate (tables, bundles, volumes)."""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.example_files import EXAMPLE_MODULES, REPO

pytest.importorskip("deltalake")

INSTALL_LINES = re.compile(r"^(python3 -m venv \.venv|\.venv/bin/pip install )")
# How long the Quick start's monitor may take to finish its first cycle (a bound, not a wait).
FIRST_CYCLE_TIMEOUT_SECONDS = 180


def block(marker: str) -> list[str]:
    """The lines of the bash block after ``<!-- marker -->`` in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```bash\n(.*?)```", text, flags=re.S)
    assert found, f"README.md has no <!-- {marker} --> bash block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def runnable_lines() -> list[str]:
    return block("runnable")


def test_the_readme_names_every_command() -> None:
    commands = {line.split()[1] for line in runnable_lines() if line.startswith("lakeflow-job-meta ")}
    assert commands >= {"init", "validate", "plan", "export-bundle", "graph", "status", "history", "monitor"}


def test_the_blocks_say_to_activate_the_venv() -> None:
    """A bare ``lakeflow-job-meta`` needs the venv on PATH: each block activates it first."""
    for marker in ("quick-start", "runnable"):
        lines = block(marker)
        first_call = next(i for i, line in enumerate(lines) if line.startswith("lakeflow-job-meta "))
        assert "source .venv/bin/activate" in lines[:first_call], marker


def _fresh_copy(tmp_path: Path) -> Path:
    """The repository's files as a clone has them (tracked, and new files not ignored), in a new
    git repository, so ``git`` there answers what a clone's ``git status`` would."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    clone = tmp_path / "clone"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    return clone


def _stand_in_venv(clone: Path) -> None:
    """What the two install lines make: ``.venv/bin/activate`` and the console script."""
    bin_dir = clone / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "lakeflow-job-meta"
    script.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(clone))} exec {shlex.quote(sys.executable)} -m lakeflow_job_meta "$@"\n'
    )
    script.chmod(0o755)
    (bin_dir / "activate").write_text(f'PATH={shlex.quote(str(bin_dir))}:"$PATH"\nexport PATH\n')


def _script(lines: list[str]) -> str:
    return "\n".join(line for line in lines if not INSTALL_LINES.match(line)) + "\n"


def _untracked(clone: Path) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.splitlines())


def _run_quick_start(clone: Path, env: dict[str, str]) -> str:
    """Run the Quick start block; Ctrl-C (SIGINT to its process group) once the monitor's first
    cycle line is out. Returns what it printed on stderr."""
    proc = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", _script(block("quick-start"))],
        cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=FIRST_CYCLE_TIMEOUT_SECONDS)
            assert line is not None, "the Quick start ended before its first cycle:\n" + "".join(seen)
            seen.append(line)
            if "module(s) checked" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)  # the user's Ctrl-C
        code = proc.wait(timeout=FIRST_CYCLE_TIMEOUT_SECONDS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    while (line := lines.get(timeout=FIRST_CYCLE_TIMEOUT_SECONDS)) is not None:
        seen.append(line)
    stderr = "".join(seen)
    assert code == 0, stderr
    return stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list a clone's files")
def test_the_quick_start_then_try_it_run_in_one_fresh_clone(tmp_path: Path) -> None:
    clone = _fresh_copy(tmp_path)
    before = _untracked(clone)
    _stand_in_venv(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PYTHONPATH"))}
    env.update({"HOME": str(tmp_path / "home"), "NO_COLOR": "1"})

    stderr = _run_quick_start(clone, env)
    assert "Traceback" not in stderr
    assert "received SIGINT" in stderr and " INFO " in stderr.split("received SIGINT")[0].splitlines()[-1]
    quick_bundle = clone / "bundle"
    assert {p.name for p in (quick_bundle / "resources").glob("*.job.yml")} == {
        f"{m}.job.yml" for m in EXAMPLE_MODULES
    }
    assert (clone / ".lakeflow_job_meta" / "etl_control").is_dir()  # where the README says
    quick_files = {p: p.read_bytes() for p in quick_bundle.rglob("*") if p.is_file()}

    # "Try it", in the same clone, every line checked on its own (one shell session).
    lines = block("runnable")
    script = "".join(
        f'{line}\necho "exit=$? :: "{shlex.quote(line)} >&2\n'
        if not line.startswith("source ")
        else f"{line}\n"
        for line in lines
    )
    proc = subprocess.run(
        ["bash", "-uo", "pipefail", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    for line in lines:
        if line.startswith("source "):
            continue
        assert f"exit=0 :: {line}" in proc.stderr, f"{line}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    # Its plan creates (its own bundle folder), never updates the Quick start's jobs.
    assert f"Plan: {len(EXAMPLE_MODULES)} to create, 0 to update" in proc.stdout
    assert (clone / "try" / "bundle" / "databricks.yml").is_file()
    assert {p: p.read_bytes() for p in quick_bundle.rglob("*") if p.is_file()} == quick_files

    # Everything generated is ignored: a `git status` of the clone shows nothing new.
    assert _untracked(clone) == before


@pytest.mark.slow
def test_the_getting_started_first_job_is_valid(tmp_path: Path) -> None:
    """docs/GETTING_STARTED.md's first module validates and plans two tasks, one after the other."""
    text = (REPO / "docs" / "GETTING_STARTED.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- first-job -->\n```yaml\n(.*?)```", text, flags=re.S)
    assert found, "docs/GETTING_STARTED.md has no <!-- first-job --> yaml block"
    path = tmp_path / "first_job.yaml"
    path.write_text(found.group(1), encoding="utf-8")
    from tests.cli_run import run_subprocess

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return run_subprocess(*argv, cwd=tmp_path)

    assert cli("validate", str(path)).returncode == 0
    assert cli("load", str(path), "--control-table", "./ctl").returncode == 0
    plan = cli("plan", "--control-table", "./ctl", "--target", "bundle:./b")
    assert plan.returncode == 0, plan.stderr
    assert "+ task hello_count (sql_query) <- hello_ingest" in plan.stdout


@pytest.mark.slow
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

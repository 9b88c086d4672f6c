"""Packaging: ``python -m build --wheel`` gives a wheel that installs into a FRESH venv with only
its required dependencies (no pyspark, no deltalake), imports, runs its console scripts, and
answers a local control-table command with the one-line ``[local]`` install hint.

Slow (a venv and a pip install, ~15-60 s) but part of CI: ``pytest -m "not slow"`` skips it
locally if wanted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
HINT = "pip install 'lakeflow-job-meta[local]'"
BIN = "Scripts" if os.name == "nt" else "bin"


def _copy_sources(destination: Path) -> None:
    """The tracked files (as a clean clone would have them), so the build never writes into the
    working tree (build/, *.egg-info) that other processes may be using."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout.split(b"\0")
        files = [REPO / name.decode() for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        ignore = {".venv", ".git", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}
        files = [p for p in REPO.rglob("*") if not (set(p.relative_to(REPO).parts) & ignore)]
    for path in files:
        if path.is_file():
            target = destination / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _run(argv: list[str], *, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _required_dependencies(wheel: Path) -> list[str]:
    """``Requires-Dist`` entries of the wheel that belong to no extra."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    requirements = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = line.split(":", 1)[1].strip()
            if "extra ==" not in requirement:
                requirements.append(requirement)
    return requirements


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "src"
    _copy_sources(source)
    dist = tmp_path / "dist"

    build = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)], cwd=source)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("lakeflow_job_meta-*.whl")

    # -- contents ----------------------------------------------------------------------------
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
        schema = json.loads(archive.read("lakeflow_job_meta/metadata/schema.json"))
        # `init --with-examples` loads the examples shipped inside the package.
        shipped_examples = archive.read("lakeflow_job_meta/data/metadata_examples.yaml")
    assert shipped_examples == EXAMPLES.read_bytes()
    assert "lakeflow_job_meta/py.typed" in names
    assert "lakeflow_job_meta/__main__.py" in names
    assert "$schema" in schema or "$defs" in schema
    assert not [n for n in names if n.startswith(("tests/", "examples/"))]
    assert "lakeflow-job-meta = lakeflow_job_meta.cli.main:entry" in entry_points
    assert "lakeflow-job-meta-monitor = lakeflow_job_meta.main:main" in entry_points
    required = _required_dependencies(wheel)
    assert any(r.startswith("databricks-sdk") for r in required)
    assert not any(r.startswith(("pyspark", "deltalake", "pyarrow", "delta-spark")) for r in required)

    # -- a fresh venv: the wheel without deps, then only its required deps -------------------
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    python = venv / BIN / "python"
    for argv in (
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        [str(python), "-m", "pip", "install", "-q", *required],
    ):
        installed = _run(argv, cwd=tmp_path)
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    probe = _run(
        [
            str(python),
            "-c",
            "import importlib.util, sys\n"
            "import lakeflow_job_meta\n"
            "from lakeflow_job_meta import JobOrchestrator, MetadataManager, MetadataMonitor\n"
            "import lakeflow_job_meta.cli.main, lakeflow_job_meta.main\n"
            "assert importlib.util.find_spec('pyspark') is None, 'pyspark is installed'\n"
            "assert importlib.util.find_spec('deltalake') is None, 'deltalake is installed'\n"
            "assert 'pyspark' not in sys.modules and 'deltalake' not in sys.modules\n"
            "print(lakeflow_job_meta.__version__)\n"
            "print(lakeflow_job_meta.__file__)\n",
        ],
        cwd=work,
    )
    assert probe.returncode == 0, probe.stderr
    version, location = probe.stdout.split()
    assert version == "0.1.0"
    assert str(venv) in location  # the installed copy, not the source tree

    script = venv / BIN / "lakeflow-job-meta"
    helped = _run([str(script), "--help"], cwd=work)
    assert helped.returncode == 0, helped.stderr
    assert "usage: lakeflow-job-meta" in helped.stdout
    for command in (
        "init",
        "validate",
        "load",
        "plan",
        "apply",
        "export-bundle",
        "monitor",
        "status",
        "history",
        "graph",
    ):
        assert command in helped.stdout

    # validate needs no table: it works without the [local] extra.
    validated = _run([str(script), "validate", str(EXAMPLES)], cwd=work)
    assert validated.returncode == 0, validated.stderr

    # A local control-table command: one line naming the extra, no traceback, nothing created.
    for argv in (
        [str(script), "load", str(EXAMPLES), "--control-table", "./ctl"],
        [str(script), "status", "--control-table", "./ctl"],
        [str(script), "plan"],
        [str(python), "-m", "lakeflow_job_meta", "apply"],
        [str(venv / BIN / "lakeflow-job-meta-monitor"), "--once"],
    ):
        proc = _run(argv, cwd=work)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("target:")]
        assert len(lines) == 1, (argv, proc.stderr)
        assert HINT in lines[0] and lines[0].startswith("error: ")
        assert "Traceback" not in proc.stderr
    assert list(work.iterdir()) == []

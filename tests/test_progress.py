"""A progress bar on applies of more than a few modules, on stderr, only when stderr is a
terminal (a real pseudo-terminal here); results stay on stdout."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from lakeflow_job_meta.cli.progress import ProgressBar
from tests.cli_run import run_cli
from tests.example_files import REPO

pytest.importorskip("deltalake")
MODULES = 8


def _metadata(tmp_path: Path) -> Path:
    body = "".join(
        f"  - module_name: m{i}\n    sources:\n      - source_id: s{i}\n        source_type: x\n"
        f"        execution_order: 1\n"
        f"        transformation_config: {{task_type: notebook, notebook_path: /Workspace/n{i}}}\n"
        for i in range(MODULES)
    )
    path = tmp_path / "many.yaml"
    path.write_text("modules:\n" + body)
    return path


def _apply(tmp_path: Path, url: str, table: str, *, tty: bool) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(
        {"PYTHONPATH": str(REPO), "HOME": str(tmp_path), "DATABRICKS_HOST": url, "DATABRICKS_TOKEN": "t"}
    )
    argv = [
        sys.executable,
        "-m",
        "lakeflow_job_meta",
        "apply",
        "--control-table",
        table,
        "--target",
        "workspace",
    ]
    if not tty:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True, env=env, cwd=tmp_path)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read() if proc.stdout else ""
    os.close(master)
    return proc.wait(60), out, seen.decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_gets_a_progress_bar_a_pipe_does_not(
    tmp_path: Path, jobs_emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    table = str(tmp_path / "ctl")
    assert run_cli(capsys, "load", str(_metadata(tmp_path)), "--control-table", table)[0] == 0
    code, out, err = _apply(tmp_path, jobs_emulator.url, table, tty=True)
    assert code == 0, err
    assert "Applying" in err and f"{MODULES}/{MODULES}" in err
    assert f"Apply complete: {MODULES} created" in out and "Applying" not in out
    code, out, err = _apply(tmp_path, jobs_emulator.url, table, tty=False)
    assert code == 0 and "Applying" not in err and f"Apply complete: {MODULES} unchanged" in out


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_few_modules_get_no_bar() -> None:
    stream = _Tty()
    with ProgressBar(stream) as bar:
        bar.start(3)
        bar.advance(object())
    assert stream.getvalue() == ""
    with ProgressBar(stream) as bar:
        bar.start(6)
        bar.advance(object())
    assert "Applying" in stream.getvalue()

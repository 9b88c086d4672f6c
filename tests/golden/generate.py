"""Golden outputs of the examples: what the tool sends and writes, captured byte for byte.

For ``examples/metadata_examples.yaml`` without an environment and with each of its environments:

- ``workspace-<env>.plan.json``: ``plan --target workspace --json`` against a fresh emulator;
- ``workspace-<env>.writes.json``: every write request of ``apply --target workspace`` (the
  ``jobs/create`` bodies, permissions, workspace files), in a stable order;
- ``workspace-<env>.replan.json``: ``plan --json`` right after that apply (all noop);
- ``bundle-<env>.plan.json`` and ``bundle-<env>.files.json``: ``plan``/``apply --target bundle:DIR``.

The control table lives at one fixed path (its id, a hash of the path, is in every job's tags
and spec hash), guarded by a file lock so concurrent runs take turns. Volatile values are
normalised: that folder, the emulator's URL and job ids (replaced by the job's name, as ids
depend on the order parallel workers create jobs in).

Run as a script to rewrite the fixtures from the code on ``PYTHONPATH``::

    python tests/golden/generate.py [OUT_DIR]
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "metadata_examples.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ENVIRONMENTS = (None, "dev", "prod")
TOKEN = "golden-token"
WORK_DIR = "/tmp/lakeflow_job_meta_golden"


@contextlib.contextmanager
def _work_dir() -> Iterator[str]:
    """The one fixed folder the runs use, empty, held under an exclusive lock."""
    with open(f"{WORK_DIR}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(WORK_DIR, ignore_errors=True)
        os.makedirs(WORK_DIR)
        try:
            yield WORK_DIR
        finally:
            shutil.rmtree(WORK_DIR, ignore_errors=True)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the CLI run (it reads DATABRICKS_HOST/TOKEN like a user)."""
    saved = {key: os.environ.get(key) for key in values}
    removed = {k: v for k, v in os.environ.items() if k.startswith("DATABRICKS_") and k not in values}
    for key in removed:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(removed)


def _cli(*argv: str) -> str:
    """Run the CLI in-process; return stdout. A non-zero exit is a broken example."""
    from lakeflow_job_meta.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {err.getvalue()}{out.getvalue()}")
    return out.getvalue()


class _Normaliser:
    def __init__(self, tmp: str, url: str):
        self.replacements = [
            (os.path.realpath(tmp), "<TMP>"),
            (tmp, "<TMP>"),
            (url, "<HOST>"),
        ]
        self.job_names: dict[int, str] = {}

    def text(self, value: str) -> str:
        for old, new in self.replacements:
            value = value.replace(old, new)
        return value

    def job_id(self, value: Any) -> Any:
        return f"<job {self.job_names[value]}>" if value in self.job_names else value

    def value(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            path_ids = re.sub(r"/jobs/(\d+)", lambda m: f"/jobs/{self.job_id(int(m.group(1)))}", value)
            return self.text(path_ids)
        if key == "job_id" and isinstance(value, int):
            return self.job_id(value)
        return value


def _load(table: str, env: str | None) -> None:
    _cli("load", str(EXAMPLES), "--control-table", table, *(["--env", env] if env else []))


def workspace_outputs(env: str | None) -> dict[str, str]:
    from tests.emulator.server import JobsEmulator

    label = env or "none"
    with _work_dir() as tmp, JobsEmulator(token=TOKEN) as emu:
        table = os.path.join(tmp, "control")
        env_args = ["--env", env] if env else []
        with _environment(DATABRICKS_HOST=emu.url, DATABRICKS_TOKEN=TOKEN):
            _load(table, env)
            common = ["--control-table", table, "--target", "workspace", "--json", *env_args]
            plan = json.loads(_cli("plan", *common))
            emu.reset_counters()
            _cli("apply", *common)
            writes = [r for r in emu.requests if r.method != "GET" and r.endpoint not in ("jobs/list",)]
            replan = json.loads(_cli("plan", *common))
        for change in replan["changes"]:
            # A hash covers resolved run_job ids, which follow the create order: the plan before
            # the apply pins the hashes; here it is enough that nothing changed.
            if change.get("new_hash") == change.get("old_hash"):
                change["new_hash"] = change["old_hash"] = "<unchanged>"
        norm = _Normaliser(tmp, emu.url)
        norm.job_names = {job_id: job["settings"]["name"] for job_id, job in emu.jobs().items()}
        recorded = [
            {"method": r.method, "endpoint": r.endpoint, "path": r.path, "body": r.body, "status": r.status}
            for r in writes
        ]
        recorded = sorted(norm.value(recorded), key=lambda r: json.dumps(r, sort_keys=True))
        return {
            f"workspace-{label}.plan.json": _dump(norm.value(plan)),
            f"workspace-{label}.writes.json": _dump(recorded),
            f"workspace-{label}.replan.json": _dump(norm.value(replan)),
        }


def bundle_outputs(env: str | None) -> dict[str, str]:
    label = env or "none"
    with _work_dir() as tmp:
        table = os.path.join(tmp, "control")
        bundle = os.path.join(tmp, "bundle")
        env_args = ["--env", env] if env else []
        with _environment():
            _load(table, env)
            common = ["--control-table", table, "--target", f"bundle:{bundle}", "--json", *env_args]
            plan = json.loads(_cli("plan", *common))
            _cli("apply", *common)
        norm = _Normaliser(tmp, "http://unused")
        files = {
            path.relative_to(bundle).as_posix(): norm.text(path.read_text(encoding="utf-8"))
            for path in sorted(Path(bundle).rglob("*"))
            if path.is_file()
        }
        return {
            f"bundle-{label}.plan.json": _dump(norm.value(plan)),
            f"bundle-{label}.files.json": _dump(files),
        }


def generate() -> dict[str, str]:
    """Fixture file name -> its exact text."""
    outputs: dict[str, str] = {}
    for env in ENVIRONMENTS:
        outputs.update(workspace_outputs(env))
        outputs.update(bundle_outputs(env))
    return outputs


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else FIXTURES
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    for name, text in generate().items():
        (out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(list(out.glob('*.json')))} fixtures to {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.environ.get("GOLDEN_CODE_ROOT", str(REPO)))
    sys.path.insert(1, str(REPO))
    sys.exit(main(sys.argv[1:]))

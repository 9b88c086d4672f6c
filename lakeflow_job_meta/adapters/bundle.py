"""The bundle writer: compiled jobs as a Databricks Asset Bundle folder.

Layout::

    databricks.yml                      bundle name, includes, one default target
    resources/<module>.job.yml          one job per module
    resources/sql/<module>/<task>.sql   inline SQL of sql_query tasks
    targets/*.yml                       the user's deployment targets: included, never written
                                        (but for a first scaffold, see :func:`scaffold_target`)

Output is deterministic (sorted keys, fixed width), and :func:`write_bundle` only touches files
whose bytes differ, so re-writing an unchanged bundle changes nothing on disk and a git diff of the
folder shows exactly what the metadata changed. Every file we write starts with a marker comment;
only marked files are ever deleted, so files a user adds to ``resources/`` are safe.

A folder belongs to one control table: ``databricks.yml``'s second line records its ``ljm_table``
identity (:func:`recorded_owner`), the value its jobs carry in their ownership tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakeflow_job_meta.planning.canonical import PAUSABLE_BLOCKS
from lakeflow_job_meta.planning.compiler import CompiledJob, iter_tasks

MANAGED_MARKER = "managed by lakeflow_job_meta"
YAML_HEADER = f"# {MANAGED_MARKER}: generated from the metadata, edits are overwritten\n"
SQL_HEADER = f"-- {MANAGED_MARKER}: generated from the metadata, edits are overwritten\n"
# Jobs API fields the bundle schema rejects in a job.
API_ONLY_FIELDS: tuple[str, ...] = ("edit_mode", "format", "deployment")
RESOURCES_DIR = "resources"
# The user's own deployment targets (workspace host, root path, mode): databricks.yml includes
# them, so they survive every apply, which rewrites databricks.yml itself.
TARGETS_DIR = "targets"
TARGETS_COMMENT = (
    f"# deployment targets: add your own in {TARGETS_DIR}/*.yml (never rewritten), "
    "then `databricks bundle deploy -t NAME`\n"
)
JOB_FILE_SUFFIX = ".job.yml"
SQL_DIR = f"{RESOURCES_DIR}/sql"
YAML_WIDTH = 100
BUNDLE_FILE = "databricks.yml"
# databricks.yml's second line: the control table the folder belongs to (its ljm_table tag value).
OWNER_COMMENT = "# owner: ljm_table="
_OWNER_LINE = re.compile(r"# owner: ljm_table=([a-z0-9_-]+)(?:;.*)?")

_SAFE_STEM = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
# A key usable in ``${resources.jobs.<key>.id}``: letters first, then letters/digits joined by - or _.
_RESOURCE_KEY = re.compile(r"^[A-Za-z]+([-_]*[A-Za-z0-9]+)*$")


@dataclass
class BundleWriteResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def bundle_stem(module_name: str) -> str:
    """File-name stem of a module: the name itself when path-safe, else a cleaned name + hash."""
    if _SAFE_STEM.match(module_name):
        return module_name
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", module_name).strip("_")
    return f"{cleaned}_{_short_hash(module_name)}" if cleaned else _short_hash(module_name)


def resource_key(module_name: str) -> str:
    """The job's key under ``resources.jobs``; a rewritten name gets a hash so keys stay distinct."""
    if _RESOURCE_KEY.match(module_name):
        return module_name
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", module_name).strip("_")
    if not cleaned[:1].isalpha():
        cleaned = f"job_{cleaned}".rstrip("_")
    return f"{cleaned}_{_short_hash(module_name)}"


def module_of_bundle_path(relpath: str) -> str | None:
    """The module stem a bundle file belongs to (``None`` for databricks.yml and foreign paths)."""
    parts = relpath.replace(os.sep, "/").split("/")
    if len(parts) == 2 and parts[0] == RESOURCES_DIR and parts[1].endswith(JOB_FILE_SUFFIX):
        return parts[1][: -len(JOB_FILE_SUFFIX)]
    if len(parts) == 4 and "/".join(parts[:2]) == SQL_DIR and parts[3].endswith(".sql"):
        return parts[2]
    return None


_EMIT_OPTIONS: dict[str, Any] = {
    "sort_keys": True,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": YAML_WIDTH,
    "indent": 2,
}
# libyaml's emitter and parser, in the pyyaml wheels; None when PyYAML was built without it.
_CSafeDumper: type[yaml.CSafeDumper] | None = getattr(yaml, "CSafeDumper", None)
_CSafeLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
# What json.dumps writes for a control character other than newline and tab.
_JSON_CONTROL_ESCAPE = re.compile(r"\\[ubfr]")


def _emitters_agree(document: Any) -> bool:
    """Whether libyaml's emitter writes ``document`` byte for byte as PyYAML's does: they choose
    different quoting for non-ASCII and control characters and for an empty key, fold long lines
    differently, and agree on everything else (a hypothesis test checks this). A false "no" only
    costs speed."""
    try:
        text = json.dumps(document, ensure_ascii=False)
    except (TypeError, ValueError):
        return False
    return (
        text.isascii()
        and "\x7f" not in text
        and '"": ' not in text
        and _JSON_CONTROL_ESCAPE.search(text) is None
    )


def _unfoldable(line: str) -> bool:
    """A line at or over the width that neither emitter could have folded: folding happens only
    at a space inside a scalar (or anywhere in a double-quoted one). Its key must be short: they
    disagree on when a long key becomes a ``? key`` complex key."""
    text = line.lstrip(" ")
    text = text.removeprefix("- ")
    key, separator, value = text.partition(": ")
    if not separator and text.endswith(":"):  # a key whose value starts on the next line
        key, separator, value = text[:-1], ":", ""
    if not separator:
        key, value = "", text
    return '"' not in line and " " not in key and " " not in value and len(key) <= 80


def _dump(document: dict[str, Any]) -> str:
    """The document as YAML, always PyYAML's bytes. libyaml's emitter (about 4x faster) writes
    it when the two agree: printable ASCII with newlines and tabs, no empty key, and no line at
    the width that could fold (their folding differs)."""
    if _CSafeDumper is not None and _emitters_agree(document):
        body: str = yaml.dump(document, Dumper=_CSafeDumper, **_EMIT_OPTIONS)
        if all(len(line) < YAML_WIDTH or _unfoldable(line) for line in body.split("\n")):
            return YAML_HEADER + body
    text: str = yaml.safe_dump(document, **_EMIT_OPTIONS)
    return YAML_HEADER + text


def _bundle_permissions(acl: list[dict[str, str]]) -> list[dict[str, str]]:
    """Jobs API ACL entries (``permission_level``) as bundle permissions (``level``)."""
    return [
        {("level" if key == "permission_level" else key): value for key, value in entry.items()}
        for entry in acl
    ]


def job_resource_key(job: CompiledJob) -> str:
    """A job's key under ``resources.jobs``. A renamed module keeps the key of its first name:
    ``bundle deploy`` maps a key to a job id, so a new key would delete the job (and its run
    history) and create another."""
    return resource_key(job.renamed_from[0] if job.renamed_from else job.module_name)


def _job_resource(
    job: CompiledJob, files: dict[str, str], keys: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The job's bundle settings; adds its SQL files to ``files``. ``keys``: the resource keys of
    the modules its run_job tasks name, where they differ from their names (renamed modules)."""
    # A copy to edit: the settings are JSON data (string keys), and a JSON round trip copies them
    # about 10x faster than copy.deepcopy.
    settings: dict[str, Any] = json.loads(json.dumps(job.settings))
    for name in API_ONLY_FIELDS:
        settings.pop(name, None)
    stem = bundle_stem(job.module_name)
    for task in iter_tasks(settings):
        sql_file = (task.get("sql_task") or {}).get("file") or {}
        if sql_file.get("path") in job.managed_files:
            relative = f"sql/{stem}/{task['task_key']}.sql"  # relative to resources/
            files[f"{RESOURCES_DIR}/{relative}"] = SQL_HEADER + job.managed_files[sql_file["path"]]
            task["sql_task"]["file"] = {"path": relative}
        target = job.run_job_refs.get(task.get("task_key", ""))
        if target is not None and "run_job_task" in task:
            key = (keys or {}).get(target) or resource_key(target)
            task["run_job_task"]["job_id"] = f"${{resources.jobs.{key}.id}}"
    if job.permissions:
        settings["permissions"] = _bundle_permissions(job.permissions)
    return settings


def render_bundle(
    compiled_jobs: Iterable[CompiledJob],
    bundle_name: str,
    *,
    target: str = "default",
    workspace_host: str | None = None,
    owner: str | None = None,
) -> dict[str, str]:
    """Every file of the bundle, relative path -> text; ``owner``: the ``ljm_table`` identity
    recorded in ``databricks.yml`` (see :func:`recorded_owner`).

    A run_job task that names a module not in ``compiled_jobs`` still refers to its resource key:
    ``databricks bundle validate`` reports it if that module's file is not in the folder either.
    """
    target_settings: dict[str, Any] = {"default": True}
    if workspace_host:
        target_settings["workspace"] = {"host": workspace_host}
    root = _dump(
        {
            "bundle": {"name": bundle_name},
            "include": [f"{RESOURCES_DIR}/*.yml", f"{TARGETS_DIR}/*.yml"],
            "targets": {target: target_settings},
        }
    )
    record = ""
    if owner is not None:
        record = f"{OWNER_COMMENT}{owner}; another control table's plan or apply on this folder is refused\n"
    root = YAML_HEADER + record + TARGETS_COMMENT + root[len(YAML_HEADER) :]
    files: dict[str, str] = {BUNDLE_FILE: root}
    jobs = sorted(compiled_jobs, key=lambda j: j.module_name)
    keys = {job.module_name: job_resource_key(job) for job in jobs}
    for job in jobs:
        files.update(render_job_files(job, keys))
    return dict(sorted(files.items()))


def render_job_files(job: CompiledJob, keys: Mapping[str, str] | None = None) -> dict[str, str]:
    """One module's files: its job file and its SQL files (a module's files depend on it and on
    the resource keys of the modules it runs, ``keys``)."""
    files: dict[str, str] = {}
    resource = _job_resource(job, files, keys)
    document = {"resources": {"jobs": {job_resource_key(job): resource}}}
    files[f"{RESOURCES_DIR}/{bundle_stem(job.module_name)}{JOB_FILE_SUFFIX}"] = _dump(document)
    return files


def paused_job_file(text: str, removed_tag: tuple[str, str]) -> str | None:
    """A job file of a removed module with every schedule, trigger and continuous block paused
    and ``removed_tag`` added, byte-stable when applied again; None when the job has nothing to
    pause (orphaned) or the file is not one job we wrote."""
    try:
        document = yaml.safe_load(text)
        ((key, job),) = document["resources"]["jobs"].items()
    except Exception:  # hand-edited or foreign: leave it alone
        return None
    blocks = [b for b in PAUSABLE_BLOCKS if isinstance(job.get(b), dict)]
    if not blocks:
        return None
    for block in blocks:
        job[block]["pause_status"] = "PAUSED"
    job["tags"] = {**(job.get("tags") or {}), removed_tag[0]: removed_tag[1]}
    return _dump({"resources": {"jobs": {key: job}}})


def recorded_owner(directory: str | os.PathLike[str]) -> str | None:
    """The ``ljm_table`` identity ``databricks.yml`` records (None: no such file, not ours, or
    written before owners were recorded)."""
    try:
        with (Path(directory) / BUNDLE_FILE).open("r", encoding="utf-8") as handle:
            first, second = handle.readline(), handle.readline()
    except (OSError, UnicodeDecodeError):
        return None
    match = _OWNER_LINE.fullmatch(second.rstrip("\n"))
    return match.group(1) if MANAGED_MARKER in first and match else None


def job_of_file(path: Path) -> dict[str, Any] | None:
    """The one job of a job file (its settings under ``resources.jobs``), or None when the file is
    unreadable, hand-edited into another shape, or foreign."""
    try:
        return job_of_text(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def job_of_text(text: str) -> dict[str, Any] | None:
    """The one job of a job file's text, or None when it is not one job (see :func:`job_of_file`)."""
    try:
        document = yaml.load(text, Loader=_CSafeLoader or yaml.SafeLoader)
        ((_, job),) = document["resources"]["jobs"].items()
    except Exception:
        return None
    return job if isinstance(job, dict) else None


def is_managed_file(path: Path) -> bool:
    """True when the file's first line carries our marker (only such files are ever deleted)."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            return MANAGED_MARKER in handle.readline()
    except (OSError, UnicodeDecodeError):
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(
    directory: str | os.PathLike[str], files: Mapping[str, str | None], *, keep_modules: Collection[str] = ()
) -> BundleWriteResult:
    """Write ``files`` under ``directory``, only where bytes differ; remove stale managed files.
    A None text is a file known to be unchanged (its recorded hash matches): left alone.

    Stale means: a marked ``resources/*.job.yml`` or ``resources/sql/<module>/*.sql`` not in
    ``files``, whose module is not in ``keep_modules`` (modules with errors keep their last good
    files rather than vanish from the bundle).
    """
    root = Path(directory)
    result = BundleWriteResult()
    for relpath, text in sorted(files.items()):
        path = root / relpath
        if text is None:
            result.unchanged.append(relpath)
            continue
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            result.unchanged.append(relpath)
            continue
        _write_atomically(path, data)
        result.written.append(relpath)
    keep = {bundle_stem(name) for name in keep_modules}
    candidates = [*root.glob(f"{RESOURCES_DIR}/*{JOB_FILE_SUFFIX}"), *root.glob(f"{SQL_DIR}/*/*.sql")]
    for path in sorted(candidates):
        relpath = path.relative_to(root).as_posix()
        if relpath in files or module_of_bundle_path(relpath) in keep or not is_managed_file(path):
            continue
        path.unlink()
        result.deleted.append(relpath)
    sql_root = root / SQL_DIR
    if sql_root.is_dir():
        for folder in sorted(sql_root.iterdir()):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return result


_TARGET_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_HOST = re.compile(r"^https?://[^\s/]+/?$")


def check_target(name: str, host: str) -> None:
    """Raise ValueError unless ``name`` can be a target file's name and ``host`` a workspace URL."""
    if not _TARGET_NAME.match(name):
        raise ValueError(f"--bundle-target {name!r}: use letters, digits, '_' and '-'")
    if not _HOST.match(host):
        raise ValueError(
            f"--workspace-host {host!r}: give the workspace URL, such as https://adb-123.4.azuredatabricks.net"
        )


def scaffold_target(directory: str | os.PathLike[str], name: str, host: str) -> str | None:
    """Write ``targets/<name>.yml`` (a deployment target for ``host``) unless it exists; return
    its relative path when written, None when it was there already naming the same host.

    The file carries no managed marker: from its first write it is the user's, never rewritten or
    deleted, so a ``mode``, ``root_path`` or ``run_as`` added to it survives every apply. Asking
    for another host than the existing file names is refused (ValueError): the file is the
    user's to edit."""
    check_target(name, host)
    relpath = f"{TARGETS_DIR}/{name}.yml"
    path = Path(directory) / relpath
    if path.exists():
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            existing = document["targets"][name]["workspace"]["host"]
        except Exception:
            existing = None
        if existing is not None and str(existing).rstrip("/") == host.rstrip("/"):
            return None
        raise ValueError(
            f"{path} is yours and names {existing or 'no host'} for target {name!r}, not {host}: "
            "edit it (lakeflow_job_meta never rewrites it)"
        )
    text = (
        f"# Deployment target {name!r} of this bundle. This file is yours: lakeflow_job_meta wrote it\n"
        "# once (--bundle-target) and never rewrites or deletes it. Add what the target needs, e.g.\n"
        "# `mode: production` with `workspace.root_path`, or `run_as`. Deploy with:\n"
        f"#   databricks bundle deploy -t {name}\n"
    )
    text += yaml.safe_dump({"targets": {name: {"workspace": {"host": host}}}}, **_EMIT_OPTIONS)
    _write_atomically(path, text.encode("utf-8"))
    return relpath

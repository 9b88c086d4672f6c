"""The compiled desired state, kept on local disk from one process to the next.

A CLI process starts from nothing: a plan with nothing to change used to read, parse, validate
and compile every row (about 2 s at 10,000 sources, ten times that at 100,000, with every
compiled job in memory at once). The desired state is a function of the two metadata tables'
contents, the run's compile context and policy, and the code, so it is stored under a
fingerprint of exactly those; each table is named by its Delta table id and version
(:meth:`~lakeflow_job_meta.storage.base.Table.snapshot_id`), which every write moves.

A hit reads the index (module, job name, digest), the issues and the known module names; a job's
whole definition is read from the file only when a target asks for it. Anything unreadable or
mismatched is a miss, and the state is computed from the tables as before: the cache can make a
run faster, never different. One SQLite file per control table, target and environment, written
to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import urllib.parse
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lakeflow_job_meta.engine.targets.base import JobSummary
from lakeflow_job_meta.errors import MetadataIssue
from lakeflow_job_meta.planning.compiler import CompiledJob

log = logging.getLogger(__name__)

# Bump when the file layout or what a fingerprint covers changes.
CACHE_FORMAT = 2
CACHE_DIR_VARIABLE = "LAKEFLOW_JOB_META_CACHE_DIR"
_OFF = {"", "0", "off", "false", "no", "none"}


def default_cache_dir() -> Path | None:
    """``$LAKEFLOW_JOB_META_CACHE_DIR`` (``off`` disables the cache), else the user cache folder."""
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    if configured is not None:
        return None if configured.strip().lower() in _OFF else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lakeflow_job_meta" / "desired"


@cache
def code_fingerprint() -> str:
    """The package's own code, by file name, size and modification time: an upgrade or an edit
    of any module makes every stored state stale."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint(parts: Mapping[str, Any]) -> str:
    """One digest of everything a desired state is computed from."""
    text = json.dumps(
        {"format": CACHE_FORMAT, "code": code_fingerprint(), **parts}, sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedState:
    """A desired state read back: ``compiled`` reads each job from the file when asked."""

    compiled: Mapping[str, CompiledJob]
    summaries: dict[str, JobSummary]
    issues: dict[str, list[MetadataIssue]]
    known: set[str]
    # The identity compiled in as owner of ACLs naming none (None when no module needed one).
    identity: str | None


class _StoredJobs(Mapping[str, CompiledJob]):
    """Compiled jobs in the cache file, read one at a time (a few kept): iterating the names
    costs nothing, and a target that decides by summaries never reads a job."""

    def __init__(self, connection: sqlite3.Connection, names: list[str]):
        self._connection = connection
        self._names = names
        self._present = set(names)
        self._lock = threading.Lock()  # workspace applies read from worker threads
        self._recent: OrderedDict[str, CompiledJob] = OrderedDict()

    def __getitem__(self, module: str) -> CompiledJob:
        if module not in self._present:
            raise KeyError(module)
        with self._lock:
            job = self._recent.get(module)
            if job is None:
                (body,) = self._connection.execute(
                    "SELECT body FROM jobs WHERE module = ?", (module,)
                ).fetchone()
                job = CompiledJob(**json.loads(zlib.decompress(body)))
                self._recent[module] = job
                if len(self._recent) > 64:
                    self._recent.popitem(last=False)
            else:
                self._recent.move_to_end(module)
            return job

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, module: object) -> bool:
        return module in self._present


def _issue_to_json(issue: MetadataIssue) -> dict[str, Any]:
    return {
        "location": issue.location,
        "field": issue.field,
        "message": issue.message,
        "module": issue.module,
        "file": issue.file,
        "related_files": list(issue.related_files),
    }


def _issue_from_json(data: Mapping[str, Any]) -> MetadataIssue:
    return MetadataIssue(
        data["location"],
        data["field"],
        data["message"],
        module=data.get("module"),
        file=data.get("file"),
        related_files=tuple(data.get("related_files") or ()),
    )


class DesiredStateCache:
    """Reads and writes stored desired states in ``directory``; never raises on a bad file."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{name}.sqlite"

    def load(self, key: str, expected: str) -> CachedState | None:
        """The state stored under ``key`` if it was computed from ``expected``, else None."""
        path = self._path(key)
        if not path.is_file():
            return None
        connection: sqlite3.Connection | None = None
        try:
            # Read-only; the path quoted so that a '?' or '#' in it is not read as URI syntax.
            uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
            if meta.get("fingerprint") != expected:
                connection.close()
                return None
            rows = connection.execute("SELECT module, job_name, digest FROM jobs ORDER BY module").fetchall()
            issues = {
                module: [_issue_from_json(i) for i in found]
                for module, found in json.loads(meta["issues"]).items()
            }
            identity = json.loads(meta["identity"])
            known = set(json.loads(meta["known"]))
        except (sqlite3.Error, KeyError, ValueError, TypeError) as error:
            log.debug("desired-state cache %s unreadable (%s): computing from the tables", path, error)
            if connection is not None:
                connection.close()
            return None
        summaries = {module: JobSummary(job_name, digest) for module, job_name, digest in rows}
        return CachedState(
            compiled=_StoredJobs(connection, [module for module, _, _ in rows]),
            summaries=summaries,
            issues=issues,
            known=known,
            identity=identity,
        )

    def store(
        self,
        key: str,
        stamp: str,
        jobs: Mapping[str, str],
        summaries: Mapping[str, JobSummary],
        issues: Mapping[str, list[MetadataIssue]],
        known: set[str],
        identity: str | None,
    ) -> None:
        """Write the state under ``key`` (``jobs``: module -> its compiled job's ``job_json``);
        a failure (full disk, read-only home) is only logged."""
        path = self._path(key)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(temporary)
            try:
                connection.execute("PRAGMA journal_mode = OFF")
                connection.execute("PRAGMA synchronous = OFF")
                connection.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
                connection.execute(
                    "CREATE TABLE jobs (module TEXT PRIMARY KEY, job_name TEXT, digest TEXT, body BLOB)"
                )
                connection.executemany(
                    "INSERT INTO jobs VALUES (?, ?, ?, ?)",
                    (
                        (
                            module,
                            summaries[module].job_name,
                            summaries[module].digest,
                            zlib.compress(text.encode("utf-8"), 1),
                        )
                        for module, text in jobs.items()
                    ),
                )
                meta = {
                    "fingerprint": stamp,
                    "issues": json.dumps(
                        {m: [_issue_to_json(i) for i in found] for m, found in issues.items()}
                    ),
                    "known": json.dumps(sorted(known)),
                    "identity": json.dumps(identity),
                }
                connection.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                connection.commit()
            finally:
                connection.close()
            os.replace(temporary, path)
        except (OSError, sqlite3.Error, TypeError, ValueError) as error:
            log.debug("desired-state cache not written to %s: %s", path, error)
            with contextlib.suppress(OSError):
                temporary.unlink()

"""Change detection for a folder (Unity Catalog volume) of YAML files, by content.

Two pieces, used together by the monitor loop:

- :class:`VolumeScanner` finds which ``.yaml``/``.yml`` files were added, modified or deleted
  since the changes it last reported were *committed*. It compares content hashes, not names or
  timestamps, so re-writing a file with identical bytes (``touch``, a no-op save) is no change,
  and a half-written file is never handed over: a file is reported only when two reads separated
  by a settle interval agree.
- :class:`VolumeWatcher` wakes the loop as soon as something changes on a local disk (watchdog
  and inotify). FUSE and network mounts (``/Volumes``, ``/dbfs``) deliver no events, so there it
  does nothing and the loop's periodic scan is the only detector.

The snapshot of processed files is updated only by :meth:`VolumeScanner.commit`, after the
caller has applied the changes: a crash or failed apply between scan and commit means the same
changes are detected again on the next scan.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from lakeflow_job_meta.clock import Clock, SystemClock
from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.files import is_candidate_name, is_ignored_dir
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES, human_size

log = logging.getLogger(__name__)

DEFAULT_SETTLE_SECONDS = 0.2

# Error markers of FileContent.error. The metadata layer turns them into user messages.
ERROR_TOO_LARGE = "too_large"
ERROR_UNREADABLE = "unreadable"

SNAPSHOT_FORMAT = 1
_UNREADABLE_DIGEST = f"!{ERROR_UNREADABLE}"

# Mount points whose filesystems deliver no inotify events for changes made elsewhere.
POLL_PREFIXES = ("/Volumes", "/dbfs", "/Workspace")
_NO_EVENT_FSTYPES = ("fuse", "nfs", "cifs", "smb", "9p", "ceph", "glusterfs", "lustre", "afs", "davfs")


@dataclass(frozen=True)
class FileContent:
    """One added or modified file. Exactly one of ``data`` and ``error`` is set.

    ``error`` is a marker (:data:`ERROR_TOO_LARGE`, :data:`ERROR_UNREADABLE`) plus ``detail``, not
    a message: the metadata layer words the issue, so every issue reads the same.
    """

    path: str  # relative to the root, "/"-separated
    data: bytes | None
    error: str | None = None
    size: int = 0
    sha256: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Entry:
    """What the snapshot knows about one file. ``digest`` is the sha256 of the content, or an
    error marker (``!too_large:<size>``) so a file that stays broken is not reported again."""

    size: int
    mtime_ns: int
    digest: str


@dataclass
class VolumeChanges:
    """Result of one scan. Nothing here is remembered until :meth:`VolumeScanner.commit`."""

    added: dict[str, FileContent] = field(default_factory=dict)
    modified: dict[str, FileContent] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    # Still being written (two reads disagreed) or flickering: retried next scan, not ingested.
    unstable: list[str] = field(default_factory=list)
    # Problems that stopped part of the scan (root gone, a folder unreadable). Files under a
    # folder that could not be listed are never reported as deleted.
    errors: list[str] = field(default_factory=list)
    full: bool = False
    _pending: dict[str, _Entry | None] = field(default_factory=dict, repr=False)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


@dataclass(frozen=True)
class _Observation:
    size: int
    mtime_ns: int
    digest: str
    data: bytes | None
    error: str | None = None
    detail: str = ""
    moving: bool = False  # the file changed while it was being read


class VolumeScanner:
    """Detects added/modified/deleted YAML files under ``root`` by content hash.

    A quick scan (``full=False``) lists the tree and re-reads only files whose (size, mtime_ns)
    differ from the snapshot; a full scan re-hashes every file, catching in-place edits that kept
    size and mtime. Either way a changed file is read twice, ``settle_seconds`` apart (through the
    clock), and reported only if both reads agree.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        max_bytes: int = MAX_FILE_BYTES,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    ):
        self.root = os.path.abspath(os.fspath(root))
        self.clock: Clock = clock or SystemClock()
        self.max_bytes = max_bytes
        self.settle_seconds = settle_seconds
        self._snapshot: dict[str, _Entry] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ public API

    def check_root(self) -> None:
        """Raise ConfigurationError unless the root is an existing folder (call at start-up)."""
        _check_root(self.root)

    def scan(self, full: bool = False) -> VolumeChanges:
        """Compare the tree with the committed snapshot. Never raises for filesystem trouble:
        it is reported in ``errors`` and nothing under the trouble is reported deleted."""
        with self._lock:
            changes = VolumeChanges(full=full)
            listed, unlisted_dirs = self._list(changes.errors)
            if listed is None:
                return changes

            known = self._snapshot
            # Step 1: which files to read. Unchanged stat in a quick scan means unchanged file.
            first: dict[str, _Observation] = {}
            for rel, st in listed.items():
                entry = known.get(rel)
                if entry is not None and (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns):
                    if not full:
                        continue
                    if entry.digest.startswith(f"!{ERROR_TOO_LARGE}"):
                        continue  # an oversize file stays oversize: do not re-read it every full scan
                obs = self._observe(rel)
                if obs is None:
                    continue  # vanished between listing and reading: judged below as missing
                if entry is not None and obs.digest == entry.digest and not obs.moving:
                    # Same content (touch, or a no-op save): remember the new stat right away so
                    # quick scans stop re-reading it. Safe: this content was already committed.
                    if (obs.size, obs.mtime_ns) != (entry.size, entry.mtime_ns):
                        known[rel] = _Entry(obs.size, obs.mtime_ns, entry.digest)
                    continue
                first[rel] = obs

            gone = [rel for rel in known if rel not in listed and not _under_any(rel, unlisted_dirs)]
            if not first and not gone:
                return changes

            # Step 2: let writers finish, then read again. Only what both reads agree on counts.
            self.clock.sleep(self.settle_seconds)
            for rel, obs in sorted(first.items()):
                again = self._observe(rel)
                if again is None:
                    if rel in known:
                        changes.unstable.append(rel)  # appeared changed, then vanished
                    continue
                if obs.moving or again.moving or _key(obs) != _key(again):
                    changes.unstable.append(rel)
                    continue
                entry = known.get(rel)
                if entry is not None and again.digest == entry.digest:
                    known[rel] = _Entry(again.size, again.mtime_ns, entry.digest)  # reverted
                    continue
                content = FileContent(
                    path=rel,
                    data=again.data,
                    error=again.error,
                    size=again.size,
                    sha256=None if again.error else again.digest,
                    detail=again.detail,
                )
                target = changes.modified if rel in known else changes.added
                target[rel] = content
                changes._pending[rel] = _Entry(again.size, again.mtime_ns, again.digest)
            for rel in sorted(gone):
                # Editors that delete-then-recreate must not look like a deletion (that would
                # delete jobs): a file is deleted only if still absent after the settle interval.
                if os.path.lexists(self._abs(rel)):
                    changes.unstable.append(rel)
                else:
                    changes.deleted.append(rel)
                    changes._pending[rel] = None
            changes.unstable.sort()
            return changes

    def commit(self, changes: VolumeChanges, paths: Iterable[str] | None = None) -> None:
        """Mark ``changes`` (or only ``paths`` of them) as applied: later scans compare against
        them. Call only after the caller has durably applied them."""
        with self._lock:
            wanted = None if paths is None else set(paths)
            for rel, entry in changes._pending.items():
                if wanted is not None and rel not in wanted:
                    continue
                if entry is None:
                    self._snapshot.pop(rel, None)
                else:
                    self._snapshot[rel] = entry

    def snapshot(self) -> dict[str, Any]:
        """The committed state as a JSON-able dict, to persist across restarts."""
        with self._lock:
            files = {rel: [e.size, e.mtime_ns, e.digest] for rel, e in sorted(self._snapshot.items())}
            return {"format": SNAPSHOT_FORMAT, "root": self.root, "files": files}

    def restore(self, snapshot: dict[str, Any] | None) -> bool:
        """Load a dict from :meth:`snapshot`. Returns False (and starts empty, so the next scan
        reports every file as added) when it is missing, of another format or another root."""
        with self._lock:
            self._snapshot = {}
            if not snapshot or snapshot.get("format") != SNAPSHOT_FORMAT:
                return False
            if snapshot.get("root") != self.root:
                return False
            try:
                restored = {
                    str(rel): _Entry(int(v[0]), int(v[1]), str(v[2]))
                    for rel, v in dict(snapshot["files"]).items()
                }
            except (KeyError, TypeError, ValueError, IndexError):
                log.warning("ignoring a malformed volume snapshot for %s", self.root)
                return False
            self._snapshot = restored
            return True

    @property
    def known_paths(self) -> list[str]:
        """Committed relative paths."""
        with self._lock:
            return sorted(self._snapshot)

    # ------------------------------------------------------------------ internals

    def _abs(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def _list(self, errors: list[str]) -> tuple[dict[str, os.stat_result] | None, list[str]]:
        """Stat every candidate file. Returns (None, []) when the root itself is unusable."""
        try:
            if not os.path.isdir(self.root):
                errors.append(f"YAML folder {self.root} does not exist or is not a folder")
                return None, []
        except OSError as exc:  # pragma: no cover - isdir swallows most errors
            errors.append(f"YAML folder {self.root} cannot be read: {exc}")
            return None, []
        listed: dict[str, os.stat_result] = {}
        unlisted: list[str] = []
        for rel, st, err in _walk(self.root, ""):
            if err is not None:
                if rel == "":
                    errors.append(f"YAML folder {self.root} cannot be listed: {err}")
                    return None, []
                errors.append(f"cannot list {self._abs(rel)}: {err}")
                unlisted.append(rel)
            elif st is not None:
                listed[rel] = st
        return listed, unlisted

    def _observe(self, rel: str) -> _Observation | None:
        """Read one file with the stat before and after; None if it does not exist."""
        path = self._abs(rel)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            try:
                st = os.stat(path)
            except OSError:
                return None
            return _Observation(
                st.st_size, st.st_mtime_ns, _UNREADABLE_DIGEST, None, ERROR_UNREADABLE, str(exc)
            )
        try:
            before = os.fstat(fd)
            if before.st_size > self.max_bytes:
                marker = f"!{ERROR_TOO_LARGE}:{before.st_size}"
                detail = f"{human_size(before.st_size)}, limit {human_size(self.max_bytes)}"
                return _Observation(before.st_size, before.st_mtime_ns, marker, None, ERROR_TOO_LARGE, detail)
            chunks: list[bytes] = []
            remaining = self.max_bytes + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            after = os.fstat(fd)
        except OSError as exc:
            return _Observation(0, 0, _UNREADABLE_DIGEST, None, ERROR_UNREADABLE, str(exc))
        finally:
            os.close(fd)
        data = b"".join(chunks)
        moving = (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(
            data
        ) != after.st_size
        if len(data) > self.max_bytes:  # grew past the cap while being read
            marker = f"!{ERROR_TOO_LARGE}:{len(data)}"
            return _Observation(
                after.st_size, after.st_mtime_ns, marker, None, ERROR_TOO_LARGE, "grew past the limit", True
            )
        return _Observation(
            after.st_size, after.st_mtime_ns, hashlib.sha256(data).hexdigest(), data, moving=moving
        )


def _key(obs: _Observation) -> tuple[int, int, str]:
    return (obs.size, obs.mtime_ns, obs.digest)


def _under_any(rel: str, dirs: list[str]) -> bool:
    return any(rel.startswith(d + "/") for d in dirs)


def _walk(root: str, prefix: str) -> Iterator[tuple[str, os.stat_result | None, OSError | None]]:
    """Yield (relpath, stat, None) per candidate file and (reldir, None, error) per folder that
    could not be listed. Symlinked folders are not followed (no loops); symlinked files are."""
    folder = os.path.join(root, *prefix.split("/")) if prefix else root
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError as exc:
        yield prefix, None, exc
        return
    for entry in entries:
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                if not is_ignored_dir(entry.name):
                    yield from _walk(root, rel)
                continue
            if not is_candidate_name(entry.name):
                continue
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            continue  # vanished while listing
        except OSError as exc:
            log.debug("cannot stat %s: %s", rel, exc)
            continue
        if stat.S_ISREG(st.st_mode):
            yield rel, st, None


def _check_root(root: str) -> None:
    if not os.path.exists(root):
        raise ConfigurationError(f"YAML folder {root} does not exist")
    if not os.path.isdir(root):
        raise ConfigurationError(f"YAML folder {root} is not a folder")


# ---------------------------------------------------------------------- watching

WatchMode = Literal["auto", "events", "poll"]
# What ``auto`` resolves to (:func:`choose_mode`).
ResolvedWatchMode = Literal["events", "poll"]

# Event types that mean content may have changed. Opened/closed-without-write are excluded: our
# own reads produce them, and waking on them would make the loop scan forever.
_RELEVANT_FILE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed", "attrib"})
_RELEVANT_DIR_EVENTS = frozenset({"created", "deleted", "moved"})


def _unescape_mount(text: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as \\ooo octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def filesystem_type(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The filesystem type of the mount holding ``path`` (longest matching mount point), or None
    when the mount table cannot be read (not Linux)."""
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = _unescape_mount(parts[1])
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and (best is None or len(point) > best[0]):
                    best = (len(point), parts[2])
    except OSError:
        return None
    return best[1] if best else None


def choose_mode(root: str, mode: WatchMode = "auto", mounts_file: str = "/proc/mounts") -> ResolvedWatchMode:
    """Resolve ``auto`` to ``events`` (local disk) or ``poll`` (FUSE / network / Databricks)."""
    if mode in ("events", "poll"):
        return mode
    if mode != "auto":
        raise ConfigurationError(f"unknown watch mode {mode!r}: use auto, events or poll")
    for candidate in {os.path.abspath(root), os.path.realpath(root)}:
        if any(candidate == p or candidate.startswith(p + "/") for p in POLL_PREFIXES):
            return "poll"
    fstype = (filesystem_type(root, mounts_file) or "").lower()
    if any(fstype.startswith(t) or t in fstype for t in _NO_EVENT_FSTYPES):
        return "poll"
    return "events"


class VolumeWatcher:
    """Sets ``wake`` when a YAML file under ``root`` changes, so the loop scans at once.

    Events only shorten the wait: the loop must keep its periodic scan in every mode, since
    events can be dropped (queue overflow) or stop (root deleted, see :attr:`running`).

    In ``poll`` mode it watches nothing: the loop's periodic scan is the detector (watchdog's
    PollingObserver would re-stat the whole tree on its own thread, duplicating that scan). If
    inotify cannot start in ``auto`` mode (watch limit), it falls back to ``poll`` with a warning.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        wake: threading.Event,
        *,
        mode: WatchMode = "auto",
        mounts_file: str = "/proc/mounts",
    ):
        self.root = os.path.abspath(os.fspath(root))
        self.wake = wake
        self.requested_mode: WatchMode = mode
        self.mode: ResolvedWatchMode = choose_mode(self.root, mode, mounts_file)
        self.events_seen = 0
        self._observer: Any = None
        self._lock = threading.Lock()
        self._started = False

    @property
    def running(self) -> bool:
        """True while events are being delivered (always False in poll mode). Turns False when
        the root folder is deleted (inotify drops the watch): the caller then stop()s and
        start()s again once the folder is back, scanning periodically meanwhile."""
        with self._lock:
            observer = self._observer
            if observer is None or not observer.is_alive():
                return False
            return all(emitter.is_alive() for emitter in observer.emitters)

    def start(self) -> None:
        """Start watching. Raises ConfigurationError if the root is missing. Idempotent."""
        with self._lock:
            if self._started:
                return
            _check_root(self.root)
            self._started = True
            if self.mode != "events":
                return
            try:
                self._observer = self._start_observer()
            except OSError as exc:
                if self.requested_mode == "events":
                    self._started = False
                    raise ConfigurationError(f"cannot watch {self.root} for file events: {exc}") from exc
                log.warning("file events unavailable for %s (%s); polling instead", self.root, exc)
                self.mode = "poll"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching. Safe to call more than once and from any thread."""
        with self._lock:
            observer, self._observer = self._observer, None
            self._started = False
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout)

    def __enter__(self) -> VolumeWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_observer(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if watcher._relevant(event):
                    watcher.events_seen += 1
                    watcher.wake.set()

        # watchdog re-adds a watch it already has when nested folders appear quickly (mkdir -p),
        # and warns; the duplicate is harmless, but under `-W error` the warning kills its thread.
        warnings.filterwarnings(
            "ignore", message=r"Callback with id .* already exists for watch", category=RuntimeWarning
        )
        observer = Observer()
        observer.daemon = True
        observer.schedule(_Handler(), self.root, recursive=True)
        observer.start()
        return observer

    def _relevant(self, event: Any) -> bool:
        if event.is_directory:
            if event.event_type not in _RELEVANT_DIR_EVENTS:
                return False
            paths = [event.src_path, event.dest_path]
            return any(p and not self._hidden(os.fsdecode(p), is_dir=True) for p in paths)
        if event.event_type not in _RELEVANT_FILE_EVENTS:
            return False
        for p in (event.src_path, event.dest_path):
            if not p:
                continue
            path = os.fsdecode(p)
            if is_candidate_name(os.path.basename(path)) and not self._hidden(path):
                return True  # a move from temp name to x.yaml counts through dest_path
        return False

    def _hidden(self, path: str, is_dir: bool = False) -> bool:
        """True if a folder between the root and ``path`` (or ``path`` itself, for a folder) is
        hidden, so the scanner ignores everything below it."""
        rel = os.path.relpath(path, self.root)
        if rel.startswith(".."):
            return False
        parts = rel.split(os.sep) if is_dir else rel.split(os.sep)[:-1]
        return any(is_ignored_dir(p) for p in parts if p not in ("", "."))

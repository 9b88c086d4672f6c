"""The one YAML file reader: which names count as metadata files, how a folder is listed, and how
a file is read (size cap before reading, OSError as an issue). The CLI, the manager and the
volume scanner all use it, so they agree on what a metadata file is.

Symbolic links: a linked *file* is read like any file; a linked *folder* is not entered (a link
loop or a link out of the volume must not widen what a sync deletes).
"""

from __future__ import annotations

import os

from lakeflow_job_meta.errors import ConfigurationError, MetadataIssue
from lakeflow_job_meta.metadata.limits import MAX_FILE_BYTES, too_large_text

YAML_SUFFIXES = (".yaml", ".yml")


def is_candidate_name(name: str) -> bool:
    """True for a YAML file name that is not hidden and not an editor temp/lock/backup file."""
    if name.startswith((".", "~", "#")) or name.endswith(("~", "#", ".swp", ".swx", ".tmp")):
        return False
    return name.lower().endswith(YAML_SUFFIXES)


def is_ignored_dir(name: str) -> bool:
    return name.startswith(".")


def list_yaml_files(folder: str) -> list[str]:
    """Every metadata file under ``folder`` (subfolders included; hidden folders and hidden or
    editor temp files skipped), sorted. A folder that is missing or cannot be listed, in whole or
    in part, raises ConfigurationError: a sync must never read "cannot see the files" as "the
    files are gone"."""
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ConfigurationError(f"YAML folder {folder} {what}")

    def fail(error: OSError) -> None:
        raise ConfigurationError(f"cannot list {error.filename or folder}: {error.strerror or error}")

    found = []
    for current, dirs, files in os.walk(folder, onerror=fail):
        dirs[:] = sorted(d for d in dirs if not is_ignored_dir(d))
        for name in files:
            path = os.path.join(current, name)
            if is_candidate_name(name) and os.path.isfile(path):
                found.append(path)
    return sorted(found)


def read_yaml_file(path: str, max_bytes: int = MAX_FILE_BYTES) -> bytes | MetadataIssue:
    """The file's bytes, or the issue that stops it: a folder, over the size cap (checked before
    reading, so a huge file is never loaded), or unreadable."""
    if os.path.isdir(path):
        return MetadataIssue(f"{path}:1", "", "cannot read file: it is a folder", file=path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                return too_large(path, size, max_bytes)
            return handle.read(max_bytes + 1)  # +1 so a file growing while read still trips the cap
    except OSError as exc:
        return MetadataIssue(f"{path}:1", "", f"cannot read file: {exc.strerror or exc}", file=path)


def too_large(path: str, size: int, max_bytes: int) -> MetadataIssue:
    return MetadataIssue(f"{path}:1", "", too_large_text(size, max_bytes), file=path)

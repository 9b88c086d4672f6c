"""Content hashes of the bundle files as written, so a plan does not re-render unchanged modules.

Rendering a job file is pure-Python YAML emitting (about 1.5 ms a job); re-rendering 2,940 jobs
to find that none changed took most of a no-change plan. At write time, apply records per module
the digest of everything the rendering depends on (the compiled job and the renderer's own code)
and the SHA-256 of each file it wrote. A later plan or apply renders a module again only when its
digest changed, or when a file on disk no longer has the recorded hash (a hand edit, a deleted
file, another tool): the answer is the same as re-rendering everything, only cheaper.

The manifest is one row of the tool's state table (never a file in the bundle, which is deployed
as it is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from lakeflow_job_meta.adapters import bundle as bundle_adapter
from lakeflow_job_meta.engine.targets.base import DesiredJobs
from lakeflow_job_meta.storage.state_store import StateStore, bundle_manifest_key

Manifest = dict[str, dict[str, Any]]  # bundle stem -> {"input": digest, "files": {relpath: sha256}}


@cache
def _renderer_digest() -> str:
    """Any change to the renderer's code makes every recorded digest stale."""
    return hashlib.sha256(Path(bundle_adapter.__file__).read_bytes()).hexdigest()


def input_digest(job_digest: str) -> str:
    """Digest of everything a job's bundle files are rendered from: the compiled job (by its
    :func:`~lakeflow_job_meta.engine.targets.base.job_digest`) and the renderer's code."""
    return hashlib.sha256(f"{_renderer_digest()}:{job_digest}".encode()).hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _matches_on_disk(root: Path, files: Mapping[str, str]) -> bool:
    for relpath, digest in files.items():
        try:
            if hashlib.sha256((root / relpath).read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


def _key(directory: str) -> str:
    return bundle_manifest_key(str(Path(directory).resolve()))


def load_manifest(state: StateStore | None, directory: str) -> Manifest:
    """The recorded hashes (a :class:`StateStore` document); empty when none or unreadable, so
    everything is rendered."""
    if state is None:
        return {}
    try:
        value = state.get(_key(directory))
    except Exception:  # no state table yet, or unreadable: render everything
        return {}
    return value if isinstance(value, dict) else {}


def save_manifest(state: StateStore | None, directory: str, manifest: Manifest) -> None:
    if state is not None:
        state.put(_key(directory), manifest)


def render_changed(
    desired: DesiredJobs, bundle_name: str, directory: str, manifest: Manifest, *, owner: str | None = None
) -> dict[str, str | None]:
    """Every bundle file, relative path -> text, or None for the files of a module whose recorded
    digest and on-disk hashes both still match (known unchanged: neither read nor rendered, so a
    cached desired state never loads its jobs). ``owner``: recorded in ``databricks.yml``."""
    root = Path(directory)
    files: dict[str, str | None] = dict(bundle_adapter.render_bundle([], bundle_name, owner=owner))
    for name in sorted(desired.compiled):
        entry = manifest.get(bundle_adapter.bundle_stem(name))
        if (
            entry is not None
            and entry.get("input") == input_digest(desired.summary(name).digest)
            and isinstance(entry.get("files"), dict)
            and _matches_on_disk(root, entry["files"])
        ):
            files.update(dict.fromkeys(entry["files"]))
        else:
            job = desired.compiled[name]
            # The keys of the modules it runs (a renamed one keeps its first name's key). A
            # referrer names a module by its current name, so renaming that module changes the
            # referrer's metadata too, and its cached files are never left with a stale key.
            keys = {
                target: bundle_adapter.job_resource_key(desired.compiled[target])
                for target in set(job.run_job_refs.values())
                if target in desired.compiled
            }
            files.update(bundle_adapter.render_job_files(job, keys))
    return dict(sorted(files.items()))


def updated_manifest(
    manifest: Manifest, desired: DesiredJobs, files: Mapping[str, str | None], keep: Iterable[str]
) -> Manifest:
    """The manifest after writing ``files``: rendered modules get fresh entries, unchanged ones
    keep theirs, modules gone from the bundle are dropped (``keep``: modules with errors, whose
    files stay on disk as they were)."""
    kept_stems = {bundle_adapter.bundle_stem(name) for name in keep}
    result: Manifest = {stem: entry for stem, entry in manifest.items() if stem in kept_stems}
    by_stem: dict[str, dict[str, str]] = {}
    for relpath, text in files.items():
        stem = bundle_adapter.module_of_bundle_path(relpath)
        if stem is not None and text is not None:
            by_stem.setdefault(stem, {})[relpath] = _sha256(text)
    for name in desired.compiled:
        stem = bundle_adapter.bundle_stem(name)
        if stem in by_stem:
            result[stem] = {"input": input_digest(desired.summary(name).digest), "files": by_stem[stem]}
        elif stem in manifest:
            result[stem] = manifest[stem]
    return result

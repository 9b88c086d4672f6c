"""``BundleTarget``: the jobs as a Databricks Asset Bundle on disk (``bundle:DIR``).

The actual state is the folder itself, so plan compares rendered files with the files there and
apply writes only the files whose bytes differ: an unchanged module is not re-written. The bundle
is always rendered whole. A module that left the metadata follows the prune policy as in a
workspace: ``keep`` leaves its files untouched, ``pause`` rewrites its job file with every
schedule, trigger and continuous block paused (a job with nothing to pause is orphaned and left
as it is), and only ``delete`` removes its files (``databricks bundle deploy`` then deletes the
job).

A folder belongs to one control table: the ``ljm_table`` identity its ``databricks.yml`` records,
or for a folder written before that record existed, the one its managed job files' ownership tags
name. Another control table's plan or apply is refused before anything is read or written; an
empty folder, or one without managed files, is free to claim.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lakeflow_job_meta.adapters.bundle import (
    JOB_FILE_SUFFIX,
    RESOURCES_DIR,
    SQL_DIR,
    bundle_stem,
    is_managed_file,
    job_of_file,
    job_of_text,
    module_of_bundle_path,
    paused_job_file,
    recorded_owner,
    write_bundle,
)
from lakeflow_job_meta.engine.results import ModuleResult, held_result
from lakeflow_job_meta.engine.targets.base import ApplyRun, DesiredJobs, issue_text
from lakeflow_job_meta.engine.targets.bundle_manifest import (
    Manifest,
    input_digest,
    load_manifest,
    render_changed,
    save_manifest,
    updated_manifest,
)
from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.tags import REMOVED_TAG, TABLE_TAG
from lakeflow_job_meta.planning.acl import RunIdentity
from lakeflow_job_meta.planning.blast_radius import MassChangeGuard
from lakeflow_job_meta.planning.normalize import diff_settings
from lakeflow_job_meta.planning.ownership import REMOVED_TAG_VALUE, is_managed_by_tool, label_value
from lakeflow_job_meta.planning.plan import Plan, PlannedChange
from lakeflow_job_meta.storage.state_store import StateStore
from lakeflow_job_meta.vocabulary import Outcome, PlanAction, PrunePolicy, TargetKind


def _stem_names(*groups: Iterable[str]) -> dict[str, str]:
    """Bundle file stem -> module name, for every module the metadata knows. A stem differs from
    its module name when the name is not path-safe (``"Sales Daily"`` -> ``Sales_Daily_<hash>``)."""
    return {bundle_stem(name): name for group in groups for name in group}


def _name_of_job_file(path: Path, stem: str, name_prefix: str) -> str:
    """The module name of a job file we wrote for a module the metadata no longer knows: the job's
    ``name`` without the environment prefix, trusted only if it maps back to the file's stem."""
    job = job_of_file(path) if path.name.endswith(JOB_FILE_SUFFIX) else None
    if job is None or "name" not in job:  # a hand-edited or foreign file: fall back to the stem
        return stem
    name = str(job["name"])
    if name_prefix and name.startswith(name_prefix):
        name = name[len(name_prefix) :]
    return name if bundle_stem(name) == stem else stem


def folder_owners(directory: str) -> set[str]:
    """The ``ljm_table`` identities the folder belongs to: the one ``databricks.yml`` records, else
    (a folder written before the record) those in the ownership tags of its managed job files.
    Empty: no managed file names one, so the folder is free."""
    recorded = recorded_owner(directory)
    if recorded is not None:
        return {recorded}
    owners: set[str] = set()
    for path in sorted((Path(directory) / RESOURCES_DIR).glob(f"*{JOB_FILE_SUFFIX}")):
        job = job_of_file(path) if is_managed_file(path) else None
        tags = job.get("tags") if job is not None else None
        if isinstance(tags, dict) and is_managed_by_tool(tags) and tags.get(TABLE_TAG):
            owners.add(str(tags[TABLE_TAG]))
    return owners


def _module_actions(
    directory: str,
    files: Mapping[str, str | None],
    names: Mapping[str, str],
    keep: Collection[str],
    name_prefix: str = "",
) -> dict[str, PlanAction]:
    """create/update/noop per module (by name) from rendered files; delete for modules whose
    managed files remain on disk but are no longer rendered. ``keep`` holds the module names whose
    files stay as they are (modules with errors); files without our marker are never ours."""
    root = Path(directory)
    keep_stems = {bundle_stem(name) for name in keep}
    actions: dict[str, PlanAction] = {}
    rendered: set[str] = set()
    for relpath, text in files.items():
        stem = module_of_bundle_path(relpath)
        if stem is None:
            continue
        rendered.add(stem)
        module = names.get(stem, stem)
        path = root / relpath
        if text is None:  # recorded as written and still on disk as it was
            action = PlanAction.NOOP
        elif not path.exists():
            action = PlanAction.CREATE if relpath.endswith(JOB_FILE_SUFFIX) else PlanAction.UPDATE
        elif path.read_text(encoding="utf-8") != text:
            action = PlanAction.UPDATE
        else:
            action = PlanAction.NOOP
        previous = actions.get(module, PlanAction.NOOP)
        if previous == PlanAction.NOOP or (previous == PlanAction.UPDATE and action == PlanAction.CREATE):
            actions[module] = action
    resources = root / "resources"
    if resources.is_dir():
        for path in sorted(resources.rglob("*")):
            relpath = path.relative_to(root).as_posix()
            stem = module_of_bundle_path(relpath)
            if (
                stem is None
                or stem in rendered
                or stem in keep_stems
                or not path.is_file()
                or not is_managed_file(path)
            ):
                continue
            job_file = root / RESOURCES_DIR / f"{stem}{JOB_FILE_SUFFIX}"
            module = names.get(stem) or _name_of_job_file(job_file, stem, name_prefix)
            actions[module] = PlanAction.DELETE
    return actions


def _prune_removed(
    directory: str, actions: dict[str, PlanAction], prune: PrunePolicy
) -> tuple[dict[str, PlanAction], dict[str, str], set[str]]:
    """Apply the prune policy to the modules whose files remain but are no longer rendered
    (``delete`` in ``actions``). Returns the actions, the files to write (paused job files) and
    the modules whose files stay."""
    root = Path(directory)
    result = dict(actions)
    files: dict[str, str] = {}
    keep: set[str] = set()
    for module, action in actions.items():
        if action != PlanAction.DELETE or prune == PrunePolicy.DELETE:
            continue
        keep.add(module)
        relpath = f"{RESOURCES_DIR}/{bundle_stem(module)}{JOB_FILE_SUFFIX}"
        path = root / relpath
        if prune == PrunePolicy.KEEP or not path.is_file():
            result[module] = PlanAction.NOOP
            continue
        text = path.read_text(encoding="utf-8")
        paused = paused_job_file(text, (REMOVED_TAG, REMOVED_TAG_VALUE))
        if paused is None:
            result[module] = PlanAction.ORPHANED
        elif paused == text:
            result[module] = PlanAction.NOOP
        else:
            result[module] = PlanAction.PAUSE
            files[relpath] = paused
    return result, files, keep


def _take_over_renames(desired: DesiredJobs, actions: dict[str, PlanAction]) -> dict[str, str]:
    """A module whose job file is new and that lists, under ``renamed_from``, a name whose files
    are still in the folder but no longer rendered takes that job over: its action becomes an
    update (the job file keeps the old resource key, see ``render_job_files``) and the old name
    leaves the actions, so its files go as stale files rather than being pruned (a rename never
    pauses or deletes a job, nor counts against the blast-radius limit). Returns new -> old."""
    renames: dict[str, str] = {}
    gone = {module for module, action in actions.items() if action == PlanAction.DELETE}
    if not gone:
        return renames
    for module in sorted(m for m, a in actions.items() if a == PlanAction.CREATE and m in desired.compiled):
        for old in desired.compiled[module].renamed_from:
            if old in gone and old not in renames.values():
                renames[module] = old
                actions[module] = PlanAction.UPDATE
                del actions[old]
                break
    return renames


_BUNDLE_REASONS = {
    PlanAction.CREATE: "new module",
    PlanAction.UPDATE: "metadata changed",
    PlanAction.DELETE: "module removed (prune=delete)",
    PlanAction.PAUSE: "module removed (prune=pause)",
}


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


def _rendered_as_recorded(manifest: Manifest, desired: DesiredJobs, module: str) -> bool:
    """Whether the module's compiled job is the one its files were last written from."""
    entry = manifest.get(bundle_stem(module)) or {}
    return entry.get("input") == input_digest(desired.summary(module).digest)


def _describe_files(
    change: PlannedChange, root: Path, files: Mapping[str, str | None], manifest: Manifest
) -> None:
    """Fill in what a workspace plan says of a job, from the folder: the field-level diff of the
    job file on disk against its new rendering, the SHA-256 of the job file before and after
    (the bundle's ``old_hash``/``new_hash``), and the SQL files to write or delete. An update
    that only differs in a file's bytes (a hand edit) shows those files."""
    stem = bundle_stem(change.module)
    job_path = f"{RESOURCES_DIR}/{stem}{JOB_FILE_SUFFIX}"
    on_disk = root / job_path
    recorded = (manifest.get(stem) or {}).get("files") or {}
    text = files.get(job_path)
    if job_path in files and text is None:  # known unchanged: the recorded hash is the file's
        change.old_hash = change.new_hash = recorded.get(job_path)
        return
    if change.action == PlanAction.NOOP:
        if text is not None:  # rendered, and equal to the file on disk
            change.old_hash = change.new_hash = _sha256(text)
        return
    if on_disk.is_file():
        change.old_hash = _sha256(on_disk.read_bytes())
    if text is not None:
        change.new_hash = _sha256(text)
        old_job = job_of_file(on_disk) if on_disk.is_file() else None
        new_job = job_of_text(text)
        if old_job is not None and new_job is not None and change.action != PlanAction.CREATE:
            change.diff = diff_settings(new_job, old_job, server_defaults=False)
    for relpath, body in sorted(files.items()):
        if relpath == job_path or body is None or module_of_bundle_path(relpath) != stem:
            continue
        path = root / relpath
        if not path.is_file() or path.read_text(encoding="utf-8") != body:
            change.file_writes[relpath] = body
    if change.action in (PlanAction.DELETE, PlanAction.UPDATE):
        sql_dir = root / SQL_DIR / stem
        stale = [job_path] if change.action == PlanAction.DELETE and on_disk.is_file() else []
        if sql_dir.is_dir():
            stale += [p.relative_to(root).as_posix() for p in sorted(sql_dir.glob("*.sql"))]
        change.file_deletes = [p for p in stale if p not in files and is_managed_file(root / p)]


class BundleTarget:
    """Renders every module's job into ``directory``; never contacts a workspace."""

    kind = TargetKind.BUNDLE

    def __init__(
        self,
        directory: str,
        *,
        control_table_id: str,
        control_table: str | None = None,
        prune: PrunePolicy = PrunePolicy.PAUSE,
        state: StateStore | None = None,
    ):
        self.directory = directory
        self.bundle_name = f"lakeflow_job_meta_{control_table_id}"
        # What the folder records as its owner: the ljm_table tag value of this table's jobs.
        self.owner = label_value(control_table_id)
        self.control_table = control_table or control_table_id
        self._prune = PrunePolicy(prune)
        # Where the hashes of the files as written are kept (None: render every module, always).
        self.state = state

    @property
    def prune(self) -> PrunePolicy:
        return self._prune

    def managed_jobs(self, desired: DesiredJobs) -> int:
        """The job files we wrote that are in the folder now."""
        resources = Path(self.directory) / RESOURCES_DIR
        if not resources.is_dir():
            return 0
        return sum(1 for path in resources.glob(f"*{JOB_FILE_SUFFIX}") if is_managed_file(path))

    @property
    def key(self) -> str:
        return f"bundle:{os.path.abspath(self.directory)}"

    def describe(self) -> str:
        return f"target: bundle folder {self.directory} (local; no workspace is contacted)"

    def scope(self, modules: set[str] | None) -> set[str] | None:
        return None  # the bundle is one document: always rendered whole

    def owner_identity(self) -> RunIdentity | None:
        return None  # `databricks bundle deploy` makes its own identity the owner

    def prefetch(self, scope: set[str] | None, check_drift: bool | None) -> Future[Any] | None:
        """Nothing to start: the bundle folder is read in a moment, when planning."""
        return None

    def check_owner(self) -> None:
        """Refuse a folder that belongs to another control table (ConfigurationError, exit 2)."""
        owners = folder_owners(self.directory)
        if owners and owners != {self.owner}:
            raise ConfigurationError(
                f"bundle folder {self.directory} belongs to control table {', '.join(sorted(owners))}, "
                f"not to {self.control_table} ({self.owner}): use another folder for this control table"
            )

    def _actions(
        self,
        desired: DesiredJobs,
        manifest: Manifest,
        mass_change: MassChangeGuard | None = None,
        only: set[str] | None = None,
    ) -> tuple[dict[str, str | None], dict[str, PlanAction], set[str], list[PlannedChange], dict[str, str]]:
        """Every file to write (None: known unchanged, not rendered), the action per module, the
        modules whose files stay as they are (errors, and removed modules unless the policy
        deletes), the held pauses and deletes, and the renames (new module -> old name)."""
        files = render_changed(desired, self.bundle_name, self.directory, manifest, owner=self.owner)
        names = _stem_names(desired.known, desired.compiled, desired.issues)
        keep = set(desired.issues)  # a module with errors keeps its last good files
        actions = _module_actions(self.directory, files, names, keep, desired.name_prefix)
        renames = _take_over_renames(desired, actions)
        actions, paused_files, kept = _prune_removed(self.directory, actions, self.prune)
        held: list[PlannedChange] = []
        if mass_change is not None:
            # Only the modules this run may touch (``--module``) count, as on a workspace.
            changes = [PlannedChange(m, a) for m, a in sorted(actions.items()) if only is None or m in only]
            _, held = mass_change.screen(changes)
        for change in held:  # held back: the files stay as they are
            kept.add(change.module)
            paused_files.pop(f"{RESOURCES_DIR}/{bundle_stem(change.module)}{JOB_FILE_SUFFIX}", None)
        return {**files, **paused_files}, actions, keep | kept, held, renames

    def plan(self, desired: DesiredJobs, *, scope: set[str] | None, check_drift: bool | None) -> Plan:
        self.check_owner()
        manifest = load_manifest(self.state, self.directory)
        files, actions, _, _, renames = self._actions(desired, manifest)
        compiled = desired.compiled
        changes = []
        for m, a in sorted(actions.items()):
            change = self._change(desired, m, a)
            change.reason = _BUNDLE_REASONS.get(a, "")
            _describe_files(change, Path(self.directory), files, manifest)
            if m in renames:
                change.renamed_from = renames[m]
                change.reason = f"renamed from {renames[m]}: same resource key, so the same job"
            elif a == PlanAction.UPDATE and m in compiled and _rendered_as_recorded(manifest, desired, m):
                # The metadata is what was last written: the file itself was edited.
                change.drift = True
                change.reason = "the job file was edited outside the metadata"
            changes.append(change)
        changes += [
            PlannedChange(module=m, action=PlanAction.ERROR, reason=issue_text(desired.issues, m))
            for m in sorted(desired.issues)
        ]
        if scope is not None:  # the bundle is planned whole; --module shows only its modules
            changes = [change for change in changes if change.module in scope]
        return Plan(changes=changes)

    def _change(self, desired: DesiredJobs, module: str, action: PlanAction) -> PlannedChange:
        """One module's planned change, with the hashes ``apply --plan`` compares: the compiled
        job's digest (the metadata) and the digest of its job file as it is on disk (the live
        side of a bundle)."""
        compiled = desired.compiled
        job_file = Path(self.directory) / RESOURCES_DIR / f"{bundle_stem(module)}{JOB_FILE_SUFFIX}"
        on_disk = job_file.read_bytes() if job_file.is_file() else None
        return PlannedChange(
            module=module,
            action=action,
            job_name=desired.summary(module).job_name if module in compiled else None,
            # The text plan lists a new module's tasks; the JSON keeps the default priority.
            shown=compiled.get(module) if action == PlanAction.CREATE else None,
            desired_digest=desired.summary(module).digest if module in compiled else None,
            live_hash=hashlib.sha256(on_disk).hexdigest() if on_disk is not None else None,
            # The job file as it is: what the plan shows as the old hash, too.
            old_hash=hashlib.sha256(on_disk).hexdigest() if on_disk is not None else None,
        )

    def _refused(
        self,
        desired: DesiredJobs,
        actions: Mapping[str, PlanAction],
        held: list[PlannedChange],
        run: ApplyRun,
    ) -> dict[str, ModuleResult | None]:
        """Modules whose files this apply leaves alone: outside ``run.only`` (no result) or
        refused by the run's guard (its result)."""
        held_modules = {change.module for change in held}
        refused: dict[str, ModuleResult | None] = {}
        for module, action in sorted(actions.items()):
            if module in held_modules:
                continue
            if run.only is not None and module not in run.only:
                refused[module] = None
                continue
            if action == PlanAction.NOOP:
                continue
            result = run.guard(self._change(desired, module, action))
            if result is not None:
                refused[module] = result
        return refused

    def apply(self, desired: DesiredJobs, run: ApplyRun, *, scope: set[str] | None) -> list[ModuleResult]:
        self.check_owner()
        os.makedirs(self.directory, exist_ok=True)
        manifest = load_manifest(self.state, self.directory)
        files, actions, keep, held, renames = self._actions(desired, manifest, run.mass_change, run.only)
        refused = self._refused(desired, actions, held, run)
        if refused:
            # Left as they are: modules outside --module, and changes the guard refused (a
            # held sync: manual change, a plan file's module that moved, a stop).
            # A rename left for later keeps its old files too (their resource key is the job's).
            keep = keep | set(refused) | {renames[m] for m in refused if m in renames}
            stems = {bundle_stem(m) for m in refused}
            files = {p: text for p, text in files.items() if module_of_bundle_path(p) not in stems}
            actions = {m: a for m, a in actions.items() if m not in refused}
        written = write_bundle(self.directory, files, keep_modules=keep)
        recorded = updated_manifest(manifest, desired, files, keep=keep)
        if recorded != manifest:
            save_manifest(self.state, self.directory, recorded)
        held_modules = {change.module for change in held}
        writes_by_stem: dict[str, int] = {}
        for path in [*written.written, *written.deleted]:
            stem = module_of_bundle_path(path)
            if stem is not None:
                writes_by_stem[stem] = writes_by_stem.get(stem, 0) + 1
        results = [
            ModuleResult(
                module=module,
                action=PlanAction.RENAME if module in renames else action,
                job_name=desired.summary(module).job_name if module in desired.compiled else None,
                other_writes=writes_by_stem.get(bundle_stem(module), 0)
                + (writes_by_stem.get(bundle_stem(renames[module]), 0) if module in renames else 0),
                renamed_from=renames.get(module),
            )
            for module, action in sorted(actions.items())
            if module not in held_modules
        ]
        results += [held_result(change) for change in held]
        results += [result for result in refused.values() if result is not None]
        results += [
            ModuleResult(
                module=m, action=PlanAction.ERROR, outcome=Outcome.ERROR, error=issue_text(desired.issues, m)
            )
            for m in sorted(desired.issues)
            if run.only is None or m in run.only
        ]
        run.progress.start(len(results))  # one write of the whole bundle: done at once
        for result in results:
            run.progress.advance(result)
        return results

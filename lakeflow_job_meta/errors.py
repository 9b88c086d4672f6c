"""The package's exception hierarchy.

Errors about *metadata* are data (:class:`MetadataIssue`) collected per file or module, so one
bad module never aborts a run. Exceptions are raised only where the caller cannot go on:

- :class:`LakeflowJobMetaError` - base of everything this package raises on purpose.
  - :class:`MetadataValidationError` - one or more :class:`MetadataIssue`; nothing was written.
  - :class:`ConfigurationError` - bad arguments: an invalid table name, path, target or variable.
  - :class:`StorageError` - a Delta table could not be read or written.
    - :class:`TableNotFoundError` - a table a read-only command needs does not exist.
  - :class:`JobsApiError` - a Jobs API call failed after the SDK's own retries.
    - :class:`ReplyLostError` - no reply came back (timeout, reset connection): the outcome is
      unknown, the call may have taken effect.
    - :class:`NotOwnedError` - a job exists but does not carry our ownership tags.
      - :class:`NameConflictError` - a job a module would create already has that name.
  - :class:`LeaseHeldError` - another process holds the writer lease (``--no-wait``).
  - :class:`MassChangeHeldError` - a sync would remove every row of a volume that lists no files.
  - :class:`MissingDependencyError` - an optional extra (``local``, ``spark``) is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class MetadataIssue:
    """One actionable problem in the metadata.

    ``location`` is ``path/to/file.yaml:LINE`` for YAML, or ``table <name> source_id=<id>`` for a
    row that came by SQL. ``field`` is a path such as ``modules[0].sources[2].execution_order``.
    """

    location: str
    field: str
    message: str
    # The module the issue belongs to, when known, so one bad module is skipped and not others.
    module: str | None = field(default=None, compare=False)
    # The YAML file the issue is in (None for a row INSERTed by SQL), and other files it names
    # (the first copy of a duplicate): a load rejects exactly these files, never by matching text.
    file: str | None = field(default=None, compare=False)
    related_files: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        if self.field:
            return f"{self.location}: {self.field}: {self.message}"
        return f"{self.location}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"location": self.location, "field": self.field, "message": self.message}


def reading_order(issue: MetadataIssue) -> tuple[str, int, str, str]:
    """By file, then line as a number (``a.yaml:9`` before ``a.yaml:10``), then field."""
    place, colon, line = issue.location.rpartition(":")
    if colon and line.isdigit():
        return place, int(line), issue.field, issue.message
    return issue.location, 0, issue.field, issue.message


class LakeflowJobMetaError(Exception):
    """Base class of every error this package raises on purpose."""


class MetadataValidationError(LakeflowJobMetaError):
    """Metadata failed validation; carries every issue found, not only the first."""

    def __init__(self, issues: list[MetadataIssue]):
        self.issues = sorted(set(issues), key=reading_order)
        super().__init__(self._summary())

    def _summary(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        lines = [f"{len(self.issues)} metadata errors:"]
        lines += [f"  {issue}" for issue in self.issues]
        return "\n".join(lines)


class ConfigurationError(LakeflowJobMetaError):
    """Invalid arguments or configuration (table names, paths, targets, variables)."""


class StorageError(LakeflowJobMetaError):
    """A Delta table could not be read or written."""


class TableNotFoundError(StorageError, ConfigurationError):
    """A table that a read-only command needs does not exist: a configuration error (exit 2, a
    wrong ``--control-table`` or a table never created), whose fix is ``init``."""

    def __init__(self, table: str):
        self.table = table
        super().__init__(
            f"table {table} does not exist (create it with `lakeflow-job-meta init`, or `load` YAML into it)"
        )


class JobsApiError(LakeflowJobMetaError):
    """A Jobs API call failed after the SDK's own retries (and ours, for an idempotent call)."""

    # True when sending the same request again cannot help (a 4xx other than 429): the monitor
    # then waits for the module's metadata to change instead of retrying.
    permanent: bool = False
    # The SDK error class that caused it (``PermissionDenied`` ...), when it came from the SDK.
    sdk_error: str = ""


class ReplyLostError(JobsApiError):
    """A request was sent but no reply came back: a read timeout, a reset or refused connection,
    or the SDK's own retries of those running out (``TimeoutError``). The call may or may not
    have taken effect, so a write is never blindly sent again: after a lost ``jobs/create`` the
    caller looks the job up by name and ownership tags and adopts it. Transient (the monitor
    retries it with backoff)."""

    permanent = False


class NotOwnedError(JobsApiError):
    """The job exists but lacks our ownership tags, so we never modify it."""

    permanent = True


class NameConflictError(NotOwnedError):
    """A job without this control table's ownership tags already has the module's job name."""


class LeaseHeldError(LakeflowJobMetaError):
    """Another process holds the writer lease."""


class MassChangeHeldError(LakeflowJobMetaError):
    """A change too large to be an accident was held back (``--allow-mass-change`` lets it)."""


class MissingDependencyError(LakeflowJobMetaError):
    """An optional extra is not installed."""

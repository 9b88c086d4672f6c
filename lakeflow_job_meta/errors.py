"""The package's exception hierarchy.

Errors about *metadata* are data (:class:`MetadataIssue`) collected per file or module, so one
bad module never aborts a run. Exceptions are raised only where the caller cannot go on:

- :class:`LakeflowJobMetaError` - base of everything this package raises on purpose.
  - :class:`MetadataValidationError` - one or more :class:`MetadataIssue`; nothing was written.
  - :class:`ConfigurationError` - bad arguments: an invalid table name, path, target or variable.
  - :class:`StorageError` - a Delta table could not be read or written.
    - :class:`TableNotFoundError` - a table a read-only command needs does not exist.
  - :class:`JobsApiError` - a Jobs, Permissions or Workspace API call failed after the SDK's own
    retries. Decided once, by type, where the gateway maps SDK and transport failures
    (``adapters/databricks_jobs.py``); retries and the monitor's backoff follow the type:
    - :class:`TransientApiError` - sending the same request later may succeed (a 5xx).
      - :class:`RateLimitedError` - the service asked to slow down (429, or the job-creation
        limit's 400 ``INVALID_STATE``), with its wait when it named one.
      - :class:`ReplyLostError` - no reply came back (timeout, reset connection): the outcome is
        unknown, the call may have taken effect.
    - :class:`PermanentApiError` - the same request fails the same way until something changes
      (a 4xx other than 429, settings the SDK cannot carry, an owner change refused).
      - :class:`NotOwnedError` - a job exists but does not carry our ownership tags.
        - :class:`NameConflictError` - a job a module would create already has that name.
  - :class:`LeaseHeldError` - another process holds the writer lease (``--no-wait``).
  - :class:`MassChangeHeldError` - a sync would remove every row of a volume that lists no files.
  - :class:`PlanMovedError` - ``apply --plan``: the metadata or a live job changed since the plan.
  - :class:`MissingDependencyError` - an optional extra (``local``, ``spark``) is not installed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


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
    module: str | None = dataclasses.field(default=None, compare=False)
    # The YAML file the issue is in (None for a row INSERTed by SQL), and other files it names
    # (the first copy of a duplicate): a load rejects exactly these files, never by matching text.
    file: str | None = dataclasses.field(default=None, compare=False)
    related_files: tuple[str, ...] = dataclasses.field(default=(), compare=False)

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
    """A Jobs API call failed after the SDK's own retries (and ours, for an idempotent call).
    Raised as one of the subclasses below; the base is what callers catch."""

    # Whether our retry policy may send the same idempotent request again at once.
    retry_here: bool = False

    def __init__(self, message: str, *, sdk_error: str = ""):
        super().__init__(message)
        # The SDK error class behind it (``PermissionDenied`` ...), when it came from the SDK.
        self.sdk_error = sdk_error

    @property
    def permanent(self) -> bool:
        """True when sending the same request again cannot help: the monitor then waits for the
        module's metadata to change instead of retrying."""
        return isinstance(self, PermanentApiError)


class TransientApiError(JobsApiError):
    """The service failed in a way a later attempt may not (a 500, 502 or 504 the SDK does not
    retry itself): idempotent calls are retried here, the monitor backs off and tries again."""

    retry_here = True


class RateLimitedError(TransientApiError):
    """The service asked the client to slow down: a 429 still failing after the SDK's own
    retries, or the job-creation limit (a 400 ``INVALID_STATE``, which the SDK does not retry).
    ``retry_after`` is the wait the service named, in seconds, when it named one; the whole
    client pauses, not just this call."""

    def __init__(self, message: str, *, sdk_error: str = "", retry_after: float | None = None):
        super().__init__(message, sdk_error=sdk_error)
        self.retry_after = retry_after


class ReplyLostError(TransientApiError):
    """A request was sent but no reply came back: a read timeout, a reset or refused connection,
    or the SDK's own retries of those running out (``TimeoutError``). The call may or may not
    have taken effect, so a write is never blindly sent again: after a lost ``jobs/create`` the
    caller looks the job up by name and ownership tags and adopts it. Not retried here (the SDK
    already retried until its deadline); the monitor retries it with backoff."""

    retry_here = False


class PermanentApiError(JobsApiError):
    """The same request will fail the same way until something changes (a 4xx other than 429
    and the job rate limit): not retried, and the monitor leaves the module alone until its
    metadata changes."""


class NotOwnedError(PermanentApiError):
    """The job exists but lacks our ownership tags, so we never modify it."""


class NameConflictError(NotOwnedError):
    """A job without this control table's ownership tags already has the module's job name."""


class LeaseHeldError(LakeflowJobMetaError):
    """Another process holds the writer lease."""


class MassChangeHeldError(LakeflowJobMetaError):
    """A change too large to be an accident was held back (``--allow-mass-change`` lets it)."""


class MissingDependencyError(LakeflowJobMetaError):
    """An optional extra is not installed."""


class PlanMovedError(LakeflowJobMetaError):
    """``apply --plan FILE`` refused: what the plan was made from moved since (exit 1)."""

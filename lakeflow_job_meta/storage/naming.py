"""Parse and validate control-table references; derive the tool's sibling tables.

A reference is either a filesystem location (local Delta through delta-rs) or a three-part Unity
Catalog name (Spark). Names end up in SQL text, so the rule for them is deliberately narrow: each
part may hold only ``[A-Za-z0-9_-]`` and is always backquoted when rendered. Anything else is
refused with a :class:`ConfigurationError` naming the offending part, instead of being escaped.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from lakeflow_job_meta.errors import ConfigurationError

# One part of a Unity Catalog name. Hyphens are legal in UC names when quoted; we always quote.
_UC_PART = re.compile(r"[A-Za-z0-9_-]+")
# Unity Catalog caps names at 255 characters; leave room for the longest sibling suffix.
SIBLING_SUFFIXES = ("_modules", "_jobs", "_history", "_state")
_MAX_UC_PART = 255 - max(len(s) for s in SIBLING_SUFFIXES)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class TableReference:
    """A validated table location.

    ``kind`` is ``"path"`` (``path`` is absolute and normalised) or ``"uc"`` (``parts`` is
    ``(catalog, schema, table)``). ``name`` is what users see in messages.
    """

    kind: str
    path: str | None = None
    parts: tuple[str, str, str] | None = None

    @property
    def is_path(self) -> bool:
        return self.kind == "path"

    @property
    def name(self) -> str:
        if self.path is not None:
            return self.path
        assert self.parts is not None
        return ".".join(self.parts)

    @property
    def sql_name(self) -> str:
        """The fully backquoted name for SQL text; only valid for Unity Catalog references."""
        if self.parts is None:
            raise ConfigurationError(f"{self.name} is a path, not a catalog.schema.table name")
        return ".".join(f"`{p}`" for p in self.parts)

    @property
    def canonical(self) -> str:
        """Stable spelling used for ids: the absolute path, or the lowercased UC name (UC names
        are case-insensitive)."""
        return self.name if self.path is not None else self.name.lower()

    def sibling(self, suffix: str) -> TableReference:
        """``X`` -> ``X<suffix>``: a sibling directory for paths, the same catalog.schema for UC."""
        if not _UC_PART.fullmatch(suffix):
            raise ConfigurationError(f"invalid table suffix {suffix!r}")
        if self.path is not None:
            return TableReference(kind="path", path=self.path + suffix)
        assert self.parts is not None
        catalog, schema, table = self.parts
        return TableReference(kind="uc", parts=(catalog, schema, table + suffix))

    def __str__(self) -> str:
        return self.name


def parse_table_reference(ref: str) -> TableReference:
    """Classify and validate ``ref``.

    - contains ``/`` or ``\\``, starts with ``.`` or ``~``, or is a ``file://`` URI: a path;
    - exactly three dot-separated parts otherwise: ``catalog.schema.table`` (parts may be
      backquoted, but the inside must still be ``[A-Za-z0-9_-]``);
    - anything else is ambiguous and refused (write ``./name`` for a relative path).
    """
    if not isinstance(ref, str):
        raise ConfigurationError(f"table reference must be a string, got {type(ref).__name__}")
    text = ref.strip(" ")
    if not text:
        raise ConfigurationError("table reference is empty")
    if _CONTROL_CHARS.search(ref):
        raise ConfigurationError(f"table reference {ref!r} contains control characters")
    if "://" in text:
        return _parse_uri(ref, text)
    if "/" in text or "\\" in text or text.startswith((".", "~")):
        return _parse_path(ref, text)
    return _parse_uc(ref, text)


def _parse_uri(ref: str, text: str) -> TableReference:
    parsed = urlparse(text)
    if parsed.scheme.lower() != "file":
        raise ConfigurationError(
            f"table reference {ref!r}: scheme {parsed.scheme!r} is not supported; use a local path "
            "or a catalog.schema.table name"
        )
    if parsed.netloc not in ("", "localhost"):
        raise ConfigurationError(f"table reference {ref!r}: file URIs must not name a host")
    return _parse_path(ref, unquote(parsed.path))


def _parse_path(ref: str, text: str) -> TableReference:
    if _CONTROL_CHARS.search(text):
        raise ConfigurationError(f"table reference {ref!r} contains control characters")
    last = re.split(r"[/\\]", text.rstrip("/\\"))[-1] if text.rstrip("/\\") else ""
    if last in ("", ".", "..", "~"):
        raise ConfigurationError(f"table reference {ref!r} does not name a table directory")
    # ``..`` is allowed: paths never reach SQL text, and abspath normalises it away, so the
    # canonical form (and the control-table id) does not depend on how the user spelled it.
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.basename(path) in ("", ".", ".."):
        raise ConfigurationError(f"table reference {ref!r} does not name a table directory")
    return TableReference(kind="path", path=path)


def _parse_uc(ref: str, text: str) -> TableReference:
    raw_parts = _split_uc(ref, text)
    if len(raw_parts) != 3:
        raise ConfigurationError(
            f"table reference {ref!r} must be catalog.schema.table (three parts), or a path "
            "(use ./name for a relative directory)"
        )
    parts: list[str] = []
    for label, part in zip(("catalog", "schema", "table"), raw_parts, strict=True):
        inner = part[1:-1] if len(part) >= 2 and part.startswith("`") and part.endswith("`") else part
        if not _UC_PART.fullmatch(inner):
            raise ConfigurationError(
                f"table reference {ref!r}: {label} part {part!r} may contain only letters, digits, "
                "'_' and '-'"
            )
        if len(inner) > _MAX_UC_PART:
            raise ConfigurationError(
                f"table reference {ref!r}: {label} part is longer than {_MAX_UC_PART} characters"
            )
        parts.append(inner)
    return TableReference(kind="uc", parts=(parts[0], parts[1], parts[2]))


def _split_uc(ref: str, text: str) -> list[str]:
    """Split on dots outside backquotes; a dot inside backquotes is kept (and later refused)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "`":
            quoted = not quoted
        if ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ConfigurationError(f"table reference {ref!r} has an unbalanced backquote")
    parts.append("".join(current))
    return parts


def control_table_id(ref: str | TableReference) -> str:
    """A short stable id of a control table (12 hex chars of sha256 of its canonical form), used
    in job tags so jobs can be traced to the control table that owns them."""
    table = ref if isinstance(ref, TableReference) else parse_table_reference(ref)
    return hashlib.sha256(table.canonical.encode("utf-8")).hexdigest()[:12]

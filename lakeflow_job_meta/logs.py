"""Log formatting for people and for log shippers, and a handler for notebooks.

- ``human``: ``2026-01-01 05:00:00,000 INFO message``.
- ``json``: one JSON document per line with ``time`` (UTC, ISO 8601), ``level``, ``logger``,
  ``message`` and any structured ``event`` fields a record carries (a monitor cycle's report).
- A notebook (``MetadataMonitor``/``JobOrchestrator`` used without the CLI) has no handler by
  default, and Python then prints only warnings: :func:`ensure_handler` sends the package's INFO
  lines to the notebook's output, unless the application configured logging itself.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TextIO

PACKAGE_LOGGER = "lakeflow_job_meta"
LogFormat = Literal["human", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("human", "json")
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# Set on a record with ``extra={EVENT: {...}}``: structured fields for the JSON format.
EVENT = "event"
_NOTEBOOK_HANDLER_NAME = "lakeflow_job_meta.notebook"


class JsonFormatter(logging.Formatter):
    """One JSON document per record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, EVENT, None)
        if isinstance(event, dict):
            document.update({k: v for k, v in event.items() if k not in document})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler


class CurrentStreamHandler(_StreamHandler):
    """Writes to whatever ``sys.stderr`` (or ``sys.stdout``) is when a record is emitted, not the
    object it was when the handler was made: notebooks and test runners swap them."""

    def __init__(self, name: Literal["stderr", "stdout"] = "stderr"):
        self._sys_attr = name
        super().__init__(getattr(sys, name))

    @property
    def stream(self) -> TextIO:
        return sys.stdout if self._sys_attr == "stdout" else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ sets it; always follow sys
        pass


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(HUMAN_FORMAT)


def ensure_handler(stream: TextIO | None = None) -> logging.Handler | None:
    """Give the package's loggers a handler at INFO when nothing would print them (no handler
    on them or on the root logger). Returns the handler added, or None. Idempotent."""
    package = logging.getLogger(PACKAGE_LOGGER)
    if package.hasHandlers():
        return None
    handler = logging.StreamHandler(stream) if stream is not None else CurrentStreamHandler("stdout")
    handler.set_name(_NOTEBOOK_HANDLER_NAME)
    handler.setFormatter(formatter("human"))
    package.addHandler(handler)
    if package.level == logging.NOTSET or package.level > logging.INFO:
        package.setLevel(logging.INFO)
    return handler

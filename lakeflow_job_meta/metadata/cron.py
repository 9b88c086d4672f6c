"""A Quartz cron validator (the dialect Databricks job schedules use).

Catching a bad expression here gives a message with file and line instead of a Jobs API 400 at
deploy time. Fields: ``seconds minutes hours day-of-month month day-of-week [year]``; each is a
comma list of ``*``, ``N``, ``A-B`` (wrapping allowed, as in Quartz), optionally ``/STEP``.
Day-of-month also takes ``L``, ``L-N``, ``LW``, ``NW``; day-of-week takes ``L``, ``NL``, ``N#K``;
exactly one of day-of-month and day-of-week must be ``?``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] means low + i

    def value(self, token: str) -> int:
        """Numeric value of ``token``; raises ValueError with a message."""
        upper = token.upper()
        if upper in self.names:
            return self.low + self.names.index(upper)
        if not token.isdigit():
            hint = f" (or {self.names[0]}-{self.names[-1]})" if self.names else ""
            raise ValueError(f"'{token}' is not a number {self.low}-{self.high}{hint}")
        number = int(token)
        if not self.low <= number <= self.high:
            raise ValueError(f"{number} is out of range {self.low}-{self.high}")
        return number


_FIELDS = (
    _Field("seconds", 0, 59),
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 1, 7, _DAYS),
    _Field("year", 1970, 2099),
)
_DOM, _DOW = 3, 5
_DOM_SPECIAL = re.compile(r"^(L(-(?P<offset>\d+))?|LW|(?P<day>\d+)W)$", re.IGNORECASE)
_DOW_LAST = re.compile(r"^(?P<day>[A-Za-z0-9]+)L$", re.IGNORECASE)
_DOW_NTH = re.compile(r"^(?P<day>[A-Za-z0-9]+)#(?P<nth>\d+)$")


def quartz_cron_error(expression: str) -> str | None:
    """Why ``expression`` is not a valid Quartz cron expression, or None when it is."""
    if not isinstance(expression, str):
        return "must be a string"
    parts = expression.split()
    if len(parts) not in (6, 7):
        hint = " (Unix cron has 5; Quartz starts with seconds)" if len(parts) == 5 else ""
        return f"expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), got {len(parts)}{hint}"
    for index, text in enumerate(parts):
        spec = _FIELDS[index]
        try:
            _check_field(text, spec, index)
        except ValueError as exc:
            return f"{spec.name} '{text}': {exc}"
    if (parts[_DOM] == "?") == (parts[_DOW] == "?"):
        return "exactly one of day-of-month and day-of-week must be '?'"
    return None


def is_valid_quartz_cron(expression: str) -> bool:
    return quartz_cron_error(expression) is None


def _check_field(text: str, spec: _Field, index: int) -> None:
    elements = text.split(",")
    if text == "?":
        if index not in (_DOM, _DOW):
            raise ValueError("'?' is only allowed in day-of-month or day-of-week")
        return
    for element in elements:
        if element == "?":
            raise ValueError("'?' must stand alone")
        if _is_special(element, index, spec):
            if len(elements) > 1:
                raise ValueError(f"'{element}' cannot be combined with other values")
            continue
        _check_element(element, spec)


def _is_special(element: str, index: int, spec: _Field) -> bool:
    """Validate L/W/# forms; False when ``element`` is not one of them."""
    if index == _DOM:
        match = _DOM_SPECIAL.match(element)
        if not match:
            return False
        if match.group("offset") is not None and not 1 <= int(match.group("offset")) <= 30:
            raise ValueError("the offset in L-N must be 1-30")
        if match.group("day") is not None:
            spec.value(match.group("day"))
        return True
    if index == _DOW:
        if element.upper() == "L":
            return True
        nth = _DOW_NTH.match(element)
        if nth:
            spec.value(nth.group("day"))
            if not 1 <= int(nth.group("nth")) <= 5:
                raise ValueError("the N in DAY#N must be 1-5")
            return True
        last = _DOW_LAST.match(element)
        if last:
            spec.value(last.group("day"))
            return True
    return False


def _check_element(element: str, spec: _Field) -> None:
    base, slash, step = element.partition("/")
    widest = spec.high - spec.low + 1
    if slash and not (step.isdigit() and 1 <= int(step) <= widest):
        raise ValueError(f"step '{step}' must be a number 1-{widest}")
    if base == "*":
        return
    if not base:
        raise ValueError("missing value")
    start, dash, end = base.partition("-")
    spec.value(start)
    if dash:
        spec.value(end)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakeflow_job_meta.metadata.cron import quartz_cron_error

VALID = [
    "0 0 12 * * ?",
    "0 15 10 ? * *",
    "0 15 10 * * ? 2030",
    "0 * 14 * * ?",
    "0 0/5 14,18 * * ?",
    "0 0-5 14 * * ?",
    "0 10,44 14 ? 3 WED",
    "0 15 10 ? * MON-FRI",
    "0 15 10 15 * ?",
    "0 15 10 L * ?",
    "0 15 10 L-2 * ?",
    "0 15 10 LW * ?",
    "0 15 10 15W * ?",
    "0 15 10 ? * 6L",
    "0 15 10 ? * FRIL",
    "0 15 10 ? * 6#3",
    "0 15 10 ? * MON#1",
    "0 0 12 1/5 * ?",
    "0 11 11 11 11 ?",
    "0 0 22-2 ? * FRI-MON",
    "0 0 12 ? jan-mar sun",
    "59 59 23 31 DEC ? 2099",
    "0 0 0 ? * L",
    "*/10 * * * * ?",
    "0 0 12 */2 * ? */3",
    "0 0 12 ? * SUN-SAT/2",
]

INVALID = [
    ("", "expected 6 or 7 fields"),
    ("0 0 * * *", "Unix cron has 5"),
    ("0 0 12 * * ? 2030 extra", "got 8"),
    ("0 0 12 * * *", "exactly one of day-of-month and day-of-week must be '?'"),
    ("0 0 12 ? * ?", "exactly one of day-of-month and day-of-week must be '?'"),
    ("0 0 12 * * MON", "exactly one of day-of-month and day-of-week must be '?'"),
    ("60 0 12 * * ?", "seconds '60': 60 is out of range 0-59"),
    ("0 60 12 * * ?", "minutes '60'"),
    ("0 0 24 * * ?", "hours '24': 24 is out of range 0-23"),
    ("0 0 12 0 * ?", "day-of-month '0'"),
    ("0 0 12 32 * ?", "day-of-month '32'"),
    ("0 0 12 * 13 ?", "month '13'"),
    ("0 0 12 * 0 ?", "month '0'"),
    ("0 0 12 ? * 8", "day-of-week '8'"),
    ("0 0 12 ? * 0", "day-of-week '0'"),
    ("0 0 12 ? * FOO", "'FOO' is not a number 1-7 (or SUN-SAT)"),
    ("0 0 12 * JANUARY ?", "month 'JANUARY'"),
    ("0 0 12 * * ? 1969", "year '1969'"),
    ("0 0 12 * * ? 2100", "year '2100'"),
    ("0 0/0 12 * * ?", "step '0' must be a number 1-60"),
    ("0 0/61 12 * * ?", "step '61'"),
    ("0 0/x 12 * * ?", "step 'x'"),
    ("0 /5 12 * * ?", "missing value"),
    ("0 1-x 12 * * ?", "'x' is not a number"),
    ("0 0 ? * * MON", "'?' is only allowed in day-of-month or day-of-week"),
    ("0 0 12 ?,1 * ?", "'?' must stand alone"),
    ("0 0 12 L,5 * ?", "'L' cannot be combined"),
    ("0 0 12 L-31 * ?", "the offset in L-N must be 1-30"),
    ("0 0 12 32W * ?", "32 is out of range 1-31"),
    ("0 0 12 ? * 6#6", "the N in DAY#N must be 1-5"),
    ("0 0 12 ? * 6#0", "the N in DAY#N must be 1-5"),
    ("0 0 12 ? * 9L", "9 is out of range 1-7"),
    ("0 0 12 ? * 1#2,3", "cannot be combined"),
    ("0 0 12 W * ?", "day-of-month 'W'"),
    ("0 0 12 ,1 * ?", "missing value"),
]


@pytest.mark.parametrize("expression", VALID)
def test_valid(expression: str) -> None:
    assert quartz_cron_error(expression) is None


@pytest.mark.parametrize(("expression", "message"), INVALID)
def test_invalid(expression: str, message: str) -> None:
    error = quartz_cron_error(expression)
    assert error is not None and message in error, error


def test_non_string() -> None:
    assert quartz_cron_error(5) == "must be a string"  # type: ignore[arg-type]


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high).map(str)
    ranged = st.tuples(st.integers(low, high), st.integers(low, high)).map(lambda p: f"{p[0]}-{p[1]}")
    step = st.tuples(st.one_of(st.just("*"), value), st.integers(1, high - low + 1)).map(
        lambda p: f"{p[0]}/{p[1]}"
    )
    element = st.one_of(value, ranged, step)
    return st.one_of(st.just("*"), st.lists(element, min_size=1, max_size=4).map(",".join))


DAY_OF_WEEK = st.one_of(_field(1, 7), st.sampled_from(["MON-FRI", "SUN", "sat", "L", "5L", "2#4"]))
DAY_OF_MONTH = st.one_of(_field(1, 31), st.sampled_from(["L", "LW", "L-3", "15W"]))


@st.composite
def valid_expressions(draw: st.DrawFn) -> str:
    fields = [draw(_field(0, 59)), draw(_field(0, 59)), draw(_field(0, 23))]
    if draw(st.booleans()):
        fields += [draw(DAY_OF_MONTH), draw(st.one_of(_field(1, 12), st.just("JAN-JUN"))), "?"]
    else:
        fields += ["?", draw(_field(1, 12)), draw(DAY_OF_WEEK)]
    if draw(st.booleans()):
        fields.append(draw(_field(1970, 2099)))
    return " ".join(fields)


@given(valid_expressions())
def test_generated_valid_expressions_pass(expression: str) -> None:
    assert quartz_cron_error(expression) is None


@given(valid_expressions(), st.integers(0, 5), st.sampled_from(["99", "-1", "1-", "a", "1/0", "*/"]))
def test_corrupting_one_field_is_caught_and_named(expression: str, index: int, garbage: str) -> None:
    fields = expression.split()
    if fields[index] == "?":
        index = 3 if index == 5 else 5  # keep the '?' rule satisfied; corrupt the other day field
    fields[index] = garbage
    error = quartz_cron_error(" ".join(fields))
    names = ["seconds", "minutes", "hours", "day-of-month", "month", "day-of-week"]
    assert error is not None and error.startswith(names[index]), error

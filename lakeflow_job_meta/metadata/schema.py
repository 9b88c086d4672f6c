"""The JSON Schema of a metadata file, and jsonschema errors turned into short human messages.

``schema.json`` ships as package data. Its ``x-message`` annotations give the message for
keywords whose default wording helps nobody (``oneOf``, ``not``, ``pattern``, property counts).
Integers are strict: ``true`` and ``1.0`` are not integers here, unlike stock JSON Schema.
"""

from __future__ import annotations

import difflib
import json
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from lakeflow_job_meta.metadata.locations import FieldPath
from lakeflow_job_meta.metadata.models import TASK_TYPES

if TYPE_CHECKING:
    import jsonschema_rs

# types-jsonschema leaves validators.extend unannotated; it returns a validator class.
_StrictIntegerValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_X_MESSAGE_KEYWORDS = frozenset({"oneOf", "anyOf", "not", "pattern", "minProperties", "maxProperties"})


@dataclass(frozen=True, order=True)
class SchemaProblem:
    """One schema violation: the field it concerns, the message, and the node whose line to show
    (an unknown key is reported under its parent but on its own line)."""

    path: FieldPath
    message: str
    line_path: FieldPath


@cache
def metadata_schema() -> dict[str, Any]:
    """The shipped schema (parsed once)."""
    text = resources.files("lakeflow_job_meta.metadata").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(definition: str | None) -> Validator:
    schema = metadata_schema()
    Draft202012Validator.check_schema(schema)  # here, not on the happy path: it costs 0.5 s
    if definition is not None:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return _StrictIntegerValidator(schema)


@cache
def _compiled_validator(definition: str | None) -> jsonschema_rs.Validator | None:
    """The same schema compiled by ``jsonschema-rs`` (about 400x faster), or None when it is not
    installed. It only ever answers "valid": every failure is explained by ``jsonschema``."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    schema = metadata_schema()
    if definition is not None:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema_rs.validator_for(schema)


# Numbers that are integral floats (``1.0``, ``1e+20``) and the four control characters that
# Python's ``\s`` matches (``pattern`` runs on ``re``) but the compiled validator's does not, as
# ``json.dumps`` writes them. Searched in the whole text, strings included: a false alarm only
# costs the slow path.
_DISAGREEMENT = re.compile(r"(?:[:,] |\[)-?\d+(?:\.0\b|e\+)|\\u001[c-f]")
_CONTROL_ESCAPE = re.compile(r"\\u001[c-f]")
_DIGITS = frozenset(string.digits)
_WORD = frozenset(string.ascii_letters + string.digits + "_")  # \w, in the ASCII json.dumps writes


def _has_disagreement(text: str) -> bool:
    """``_DISAGREEMENT.search(text) is not None`` for the ASCII text ``json.dumps`` writes, found
    about 10x faster: the regex tries its prefix at every character, while ``.0``, ``e+`` and
    ``\\u001`` are rare and ``str.find`` skips to them; each is then checked backwards."""
    if "\\u001" in text and _CONTROL_ESCAPE.search(text):
        return True
    for marker in (".0", "e+"):
        at = text.find(marker)
        while at >= 0:
            bounded = marker == "e+" or at + 2 == len(text) or text[at + 2] not in _WORD  # \.0\b
            if bounded and _integer_ends_at(text, at):
                return True
            at = text.find(marker, at + 1)
    return False


def _integer_ends_at(text: str, end: int) -> bool:
    r"""Whether ``text[:end]`` ends with ``(?:[:,] |\[)-?\d+``."""
    start = end
    while start and text[start - 1] in _DIGITS:
        start -= 1
    if start == end:
        return False
    if start and text[start - 1] == "-":
        start -= 1
    return text[max(start - 1, 0) : start] == "[" or text[max(start - 2, 0) : start] in (": ", ", ")


def _compiled_agrees(instance: Any) -> bool:
    """Whether the compiled validator judges ``instance`` as ``jsonschema`` here does: it takes
    ``1.0`` for an integer (this schema's integers are strict) and differs on four control
    characters in ``pattern``. Anything else it gets the same."""
    try:
        text = json.dumps(instance)
    except (TypeError, ValueError):
        return False
    return not _has_disagreement(text)


def _judged_part(instance: Any, definition: str | None) -> Any:
    """The part of ``instance`` whose values ``definition`` judges. The header looks inside
    everything but ``modules``, of which it only asks that it be a list (the compiled validator
    and ``jsonschema`` agree on that), so the modules, nearly all of a file, need no search."""
    if definition == "header" and isinstance(instance, dict) and isinstance(instance.get("modules"), list):
        return {**instance, "modules": []}
    return instance


def is_valid_fast(instance: Any, definition: str | None = None) -> bool:
    """True only when the instance is certainly valid (compiled validator, when installed)."""
    compiled = _compiled_validator(definition)
    if compiled is None or not _compiled_agrees(_judged_part(instance, definition)):
        return False
    try:
        return bool(compiled.is_valid(instance))
    except (ValueError, OverflowError, TypeError):  # values JSON cannot hold: let jsonschema say
        return False


def schema_problems(instance: Any, definition: str | None = None) -> list[SchemaProblem]:
    """Validate ``instance`` against the whole schema, or against one of its ``$defs``
    (``header``, ``source``, ``module``), and describe every violation. The happy path goes
    through the compiled validator; ``jsonschema`` runs only to explain a failure, so messages
    are the same whichever is installed."""
    if is_valid_fast(instance, definition):
        return []
    validator = _validator(definition)
    problems: set[SchemaProblem] = set()
    for error in validator.iter_errors(instance):
        problems.update(_describe(error, validator))
    # A wrong task_type makes the rest of that task's config unjudgeable: report only the type.
    bad_tasks = {p.path[:-1] for p in problems if p.path and p.path[-1] == "task_type"}
    return sorted(
        p
        for p in problems
        if p.path[-1:] == ("task_type",) or not any(p.path[: len(t)] == t for t in bad_tasks)
    )


def _describe(error: ValidationError, validator: Validator) -> Iterator[SchemaProblem]:
    path: FieldPath = tuple(error.absolute_path)
    keyword = error.validator
    # JSON values of the schema; set on every error ``iter_errors`` yields.
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if "propertyNames" in error.absolute_schema_path:
        detail = schema.get("x-message") or _keyword_message(error, schema)
        yield SchemaProblem(path, f"invalid name '{error.instance}': {detail}", (*path, str(error.instance)))
        return
    if keyword == "required":
        for name in value:
            if isinstance(error.instance, Mapping) and name not in error.instance:
                yield SchemaProblem((*path, name), "is required", path)
        return
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(error.instance, Mapping):
        if value is not False:
            return
        task_type = error.instance.get("task_type")
        if task_type is not None and task_type not in TASK_TYPES:
            return  # the task_type error explains it; per-type keys are unknown only because of it
        declared = _declared_keys(schema, error.instance, validator)
        for key in error.instance:
            if key not in declared:
                close = difflib.get_close_matches(str(key), sorted(declared), n=1, cutoff=0.75)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                yield SchemaProblem(path, f"unknown field '{key}'{hint}", (*path, key))
        return
    message = _keyword_message(error, schema)
    if keyword in _GOT_KEYWORDS:
        message += f", got {_got(error.instance)}"
    if keyword == "enum" and isinstance(error.instance, str):
        message += did_you_mean(error.instance, [str(v) for v in value])
    yield SchemaProblem(path, message, path)


def did_you_mean(value: str, choices: list[str]) -> str:
    """`` (did you mean 'notebook'?)`` for a near miss of one of ``choices``, else empty: a
    list of eleven task types does not show which one a typo meant."""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Messages about a value say what the value was: `must be an integer >= 0, got the string "1"`.
_GOT_KEYWORDS = frozenset(
    {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "const", "pattern"}
)


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (nothing)"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(shown, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _keyword_message(error: ValidationError, schema: Mapping[str, Any]) -> str:
    keyword = error.validator
    value: Any = error.validator_value  # JSON, set on every error ``iter_errors`` yields
    if keyword in _X_MESSAGE_KEYWORDS and "x-message" in schema:
        return str(schema["x-message"])
    if keyword == "type" and "x-type-message" in schema:
        return str(schema["x-type-message"])
    if keyword == "type" or keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        expected = value if keyword == "type" else schema.get("type")
        types = [expected] if isinstance(expected, str) else list(expected or [])
        if "integer" in types and len(types) == 1:
            return f"must be {_describe_integer(schema)}"
        if keyword == "type":
            return "must be " + " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return {"minimum": f"must be >= {value}", "maximum": f"must be <= {value}"}.get(
            keyword, f"must be {keyword} {value}"
        )
    if keyword == "enum":
        message = "must be one of: " + ", ".join(_show(option) for option in value)
        if not isinstance(error.instance, str) and str(error.instance).lower() in {
            str(v).lower() for v in value
        }:
            message += " (quote the value in YAML)"
        return message
    if keyword == "const":
        return f"must be {_show(value)}"
    if keyword in ("minLength", "minItems", "minProperties"):
        if value == 1:
            return "must not be empty"
        unit = {"minLength": "characters", "minItems": "items", "minProperties": "entries"}[keyword]
        return f"must have at least {value} {unit}"
    if keyword in ("maxLength", "maxItems", "maxProperties"):
        unit = {"maxLength": "characters", "maxItems": "items", "maxProperties": "entries"}[keyword]
        return f"must have at most {value} {unit}"
    if keyword == "pattern":
        return f"must match the pattern {value}"
    return "is not valid"


def _describe_integer(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"an integer between {low} and {high}"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) and value in ("true", "false") else str(value)


def _declared_keys(schema: Mapping[str, Any], instance: Mapping[str, Any], validator: Validator) -> set[str]:
    """Keys ``schema`` declares for ``instance``, following local ``$ref``, ``allOf`` and the
    ``if``/``then`` branch that applies (so a notebook task knows ``notebook_path``)."""
    keys = set(schema.get("properties", {}))
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        keys |= _declared_keys(metadata_schema()["$defs"][ref.removeprefix("#/$defs/")], instance, validator)
    for part in schema.get("allOf", []):
        keys |= _declared_keys(part, instance, validator)
    if "if" in schema:
        branch = "then" if validator.evolve(schema=schema["if"]).is_valid(instance) else "else"
        if branch in schema:
            keys |= _declared_keys(schema[branch], instance, validator)
    return keys

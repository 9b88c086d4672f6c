"""``${var.NAME}`` substitution and environment selection, in the style of Databricks Asset Bundles.

A variable's value is, from lowest to highest precedence: ``variables.NAME.default``, the chosen
environment's ``variables.NAME``, then ``--var NAME=VALUE``. Substitution applies to every string
value under ``modules`` (never to keys).

Typing rule: a string that is *exactly* one reference (``"${var.retries}"``) becomes the variable's
value with its own type (an int stays an int, a mapping stays a mapping); a reference embedded in
longer text is rendered as text (``true``/``false`` for booleans). ``--var`` values are strings,
converted to the type of the variable's default when it is a bool, int or float and the text
parses as one, so ``--var retries=5`` still feeds an integer field.

Variable values may themselves reference other variables; a reference loop is an issue.
Other ``${...}`` forms (``${bundle.target}``) are left untouched.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeflow_job_meta.errors import ConfigurationError, MetadataIssue
from lakeflow_job_meta.metadata.locations import FieldPath, LineMap, yaml_issue
from lakeflow_job_meta.vocabulary import EnvironmentMode

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
VARIABLE_REFERENCE = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}")
# An environment that declares no ``mode``.
DEFAULT_MODE = EnvironmentMode.DEVELOPMENT


@dataclass(frozen=True)
class EnvironmentSelection:
    """The environment a file was parsed for (``--env``). Development mode prefixes job names."""

    name: str
    mode: EnvironmentMode = DEFAULT_MODE

    @property
    def is_production(self) -> bool:
        return self.mode == EnvironmentMode.PRODUCTION


@dataclass
class Substitution:
    """Result of :func:`apply_variables`: the substituted ``modules`` value and what went wrong."""

    modules: Any
    environment: EnvironmentSelection | None
    issues: list[MetadataIssue] = field(default_factory=list)
    # The file's ``defaults`` block, substituted the same way (None when it has none).
    defaults: Any = None


def parse_var_args(args: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` (repeated ``--var``) -> ``{"k": "v"}``. The value may contain ``=``."""
    values: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigurationError(f"--var {arg!r}: expected NAME=VALUE")
        if not VARIABLE_NAME.match(name):
            raise ConfigurationError(
                f"--var {arg!r}: variable name must start with a letter or '_' and contain only letters, digits, '_' and '-'"
            )
        if name in values:
            raise ConfigurationError(f"--var {name} is given more than once")
        values[name] = value
    return values


_UNSET = object()
_RESOLVING = object()
_MARK = "${var."  # what every VARIABLE_REFERENCE starts with


class _Resolver:
    """Resolves variable values on demand (memoised, loop-safe) and substitutes references."""

    def __init__(
        self,
        file: str,
        lines: LineMap,
        declared: Mapping[str, Any],
        env_values: Mapping[str, Any],
        env_name: str | None,
        overrides: Mapping[str, str],
    ):
        self.file = file
        self.lines = lines
        self.env_name = env_name
        self.issues: list[MetadataIssue] = []
        self._raw: dict[str, tuple[Any, FieldPath]] = {}
        for name, spec in declared.items():
            raw: Any = _UNSET
            origin: FieldPath = ("variables", name)
            if isinstance(spec, Mapping) and "default" in spec:
                raw, origin = spec["default"], ("variables", name, "default")
            if name in env_values:
                raw, origin = env_values[name], ("environments", env_name or "", "variables", name)
            if name in overrides:
                default = spec.get("default") if isinstance(spec, Mapping) else None
                raw, origin = _coerce(overrides[name], default), ("variables", name)
            self._raw[name] = (raw, origin)
        self._resolved: dict[str, Any] = {}

    def value(self, name: str, used_at: FieldPath) -> Any:
        """The variable's final value, or ``_UNSET`` after recording why it has none."""
        if name not in self._raw:
            self._issue(used_at, f"undefined variable '{name}' (declare it under variables)")
            return _UNSET
        if name in self._resolved:
            state = self._resolved[name]
            if state is _RESOLVING:
                self._issue(
                    self._raw[name][1], f"variable '{name}' refers to itself through ${{var.*}} references"
                )
                return _UNSET
            return state
        raw, origin = self._raw[name]
        if raw is _UNSET or raw is None:
            where = f"set it in environment '{self.env_name}', " if self.env_name else ""
            self._issue(
                used_at,
                f"variable '{name}' has no value: give it a default, {where}or pass --var {name}=VALUE",
            )
            return _UNSET
        self._resolved[name] = _RESOLVING
        resolved = self.substitute(raw, origin)
        self._resolved[name] = resolved
        return resolved

    def substitute(self, value: Any, path: FieldPath) -> Any:
        """A copy of ``value`` with its references substituted. Text without ``${var.`` is kept
        as it is, and a child's path is built only for a reference or a collection."""
        if isinstance(value, str):
            return self._substitute_text(value, path) if _MARK in value else value
        if isinstance(value, list):
            return [self._substitute_child(item, path, i) for i, item in enumerate(value)]
        if isinstance(value, dict):
            copied = {}
            for key, item in value.items():
                if isinstance(item, str):
                    copied[key] = self._substitute_text(item, (*path, key)) if _MARK in item else item
                elif isinstance(item, (list, dict)):
                    copied[key] = self.substitute(item, (*path, key))
                else:
                    copied[key] = item
            return copied
        return value

    def _substitute_child(self, item: Any, path: FieldPath, index: int) -> Any:
        if isinstance(item, str):
            return self._substitute_text(item, (*path, index)) if _MARK in item else item
        if isinstance(item, (list, dict)):
            return self.substitute(item, (*path, index))
        return item

    def _substitute_text(self, text: str, path: FieldPath) -> Any:
        whole = VARIABLE_REFERENCE.fullmatch(text)
        if whole:
            value = self.value(whole.group(1), path)
            return text if value is _UNSET else copy.deepcopy(value)

        def render(match: re.Match[str]) -> str:
            value = self.value(match.group(1), path)
            if value is _UNSET:
                return match.group(0)
            if isinstance(value, (dict, list)):
                kind = "mapping" if isinstance(value, dict) else "list"
                self._issue(
                    path,
                    f"variable '{match.group(1)}' holds a {kind}; use it as the whole value, not inside text",
                )
                return match.group(0)
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return VARIABLE_REFERENCE.sub(render, text)

    def _issue(self, path: FieldPath, message: str) -> None:
        self.issues.append(yaml_issue(self.file, self.lines, path, message))


def _coerce(text: str, default: Any) -> Any:
    """Give a ``--var`` string the type of the variable's default when it parses as that type."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        return {"true": True, "false": False}.get(lowered, text)
    if isinstance(default, int) and re.fullmatch(r"\s*[+-]?\d+\s*", text):
        return int(text)
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def environment_issues(data: Mapping[str, Any], file: str, lines: LineMap) -> list[MetadataIssue]:
    """Every environment may only set declared variables (a typo there would silently not apply)."""
    declared = data.get("variables") or {}
    issues = []
    for env_name, env in (data.get("environments") or {}).items():
        for name in (env or {}).get("variables") or {}:
            if name not in declared:
                path = ("environments", env_name, "variables", name)
                issues.append(
                    yaml_issue(file, lines, path, f"variable '{name}' is not declared under variables")
                )
    return issues


def apply_variables(
    data: Mapping[str, Any],
    file: str,
    lines: LineMap,
    *,
    overrides: Mapping[str, str] | None = None,
    env: str | None = None,
) -> Substitution:
    """Choose the environment, resolve variables and substitute them into ``data["modules"]``
    (and ``data["defaults"]``).

    ``data`` must already match the schema's header (variables/environments shapes). Overrides
    for variables this file does not declare are ignored here; :func:`undeclared_overrides`
    reports the ones no file declares.
    """
    environments: Mapping[str, Any] = data.get("environments") or {}
    selection: EnvironmentSelection | None = None
    issues = environment_issues(data, file, lines)
    env_values: Mapping[str, Any] = {}
    if env is not None:
        if env not in environments:
            at: FieldPath = ("environments",) if environments else ()
            message = undefined_environment(env, environments, "this file has no environments section")
            issues.append(yaml_issue(file, lines, at, message))
            return Substitution(data.get("modules"), None, issues)
        chosen = environments[env] or {}
        # The header matched the schema (see above): ``mode`` is one of its enum.
        selection = EnvironmentSelection(env, EnvironmentMode(chosen.get("mode", DEFAULT_MODE)))
        env_values = chosen.get("variables") or {}
    resolver = _Resolver(file, lines, data.get("variables") or {}, env_values, env, overrides or {})
    modules = resolver.substitute(data.get("modules"), ("modules",))
    defaults = resolver.substitute(data.get("defaults"), ("defaults",)) if "defaults" in data else None
    return Substitution(modules, selection, issues + resolver.issues, defaults)


def undeclared_overrides(overrides: Mapping[str, str], declared: Iterable[str]) -> list[MetadataIssue]:
    """``--var`` names that no parsed file declares: almost always a typo."""
    known = set(declared)
    return [
        MetadataIssue("--var", name, "is not declared under variables in any file")
        for name in sorted(overrides)
        if name not in known
    ]


def undefined_environment(env: str, environments: Iterable[str], none_declared: str) -> str:
    """The one message for an ``--env`` that names no declared environment."""
    known = ", ".join(sorted(environments)) or none_declared
    return f"environment '{env}' is not defined ({known})"


def check_declared(
    env: str | None,
    overrides: Mapping[str, str],
    environments: Iterable[str],
    variables: Iterable[str],
    *,
    none_declared: str = "no file has an environments section",
) -> None:
    """An ``--env`` or ``--var`` that no file declares is a usage error (exit 2) for every
    command: validate and load (the files given), plan, apply, export-bundle and the monitor
    (the files the control table was loaded from)."""
    problems = [str(issue) for issue in undeclared_overrides(overrides, variables)]
    environments = set(environments)
    if env is not None and env not in environments:
        problems.insert(0, undefined_environment(env, environments, none_declared))
    if problems:
        raise ConfigurationError("; ".join(problems))


def describe_choice(env: str | None, overrides: Mapping[str, str]) -> str:
    """``--env prod, --var a=1`` or ``no --env, no --var``, for messages."""
    parts = [f"--env {env}" if env is not None else "no --env"]
    parts += [f"--var {name}={value}" for name, value in sorted(overrides.items())] or ["no --var"]
    return ", ".join(parts)


@dataclass(frozen=True)
class FileDeclarations:
    """What one loaded file declares: its environments (name -> mode) and variable names."""

    environments: Mapping[str, str] = field(default_factory=dict)
    variables: frozenset[str] = frozenset()

    @property
    def sensitive(self) -> bool:
        """Its rows depend on ``--env``/``--var``."""
        return bool(self.environments or self.variables)


@dataclass(frozen=True)
class LoadedEnvironments:
    """Which ``--env`` and ``--var`` the control table's YAML rows were resolved with, and what
    the files behind them declare. The rows hold resolved values, so a plan, apply or monitor
    must ask for exactly this choice: anything else would mix one environment's job names with
    another's values. Only files that declare variables or environments are listed."""

    env: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, FileDeclarations] = field(default_factory=dict)

    @property
    def environments(self) -> dict[str, str]:
        return {name: mode for f in self.files.values() for name, mode in f.environments.items()}

    @property
    def declared_variables(self) -> set[str]:
        return {name for f in self.files.values() for name in f.variables}

    def same_choice(self, env: str | None, overrides: Mapping[str, str]) -> bool:
        return self.env == env and dict(self.variables) == dict(overrides)

    def check_run(self, env: str | None, overrides: Mapping[str, str], table: str) -> None:
        """ConfigurationError unless a run with ``env``/``overrides`` sees the values it asks for."""
        check_declared(
            env,
            overrides,
            self.environments,
            self.declared_variables,
            none_declared=f"no file loaded into {table} has an environments section",
        )
        if self.files and not self.same_choice(env, overrides):
            raise ConfigurationError(
                f"{table} was loaded with {describe_choice(self.env, self.variables)}, but this run "
                f"asks for {describe_choice(env, overrides)}: its rows hold the values resolved by that "
                "load, and a job must never mix one environment's name with another's values. Run "
                "with the load's --env/--var, or load the files again with this run's (one control "
                "table per environment)"
            )

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "variables": dict(self.variables),
            "files": {
                path: {"environments": dict(f.environments), "variables": sorted(f.variables)}
                for path, f in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> LoadedEnvironments | None:
        if not isinstance(value, Mapping):
            return None
        files = {
            str(path): FileDeclarations(
                dict(f.get("environments") or {}), frozenset(f.get("variables") or ())
            )
            for path, f in (value.get("files") or {}).items()
            if isinstance(f, Mapping)
        }
        return cls(value.get("env"), dict(value.get("variables") or {}), files)

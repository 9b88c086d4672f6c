"""The identity and code policy: who jobs may run as, where their code may live, who sees them.

Writing the metadata is, in effect, defining jobs that run as their ``run_as`` identity. The
policy file (``--policy PATH``, wheel parameter ``policy``) bounds that power:

- ``run_as.allowed``: user names or service principal application ids a module may run as;
  ``run_as.default`` is applied when a module sets none (``environments.<name>.run_as.default``
  overrides it for one deployment environment).
- ``code_paths.allowed_prefixes``: notebooks, SQL files, python files, wheels, jars and
  requirement files must live under one of these prefixes (after ``..`` is resolved).
- ``permissions.default``: grants added to every managed job's ACL.
- ``mass_change``: the blast-radius limit (``max_jobs``/``max_fraction``) and ``allow``.
- ``alerts``: webhooks the monitor tells about trouble and recovery. A URL is a secret (a Slack
  hook's path is its token), so one that carries credentials must be a reference,
  ``${env:NAME}`` or ``${secret:scope/key}``, resolved only when sending.

A module that breaks the policy gets issues naming its file or table, its source or module and
the field, so it is skipped like any other invalid module while the others apply. This module is
pure: it reads one file and checks models; the engine decides what an issue means.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lakeflow_job_meta.errors import ConfigurationError, MetadataIssue
from lakeflow_job_meta.metadata.limits import MASS_CHANGE_MAX_FRACTION, MASS_CHANGE_MAX_JOBS, MAX_POLICY_BYTES
from lakeflow_job_meta.metadata.locations import format_path, table_location
from lakeflow_job_meta.metadata.models import Module, Source
from lakeflow_job_meta.metadata.yaml_loader import LoadedYaml, YamlLimits, load_yaml
from lakeflow_job_meta.vocabulary import AlertEvent, AlertFormat, choices

NO_POLICY_WARNING = "no policy given (--policy): every run_as identity, code path and permission is allowed"
RUN_AS_KEYS: tuple[str, ...] = ("user_name", "service_principal_name")
PRINCIPAL_KEYS: tuple[str, ...] = ("user_name", "group_name", "service_principal_name")
# The policy grants visibility and run rights; ownership stays with the one owner per job.
DEFAULT_GRANT_LEVELS: tuple[str, ...] = ("CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE")
# Library kinds whose value is a file path (pypi/maven/cran name packages, not files).
_PATH_LIBRARY_KINDS: tuple[str, ...] = ("whl", "jar", "egg", "requirements")

_TOP_KEYS = frozenset(
    {"run_as", "code_paths", "permissions", "mass_change", "allow_mass_change", "environments", "alerts"}
)
_ALERT_KEYS = frozenset({"webhooks", "max_per_minute", "lag_versions"})
_WEBHOOK_KEYS = frozenset({"url", "format", "events", "name"})
# ``${env:NAME}`` or ``${secret:scope/key}``: where a secret URL is read from when sending.
SECRET_REFERENCE = re.compile(
    r"^\$\{(?:env:(?P<env>[A-Za-z_][A-Za-z0-9_]*)|secret:(?P<scope>[^/}]+)/(?P<key>[^}]+))\}$"
)
# What makes a literal URL a secret: credentials in it, a Slack hook, a token-like parameter.
_SECRET_URL = re.compile(
    r"//[^/@]*@|hooks\.slack\.com/|[?&](?:token|key|secret|sig|signature|code|password)=", re.I
)
DEFAULT_ALERTS_PER_MINUTE = 20
DEFAULT_LAG_VERSIONS = 10


@dataclass(frozen=True)
class Webhook:
    """One alert destination. ``url`` is a literal URL without secrets or a reference."""

    url: str
    format: AlertFormat = AlertFormat.JSON
    events: frozenset[AlertEvent] = frozenset(AlertEvent)
    name: str = ""

    @property
    def label(self) -> str:
        """What logs and history may say about this webhook (never its URL)."""
        return self.name or (self.url if SECRET_REFERENCE.match(self.url) else "webhook")

    def wants(self, event: str) -> bool:
        return event in self.events


@dataclass(frozen=True)
class AlertPolicy:
    webhooks: tuple[Webhook, ...] = ()
    max_per_minute: int = DEFAULT_ALERTS_PER_MINUTE
    """Per webhook; alerts beyond it are dropped and counted (a storm must not flood a channel)."""
    lag_versions: int = DEFAULT_LAG_VERSIONS
    """A lag of more control-table versions than this raises the ``lag`` alert."""


@dataclass(frozen=True)
class Policy:
    """A loaded policy. ``None`` in an allow-list means "not restricted"."""

    source: str = "policy"
    run_as_allowed: tuple[str, ...] | None = None
    run_as_default: Mapping[str, str] | None = None
    environment_run_as_default: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    code_prefixes: tuple[str, ...] | None = None
    default_permissions: tuple[Mapping[str, str], ...] = ()
    mass_change_max_jobs: int = MASS_CHANGE_MAX_JOBS
    mass_change_max_fraction: float = MASS_CHANGE_MAX_FRACTION
    allow_mass_change: bool = False
    alerts: AlertPolicy = field(default_factory=AlertPolicy)

    def run_as_default_for(self, env: str | None) -> Mapping[str, str] | None:
        if env is not None and env in self.environment_run_as_default:
            return self.environment_run_as_default[env]
        return self.run_as_default


# -- loading -----------------------------------------------------------------------------------
def load_policy(path: str, *, max_bytes: int = MAX_POLICY_BYTES) -> Policy:
    """Read and check a policy file (a local path, ``/Volumes/...`` or ``/Workspace/...``).
    Any problem is a ConfigurationError naming the file, line and field: a run never proceeds
    on a policy it could not read."""
    try:
        with open(path, "rb") as handle:
            content = handle.read(max_bytes + 1)
    except OSError as error:
        raise ConfigurationError(f"cannot read policy {path}: {error.strerror or error}") from error
    return parse_policy(content, path, max_bytes=max_bytes)


def parse_policy(content: str | bytes, path: str, *, max_bytes: int = MAX_POLICY_BYTES) -> Policy:
    """Parse policy text (safe YAML, size and alias caps); see :func:`load_policy`."""
    if not content.strip():
        raise ConfigurationError(f"{path}:1: the policy file is empty")
    loaded = load_yaml(content, path, YamlLimits(max_bytes=max_bytes))
    if not isinstance(loaded, LoadedYaml):
        raise ConfigurationError("; ".join(str(issue) for issue in loaded))
    return _PolicyReader(path, loaded).read()


class _PolicyReader:
    """Checks the parsed document field by field; the first problem stops it."""

    def __init__(self, path: str, loaded: LoadedYaml):
        self.path = path
        self.loaded = loaded

    def fail(self, where: Sequence[str | int], message: str) -> ConfigurationError:
        line = self.loaded.lines.line_of(tuple(where))
        return ConfigurationError(f"{self.path}:{line}: {format_path(where)}: {message}")

    def mapping(
        self, value: Any, where: Sequence[str | int], allowed: frozenset[str] | None
    ) -> Mapping[str, Any]:
        """``value`` as a mapping whose keys are in ``allowed`` (None: any key)."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(where, "must be a mapping")
        for key in value:
            if allowed is not None and key not in allowed:
                raise self.fail([*where, str(key)], f"unknown key (expected one of {sorted(allowed)})")
        return value

    def strings(self, value: Any, where: Sequence[str | int]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, "must be a list of non-empty strings")
        return tuple(value)

    def run_as_entry(self, value: Any, where: Sequence[str | int]) -> dict[str, str]:
        if (
            not isinstance(value, Mapping)
            or len(value) != 1
            or next(iter(value)) not in RUN_AS_KEYS
            or not isinstance(next(iter(value.values())), str)
        ):
            raise self.fail(where, "must set exactly one of user_name or service_principal_name")
        return dict(value)

    def read(self) -> Policy:
        data = self.mapping(self.loaded.data, [], _TOP_KEYS)
        allowed, default = self.run_as(data.get("run_as"))
        max_jobs, fraction = self.mass_change(data.get("mass_change"))
        allow = data.get("allow_mass_change", (data.get("mass_change") or {}).get("allow", False))
        if not isinstance(allow, bool):
            raise self.fail(["allow_mass_change"], "must be true or false")
        return Policy(
            source=self.path,
            run_as_allowed=allowed,
            run_as_default=default,
            environment_run_as_default=self.environments(data.get("environments"), allowed),
            code_prefixes=self.code_prefixes(data.get("code_paths")),
            default_permissions=self.grants(data.get("permissions")),
            mass_change_max_jobs=max_jobs,
            mass_change_max_fraction=fraction,
            allow_mass_change=allow,
            alerts=self.alerts(data.get("alerts")),
        )

    def alerts(self, value: Any) -> AlertPolicy:
        alerts = self.mapping(value, ["alerts"], _ALERT_KEYS)
        hooks = tuple(
            self.webhook(hook, ["alerts", "webhooks", i])
            for i, hook in enumerate(self.list_of(alerts.get("webhooks"), ["alerts", "webhooks"]))
        )
        numbers = {}
        for key, default in (
            ("max_per_minute", DEFAULT_ALERTS_PER_MINUTE),
            ("lag_versions", DEFAULT_LAG_VERSIONS),
        ):
            number = alerts.get(key, default)
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise self.fail(["alerts", key], "must be an integer >= 1")
            numbers[key] = number
        return AlertPolicy(webhooks=hooks, **numbers)

    def webhook(self, value: Any, where: list[str | int]) -> Webhook:
        hook = self.mapping(value, where, _WEBHOOK_KEYS)
        url = hook.get("url")
        if not isinstance(url, str) or not url:
            raise self.fail([*where, "url"], "must be a URL or ${env:NAME} or ${secret:scope/key}")
        if not SECRET_REFERENCE.match(url):
            if not url.startswith(("https://", "http://")):
                raise self.fail(
                    [*where, "url"], "must be an http(s) URL or ${env:NAME} or ${secret:scope/key}"
                )
            if _SECRET_URL.search(url):
                # The message never repeats the URL: it holds the secret.
                raise self.fail(
                    [*where, "url"],
                    "carries a secret (credentials, a Slack hook or a token parameter): put it in an "
                    "environment variable or a secret scope and write ${env:NAME} or ${secret:scope/key}",
                )
        fmt = hook.get("format", AlertFormat.JSON)
        if fmt not in choices(AlertFormat):
            raise self.fail([*where, "format"], f"must be one of {list(choices(AlertFormat))}")
        events = frozenset(AlertEvent)
        if "events" in hook:
            names = self.strings(hook["events"], [*where, "events"])
            unknown = sorted(set(names) - set(choices(AlertEvent)))
            if unknown:
                raise self.fail(
                    [*where, "events"], f"unknown event {unknown[0]!r} (expected {list(choices(AlertEvent))})"
                )
            events = frozenset(AlertEvent(n) for n in names)
        name = hook.get("name", "")
        if not isinstance(name, str):
            raise self.fail([*where, "name"], "must be a string")
        return Webhook(url=url, format=AlertFormat(fmt), events=events, name=name)

    def run_as(self, value: Any) -> tuple[tuple[str, ...] | None, dict[str, str] | None]:
        run_as = self.mapping(value, ["run_as"], frozenset({"allowed", "default"}))
        allowed = self.strings(run_as["allowed"], ["run_as", "allowed"]) if "allowed" in run_as else None
        default = self.run_as_entry(run_as["default"], ["run_as", "default"]) if "default" in run_as else None
        self.check_allowed(default, allowed, ["run_as", "default"])
        return allowed, default

    def environments(self, value: Any, allowed: tuple[str, ...] | None) -> dict[str, dict[str, str]]:
        """Per environment ``run_as.default`` overrides, each in the allow-list too."""
        envs: dict[str, dict[str, str]] = {}
        for name, block in self.mapping(value, ["environments"], None).items():
            where = ["environments", str(name)]
            env_run_as = self.mapping(
                self.mapping(block, where, frozenset({"run_as"})).get("run_as"),
                [*where, "run_as"],
                frozenset({"default"}),
            )
            if "default" in env_run_as:
                envs[str(name)] = self.run_as_entry(env_run_as["default"], [*where, "run_as", "default"])
                self.check_allowed(envs[str(name)], allowed, [*where, "run_as", "default"])
        return envs

    def code_prefixes(self, value: Any) -> tuple[str, ...] | None:
        code = self.mapping(value, ["code_paths"], frozenset({"allowed_prefixes"}))
        if "allowed_prefixes" not in code:
            return None
        prefixes = self.strings(code["allowed_prefixes"], ["code_paths", "allowed_prefixes"])
        for index, prefix in enumerate(prefixes):
            if normalize_code_path(prefix) is None:
                raise self.fail(["code_paths", "allowed_prefixes", index], "must be an absolute path or URI")
        return prefixes

    def grants(self, value: Any) -> tuple[dict[str, str], ...]:
        permissions = self.mapping(value, ["permissions"], frozenset({"default"}))
        where = ["permissions", "default"]
        return tuple(
            self.grant(g, [*where, i]) for i, g in enumerate(self.list_of(permissions.get("default"), where))
        )

    def mass_change(self, value: Any) -> tuple[int, float]:
        mass = self.mapping(value, ["mass_change"], frozenset({"max_jobs", "max_fraction", "allow"}))
        max_jobs = mass.get("max_jobs", MASS_CHANGE_MAX_JOBS)
        if not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 0:
            raise self.fail(["mass_change", "max_jobs"], "must be an integer >= 0")
        fraction = mass.get("max_fraction", MASS_CHANGE_MAX_FRACTION)
        if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction <= 1:
            raise self.fail(["mass_change", "max_fraction"], "must be a number between 0 and 1")
        return max_jobs, float(fraction)

    def list_of(self, value: Any, where: Sequence[str | int]) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, "must be a list")
        return value

    def check_allowed(
        self, entry: Mapping[str, str] | None, allowed: tuple[str, ...] | None, where: Sequence[str | int]
    ) -> None:
        if entry is not None and allowed is not None and run_as_name(entry) not in allowed:
            raise self.fail(where, f"{run_as_name(entry)!r} is not in run_as.allowed")

    def grant(self, value: Any, where: Sequence[str | int]) -> dict[str, str]:
        keys = [k for k in PRINCIPAL_KEYS if isinstance(value, Mapping) and k in value]
        if not isinstance(value, Mapping) or len(keys) != 1 or set(value) != {keys[0], "permission_level"}:
            raise self.fail(
                where,
                "must have exactly one of user_name, group_name, service_principal_name and permission_level",
            )
        if value["permission_level"] not in DEFAULT_GRANT_LEVELS:
            raise self.fail([*where, "permission_level"], f"must be one of {list(DEFAULT_GRANT_LEVELS)}")
        return {keys[0]: str(value[keys[0]]), "permission_level": str(value["permission_level"])}


# -- checks ------------------------------------------------------------------------------------
def run_as_name(run_as: Mapping[str, Any]) -> str:
    """The user name or application id a ``run_as`` block names."""
    for key in RUN_AS_KEYS:
        if run_as.get(key):
            return str(run_as[key])
    return ""


def normalize_code_path(path: str) -> str | None:
    """An absolute path (``..`` resolved, so a prefix cannot be escaped) or ``scheme:/...`` URI
    with no ``..`` segment; None for anything else (relative paths, package names)."""
    if path.startswith("/"):
        normalized = posixpath.normpath(path)
        return normalized + "/" if path.endswith("/") and normalized != "/" else normalized
    scheme, sep, rest = path.partition(":/")
    if sep and scheme.isidentifier() and ".." not in rest.split("/"):
        return path
    return None


def is_allowed_path(path: str, prefixes: Sequence[str]) -> bool:
    normalized = normalize_code_path(path)
    if normalized is None:
        return False
    for prefix in prefixes:
        wanted = normalize_code_path(prefix) or prefix
        # "/Workspace/Shared" allows "/Workspace/Shared/x" but not "/Workspace/SharedX".
        if normalized == wanted.rstrip("/") or normalized.startswith(wanted.rstrip("/") + "/"):
            return True
    return False


def _library_paths(libraries: Any, where: str) -> Iterator[tuple[str, str]]:
    for index, library in enumerate(libraries if isinstance(libraries, list) else []):
        if isinstance(library, Mapping):
            for kind in _PATH_LIBRARY_KINDS:
                if isinstance(library.get(kind), str):
                    yield f"{where}.libraries[{index}].{kind}", library[kind]


def task_code_paths(tc: Mapping[str, Any], where: str = "transformation_config") -> Iterator[tuple[str, str]]:
    """``(field, path)`` of every code file a task (a transformation_config) runs."""
    if isinstance(tc.get("notebook_path"), str):
        yield f"{where}.notebook_path", tc["notebook_path"]
    for block, key in (
        ("sql_task", "sql_file_path"),
        ("spark_python_task", "python_file"),
        ("dbt_task", "project_directory"),
    ):
        value = (tc.get(block) or {}).get(key) if isinstance(tc.get(block), Mapping) else None
        if isinstance(value, str):
            yield f"{where}.{block}.{key}", value
    yield from _library_paths(tc.get("libraries"), where)
    inner = (
        (tc.get("for_each_task") or {}).get("task") if isinstance(tc.get("for_each_task"), Mapping) else None
    )
    if isinstance(inner, Mapping):
        yield from task_code_paths(inner, f"{where}.for_each_task.task")


def module_code_paths(settings: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(field, path)`` of file dependencies of the module's serverless environments."""
    for index, env in enumerate(settings.get("environments") or []):
        spec = env.get("spec") if isinstance(env, Mapping) else None
        for dep_index, dep in enumerate((spec or {}).get("dependencies") or []):
            if not isinstance(dep, str):
                continue
            path = dep[3:].strip() if dep.startswith("-r ") else dep
            if normalize_code_path(path) is not None:
                yield f"environments[{index}].spec.dependencies[{dep_index}]", path


def _source_location(source: Source, control_table: str | None) -> str:
    if source.source_file:
        return f"{source.source_file}:{source.line}" if source.line else source.source_file
    return table_location(control_table, "source_id", source.source_id)


def module_location(module: Module, modules_table: str | None) -> str:
    """Where a module's settings came from: its YAML file, else the modules table."""
    files = sorted({s.source_file for s in module.sources if s.source_file})
    if files:
        return f"{files[0]} module {module.name}"
    return table_location(modules_table, "module_name", module.name)


def policy_issues(
    module: Module,
    policy: Policy,
    *,
    control_table: str | None = None,
    modules_table: str | None = None,
) -> list[MetadataIssue]:
    """Every way ``module`` (with the policy defaults applied) breaks ``policy``."""
    issues: list[MetadataIssue] = []
    where = module_location(module, modules_table)
    run_as = module.settings.get("run_as")
    if policy.run_as_allowed is not None and isinstance(run_as, Mapping):
        name = run_as_name(run_as)
        if name not in policy.run_as_allowed:
            issues.append(
                MetadataIssue(
                    where,
                    "run_as",
                    f"{name!r} is not allowed by the policy {policy.source} (run_as.allowed)",
                    module=module.name,
                )
            )
    if policy.code_prefixes is None:
        return issues
    allowed = ", ".join(policy.code_prefixes)
    for field_name, path in module_code_paths(module.settings):
        if not is_allowed_path(path, policy.code_prefixes):
            issues.append(
                MetadataIssue(
                    where,
                    field_name,
                    f"{path!r} is outside the policy's code_paths.allowed_prefixes ({allowed})",
                    module=module.name,
                )
            )
    for source in module.active_sources:
        for field_name, path in task_code_paths(source.transformation_config):
            if not is_allowed_path(path, policy.code_prefixes):
                issues.append(
                    MetadataIssue(
                        _source_location(source, control_table),
                        field_name,
                        f"source {source.source_id}: {path!r} is outside the policy's "
                        f"code_paths.allowed_prefixes ({allowed})",
                        module=module.name,
                    )
                )
    return issues


def with_policy_defaults(module: Module, policy: Policy, env: str | None = None) -> Module:
    """``module`` with the policy's default ``run_as`` (when it sets none) and default grants
    added to its ``permissions`` (a grant the module already gives the same principal wins)."""
    settings = copy.deepcopy(dict(module.settings))
    default_run_as = policy.run_as_default_for(env)
    if default_run_as is not None and not settings.get("run_as"):
        settings["run_as"] = dict(default_run_as)
    if policy.default_permissions:
        declared = settings.get("permissions")
        acl = list(declared) if isinstance(declared, list) else []
        named = {_principal(e) for e in acl if isinstance(e, Mapping)}
        acl += [dict(g) for g in policy.default_permissions if _principal(g) not in named]
        settings["permissions"] = acl
    return replace(module, settings=settings) if settings != module.settings else module


def _principal(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    for key in PRINCIPAL_KEYS:
        if entry.get(key):
            return key, str(entry[key])
    return None

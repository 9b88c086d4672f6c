"""An in-process HTTP emulator of the Databricks Jobs API 2.2 (plus the workspace and job
permissions endpoints), for tests that drive the real ``databricks.sdk.WorkspaceClient``.

Standard library only. Usage::

    with JobsEmulator() as emu:
        w = WorkspaceClient(config=Config(host=emu.url, token="t"))
        emu.faults.add(Fault(endpoint="jobs/create", kind="drop_after_commit"))
        w.jobs.create(name="x", tasks=[...])   # lands twice: len(emu.jobs()) == 2

Every behaviour the emulator reproduces is listed with its source in docs/API_FACTS.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import email.parser
import email.policy
import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import faults as F
from .faults import Fault, FaultSet
from .jobs_logic import (
    ApiError,
    apply_server_defaults,
    invalid,
    job_not_found,
    merge_update,
    owner_change_denied,
    page_of_settings,
    permission_denied_on_job,
    validate_settings,
)
from .workspace_store import WorkspaceStore

JOB_WRITE_ENDPOINTS = ("jobs/create", "jobs/reset", "jobs/update", "jobs/delete")
PERMISSION_LEVELS = ("CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE")
PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")
DEFAULT_USER = "emulator-user@example.com"
# databricks/cli libs/testserver/permissions.go, "verified against the backend".
ONE_OWNER_MESSAGE = "The job must have exactly one owner."
# Wording not found in any source (docs/API_FACTS.md): only that a group cannot own a job.
GROUP_OWNER_MESSAGE = (
    "Group {} cannot be the owner of a job: only a user or a service principal can be IS_OWNER."
)
SERVICE_PRINCIPAL_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


@dataclass
class RequestRecord:
    method: str
    endpoint: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None  # None when the connection was dropped
    fault: str | None
    # When the request arrived (epoch ms): the benchmarks time a change to its write by it.
    at_ms: int = 0


class _Drop(Exception):
    """Close the connection without a reply."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _b64_token(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _parse_token(token: str, kind: str) -> dict:
    try:
        pad = "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(token + pad))
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError
        return data
    except (ValueError, binascii.Error, json.JSONDecodeError):
        raise invalid(f"Invalid page_token: {token}") from None


def _bool(v: str | None) -> bool:
    return str(v).lower() == "true"


def _int_param(q: dict, name: str, default: int | None = None) -> int | None:
    if name not in q or q[name] == "":
        return default
    try:
        return int(q[name])
    except ValueError:
        raise invalid(f"Invalid value for {name}: {q[name]!r}") from None


class JobsEmulator:
    """Emulated Databricks workspace (Jobs API 2.2, workspace objects, job permissions).

    ``port=0`` picks an ephemeral port; ``url`` is ``http://127.0.0.1:PORT``.
    ``token``: if set, only ``Bearer <token>`` is accepted; otherwise any Bearer token.
    ``host_metadata``: JSON served at ``/.well-known/databricks-config`` (default: 404, which
    the SDK accepts, logging one warning).
    ``user_name`` / ``service_principal``: the caller, as ``/preview/scim/v2/Me`` reports it
    (a service principal's user name is its application id) and as the creator and owner of
    the jobs it creates.
    ``admin``: whether the caller is a workspace admin (``emu.admin = False`` at any time).
    Only an admin may change a job's owner: a permissions PUT or PATCH by anyone else that moves
    ``IS_OWNER`` gets 403 PERMISSION_DENIED (docs, "Jobs access control").
    ``fill_run_as``: also store ``settings.run_as = {"user_name": creator}`` on create when
    the request has none (off by default: see docs/API_FACTS.md).
    ``cluster_policies``: ``{policy_id: {field: value}}``, values a cluster policy injects into a
    ``new_cluster`` that names the policy and omits the field (``custom_tags``,
    ``cluster_log_conf``, ``node_type_id`` ...), as real policies do.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user_name: str = DEFAULT_USER,
        service_principal: bool = False,
        token: str | None = None,
        admin: bool = True,
        fill_run_as: bool = False,
        page_size: int = 100,
        host_metadata: dict | None = None,
        cluster_policies: dict[str, dict[str, Any]] | None = None,
        latency_ms: int = 0,
    ) -> None:
        self._host = host
        self._port = port
        self.user_name = user_name
        self.service_principal = service_principal
        self.token = token
        self.admin = admin
        self.fill_run_as = fill_run_as
        self.page_size = page_size
        self.host_metadata = host_metadata
        self.cluster_policies = dict(cluster_policies or {})
        # Every answer delayed this long, as a workspace's round trip (benchmarks only; tests
        # keep 0 and inject faults instead).
        self.latency_ms = latency_ms
        self.faults = FaultSet()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._reset_state()

    # ------------------------------------------------------------------ lifecycle
    def _reset_state(self) -> None:
        with self._lock:
            self._jobs: dict[int, dict] = {}
            self._runs: dict[int, dict] = {}
            self._run_tokens: dict[str, int] = {}
            self._acls: dict[int, list[dict]] = {}
            self._next_job_id = 1001
            self._next_run_id = 5001
            self.workspace = WorkspaceStore(self.user_name)
            self._counts: Counter = Counter()
            self._writes: Counter = Counter()
            self._log: list[RequestRecord] = []

    def start(self) -> JobsEmulator:
        if self._server is not None:
            return self
        emu = self

        class Handler(_Handler):
            emulator = emu

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> JobsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ------------------------------------------------------------------ counters
    def request_counts(self) -> Counter:
        """Requests received per (METHOD, endpoint), e.g. ``("POST", "jobs/create")``.
        Faulted and dropped requests count too."""
        with self._lock:
            return Counter(self._counts)

    def count(self, endpoint: str, method: str | None = None) -> int:
        with self._lock:
            return sum(
                n for (m, e), n in self._counts.items() if e == endpoint and (method is None or m == method)
            )

    def write_counts(self) -> Counter:
        """Committed job writes per endpoint (jobs/create, jobs/reset, jobs/update, jobs/delete)."""
        with self._lock:
            return Counter(self._writes)

    def writes(self, endpoint: str | None = None) -> int:
        """Number of committed job writes (all four kinds, or one: ``writes("jobs/create")``)."""
        with self._lock:
            if endpoint is None:
                return sum(self._writes.values())
            return self._writes[endpoint]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def reset_counters(self) -> None:
        with self._lock:
            self._counts.clear()
            self._writes.clear()
            self._log.clear()
        self.faults.reset_log()

    def reset(self) -> None:
        """Forget every job, run, permission, workspace object, counter and fault."""
        self.faults.clear()
        self.faults.reset_log()
        self._reset_state()

    # ------------------------------------------------------------------ state helpers
    def jobs(self) -> dict[int, dict]:
        """Snapshot: job_id -> job as ``jobs/get`` would return it (all pages merged)."""
        with self._lock:
            return {jid: copy.deepcopy(j) for jid, j in sorted(self._jobs.items())}

    def job(self, job_id: int) -> dict | None:
        with self._lock:
            j = self._jobs.get(int(job_id))
            return copy.deepcopy(j) if j else None

    def job_ids(self, name: str | None = None) -> list[int]:
        with self._lock:
            return [
                jid
                for jid, j in sorted(self._jobs.items())
                if name is None or j["settings"].get("name", "").casefold() == name.casefold()
            ]

    def add_job(
        self,
        settings: dict,
        *,
        creator_user_name: str = "someone.else@example.com",
        validate: bool = True,
    ) -> int:
        """Create a job out of band (a 'foreign' job made by someone else or another tool).
        No request is counted; faults do not apply."""
        if validate:
            validate_settings(settings)
        with self._lock:
            return self._store_new_job(copy.deepcopy(settings), creator_user_name)

    def edit_job(self, job_id: int, change: dict | Callable[[dict], Any], *, validate: bool = True) -> dict:
        """Simulate a UI edit. ``change`` is either a dict of top-level fields to replace
        (a value of ``None`` removes the field) or a function mutating the settings in place.
        The result is validated like an API write (unless ``validate=False``) and server
        defaults are re-applied. No request is counted. Returns the new settings."""
        with self._lock:
            job = self._jobs.get(int(job_id))
            if job is None:
                raise KeyError(job_id)
            settings = copy.deepcopy(job["settings"])
            if callable(change):
                change(settings)
            else:
                for k, v in change.items():
                    if v is None:
                        settings.pop(k, None)
                    else:
                        settings[k] = copy.deepcopy(v)
            if validate:
                validate_settings(settings)
            job["settings"] = self._stored(settings, job["creator_user_name"])
            return copy.deepcopy(job["settings"])

    def remove_job(self, job_id: int) -> None:
        """Delete a job out of band (e.g. someone deleted it in the UI)."""
        with self._lock:
            self._jobs.pop(int(job_id), None)
            self._acls.pop(int(job_id), None)

    def runs(self, job_id: int | None = None) -> list[dict]:
        with self._lock:
            return [
                copy.deepcopy(r)
                for rid, r in sorted(self._runs.items())
                if job_id is None or r["job_id"] == job_id
            ]

    def add_run(
        self,
        job_id: int,
        *,
        active: bool = True,
        result_state: str = "SUCCESS",
        start_time: int | None = None,
        end_time: int | None = None,
        state_message: str = "",
        trigger: str | None = None,
        life_cycle_state: str | None = None,
        queue_duration: int | None = None,
    ) -> int:
        """Record a run out of band (a scheduled run in progress, or one that already ended):
        times in epoch ms, so tests inject failed, long and queued runs at chosen moments."""
        with self._lock:
            run_id = self._new_run(int(job_id), {})
            run = self._runs[run_id]
            if start_time is not None:
                run["start_time"] = int(start_time)
            if trigger is not None:
                run["trigger"] = trigger
            if queue_duration is not None:
                run["queue_duration"] = int(queue_duration)
            if life_cycle_state is not None:
                run["state"]["life_cycle_state"] = life_cycle_state
                run["status"] = {"state": life_cycle_state}
            if not active:
                self._finish(run_id, result_state, end_time=end_time, state_message=state_message)
            return run_id

    def finish_run(
        self,
        run_id: int,
        result_state: str = "SUCCESS",
        *,
        end_time: int | None = None,
        state_message: str = "",
    ) -> None:
        with self._lock:
            self._finish(int(run_id), result_state, end_time=end_time, state_message=state_message)

    def permissions(self, job_id: int) -> dict:
        with self._lock:
            return self._permissions_body(int(job_id))

    def workspace_objects(self) -> dict[str, dict]:
        """Snapshot: path -> object info (+ raw ``content`` bytes)."""
        with self._lock:
            return self.workspace.snapshot()

    # ------------------------------------------------------------------ internals
    def _stored(self, settings: dict, creator: str) -> dict:
        return apply_server_defaults(settings, user_name=creator, cluster_policies=self.cluster_policies)

    def _store_new_job(self, settings: dict, creator: str, *, keep_acl: bool = False) -> int:
        settings.pop("access_control_list", None)
        if self.fill_run_as and not settings.get("run_as"):
            settings["run_as"] = {"user_name": creator}
        job_id = self._next_job_id
        self._next_job_id += 1
        run_as = settings.get("run_as") or {}
        self._jobs[job_id] = {
            "job_id": job_id,
            "creator_user_name": creator,
            "run_as_user_name": run_as.get("user_name") or run_as.get("service_principal_name") or creator,
            "created_time": _now_ms(),
            "settings": self._stored(settings, creator),
        }
        if not keep_acl:
            self._acls[job_id] = [self._creator_entry("IS_OWNER")]
        return job_id

    def _new_run(self, job_id: int, body: dict) -> int:
        job = self._jobs[job_id]
        run_id = self._next_run_id
        self._next_run_id += 1
        number = 1 + sum(1 for r in self._runs.values() if r["job_id"] == job_id)
        self._runs[run_id] = {
            "run_id": run_id,
            "job_id": job_id,
            "number_in_job": number,
            "creator_user_name": self.user_name,
            "run_name": job["settings"].get("name", "Untitled"),
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "start_time": _now_ms(),
            "state": {"life_cycle_state": "RUNNING", "state_message": ""},
            "status": {"state": "RUNNING"},
            "run_page_url": f"{self.url if self._server else ''}/#job/{job_id}/run/{run_id}",
            **({"job_parameters": body["job_parameters"]} if body.get("job_parameters") else {}),
        }
        return run_id

    def _finish(
        self, run_id: int, result_state: str, *, end_time: int | None = None, state_message: str = ""
    ) -> None:
        run = self._runs[run_id]
        run["state"] = {
            "life_cycle_state": "TERMINATED",
            "result_state": result_state,
            "state_message": state_message,
        }
        run["status"] = {"state": "TERMINATED"}
        run["end_time"] = _now_ms() if end_time is None else int(end_time)
        run["run_duration"] = max(0, run["end_time"] - run["start_time"])

    def _permissions_body(self, job_id: int) -> dict:
        if job_id not in self._jobs:
            raise job_not_found(job_id)
        acl = []
        for entry in self._acls.get(job_id, []):
            item = {k: entry[k] for k in PRINCIPAL_KEYS if k in entry}
            # The service names a user or service principal entry (TS SetPermissions; SDK
            # AccessControlResponse.display_name); a group entry carries no display name there.
            name = entry.get("user_name") or entry.get("service_principal_name")
            if name:
                item["display_name"] = name
            item["all_permissions"] = [{"permission_level": entry["permission_level"], "inherited": False}]
            acl.append(item)
        acl.append(
            {
                "group_name": "admins",
                "all_permissions": [
                    {"permission_level": "CAN_MANAGE", "inherited": True, "inherited_from_object": ["/jobs/"]}
                ],
            }
        )
        return {"object_id": f"/jobs/{job_id}", "object_type": "job", "access_control_list": acl}

    def _job_or_404(self, q_or_body: dict) -> tuple[int, dict]:
        raw = q_or_body.get("job_id")
        if raw in (None, ""):
            raise invalid("Missing required field: job_id")
        try:
            job_id = int(raw)
        except (TypeError, ValueError):
            raise invalid(f"Invalid job_id: {raw!r}") from None
        job = self._jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job_id, job

    # ---------------------------------------------------------------- dispatch
    def handle(self, method: str, endpoint: str, query: dict, body: Any, raw: bytes, headers) -> tuple:
        """Return (status, json_body | bytes, extra_headers). Raises ApiError."""
        route = _ROUTES.get((method, endpoint))
        if route is None and endpoint.startswith("permissions/jobs/"):
            return self._permissions(method, endpoint, body)
        if route is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
        return route(self, query, body, raw, headers)

    # jobs ---------------------------------------------------------------------------
    def _jobs_create(self, q, body, raw, headers):
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        settings = {k: v for k, v in body.items() if k != "access_control_list"}
        validate_settings(settings)
        acl = body.get("access_control_list") or []
        self._validate_acl(acl)
        if acl and not any(e["permission_level"] == "IS_OWNER" for e in acl):
            acl = [*acl, self._creator_entry("IS_OWNER")]  # the creator owns a job created without one
        with self._lock:
            job_id = self._next_job_id
            if acl:
                self._set_acl(job_id, acl)  # checked before the job exists: a rejected create stores nothing
            self._store_new_job(settings, self.user_name, keep_acl=bool(acl))
            self._writes["jobs/create"] += 1
        return 200, {"job_id": job_id}, {}

    def _jobs_reset(self, q, body, raw, headers):
        body = body if isinstance(body, dict) else {}
        with self._lock:
            job_id = body.get("job_id")
            if job_id is None:
                raise invalid("Missing required field: job_id")
            job = self._jobs.get(int(job_id))
            if job is None:
                raise permission_denied_on_job(job_id, self.user_name)
            new = body.get("new_settings")
            if not isinstance(new, dict):
                raise invalid("Missing required field: new_settings")
            validate_settings(new)
            new = copy.deepcopy(new)
            if not new.get("run_as") and job["settings"].get("run_as"):
                new["run_as"] = copy.deepcopy(job["settings"]["run_as"])
            job["settings"] = self._stored(new, job["creator_user_name"])
            self._writes["jobs/reset"] += 1
        return 200, {}, {}

    def _jobs_update(self, q, body, raw, headers):
        body = body if isinstance(body, dict) else {}
        with self._lock:
            job_id = body.get("job_id")
            if job_id is None:
                raise invalid("Missing required field: job_id")
            job = self._jobs.get(int(job_id))
            if job is None:
                raise permission_denied_on_job(job_id, self.user_name)
            new = body.get("new_settings")
            if new is not None and not isinstance(new, dict):
                raise invalid("new_settings must be an object")
            merged = merge_update(job["settings"], new, body.get("fields_to_remove"))
            validate_settings(merged)
            job["settings"] = self._stored(merged, job["creator_user_name"])
            self._writes["jobs/update"] += 1
        return 200, {}, {}

    def _jobs_delete(self, q, body, raw, headers):
        body = body if isinstance(body, dict) else {}
        with self._lock:
            job_id, _ = self._job_or_404(body)
            del self._jobs[job_id]
            self._acls.pop(job_id, None)
            self._writes["jobs/delete"] += 1
        return 200, {}, {}

    def _jobs_get(self, q, body, raw, headers):
        with self._lock:
            job_id, job = self._job_or_404(q)
            page = 0
            if q.get("page_token"):
                tok = _parse_token(q["page_token"], "get")
                if tok.get("job") != job_id:
                    raise invalid(f"Invalid page_token: {q['page_token']}")
                page = int(tok["p"])
            settings, more = page_of_settings(job["settings"], page, self.page_size)
            out = {k: copy.deepcopy(v) for k, v in job.items() if k != "settings"}
            out["settings"] = copy.deepcopy(settings)
            if more:
                out["has_more"] = True
                out["next_page_token"] = _b64_token({"k": "get", "job": job_id, "p": page + 1})
        return 200, out, {}

    def _jobs_list(self, q, body, raw, headers):
        limit = _int_param(q, "limit", 20) or 20
        if limit < 1 or limit > 100:
            raise invalid(f"limit must be between 1 and 100, got {limit}")
        offset = _int_param(q, "offset", 0) or 0
        if q.get("page_token"):
            offset = int(_parse_token(q["page_token"], "list")["o"])
        expand = _bool(q.get("expand_tasks"))
        name = q.get("name")
        with self._lock:
            items = [
                j
                for _, j in sorted(self._jobs.items())
                if name is None or j["settings"].get("name", "").casefold() == name.casefold()
            ]
            page = items[offset : offset + limit]
            jobs_out = []
            for j in page:
                if expand:
                    settings, more = page_of_settings(j["settings"], 0, self.page_size)
                else:
                    settings = {k: v for k, v in j["settings"].items() if k not in ("tasks", "job_clusters")}
                    more = False
                item = {
                    "job_id": j["job_id"],
                    "creator_user_name": j["creator_user_name"],
                    "created_time": j["created_time"],
                    "settings": copy.deepcopy(settings),
                }
                if expand:
                    item["has_more"] = more
                jobs_out.append(item)
        out: dict[str, Any] = {}
        if jobs_out:
            out["jobs"] = jobs_out
        has_more = offset + limit < len(items)
        out["has_more"] = has_more
        if has_more:
            out["next_page_token"] = _b64_token({"k": "list", "o": offset + limit})
        if offset > 0:
            out["prev_page_token"] = _b64_token({"k": "list", "o": max(0, offset - limit)})
        return 200, out, {}

    def _jobs_run_now(self, q, body, raw, headers):
        body = body if isinstance(body, dict) else {}
        with self._lock:
            job_id, _ = self._job_or_404(body)
            token = body.get("idempotency_token")
            if token and token in self._run_tokens:
                return 200, {"run_id": self._run_tokens[token], "number_in_job": 0}, {}
            run_id = self._new_run(job_id, body)
            if token:
                self._run_tokens[token] = run_id
            return 200, {"run_id": run_id, "number_in_job": self._runs[run_id]["number_in_job"]}, {}

    def _runs_list(self, q, body, raw, headers):
        active_only, completed_only = _bool(q.get("active_only")), _bool(q.get("completed_only"))
        if active_only and completed_only:
            raise invalid("active_only and completed_only cannot both be true")
        limit = _int_param(q, "limit", 20)
        limit = 25 if limit == 0 else limit
        if limit is None or limit < 1 or limit > 25:
            raise invalid(f"limit must be between 1 and 25, got {limit}")
        offset = _int_param(q, "offset", 0) or 0
        if q.get("page_token"):
            offset = int(_parse_token(q["page_token"], "runs")["o"])
        job_id = _int_param(q, "job_id")
        start_from, start_to = _int_param(q, "start_time_from"), _int_param(q, "start_time_to")
        with self._lock:
            runs = [
                r
                for _, r in sorted(self._runs.items(), reverse=True)
                if (job_id is None or r["job_id"] == job_id)
                and (start_from is None or r["start_time"] >= start_from)
                and (start_to is None or r["start_time"] <= start_to)
                and (not active_only or r["state"]["life_cycle_state"] != "TERMINATED")
                and (not completed_only or r["state"]["life_cycle_state"] == "TERMINATED")
            ]
            page = copy.deepcopy(runs[offset : offset + limit])
        out: dict[str, Any] = {}
        if page:
            out["runs"] = page
        out["has_more"] = offset + limit < len(runs)
        if out["has_more"]:
            out["next_page_token"] = _b64_token({"k": "runs", "o": offset + limit})
        return 200, out, {}

    def _run_or_404(self, src: dict) -> dict:
        try:
            run_id = int(src.get("run_id"))
        except (TypeError, ValueError):
            raise invalid("Missing or invalid run_id") from None
        run = self._runs.get(run_id)
        if run is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Run {run_id} does not exist.")
        return run

    def _runs_get(self, q, body, raw, headers):
        with self._lock:
            return 200, copy.deepcopy(self._run_or_404(q)), {}

    def _runs_cancel(self, q, body, raw, headers):
        with self._lock:
            run = self._run_or_404(body if isinstance(body, dict) else {})
            if run["state"]["life_cycle_state"] != "TERMINATED":
                self._finish(run["run_id"], "CANCELED")
        return 200, {}, {}

    # permissions -------------------------------------------------------------------------
    def _validate_acl(self, acl: Any) -> None:
        """Shape, levels and group owners; the one-owner count is checked on the result."""
        if not isinstance(acl, list):
            raise invalid("access_control_list must be an array")
        for entry in acl:
            if not isinstance(entry, dict) or sum(1 for k in PRINCIPAL_KEYS if entry.get(k)) != 1:
                raise invalid(
                    "Each access control entry needs exactly one of user_name, group_name, service_principal_name"
                )
            level = entry.get("permission_level")
            if level not in PERMISSION_LEVELS:
                raise invalid(f"Invalid permission level {level!r} for a job")
            if level == "IS_OWNER" and entry.get("group_name"):
                raise invalid(GROUP_OWNER_MESSAGE.format(entry["group_name"]))

    @staticmethod
    def _principal(entry: dict) -> tuple:
        return tuple((k, entry.get(k)) for k in PRINCIPAL_KEYS)

    def _set_acl(self, job_id: int, acl: list[dict], *, replace: bool = True) -> None:
        """PUT (``replace``) or PATCH: entries are upserted by principal, the last level of a
        principal listed twice wins, and the result must name exactly one owner."""
        by_principal = {} if replace else {self._principal(e): e for e in self._acls.get(job_id, [])}
        for entry in acl:
            by_principal[self._principal(entry)] = copy.deepcopy(entry)
        result = list(by_principal.values())
        if sum(e["permission_level"] == "IS_OWNER" for e in result) != 1:
            raise invalid(ONE_OWNER_MESSAGE)
        before = [
            self._principal(e) for e in self._acls.get(job_id, []) if e["permission_level"] == "IS_OWNER"
        ]
        after = [self._principal(e) for e in result if e["permission_level"] == "IS_OWNER"]
        if before and before != after and not self.admin:
            raise owner_change_denied(job_id, self.user_name)
        self._acls[job_id] = result

    def _creator_entry(self, level: str) -> dict:
        key = "service_principal_name" if self.service_principal else "user_name"
        return {key: self.user_name, "permission_level": level}

    def _permissions(self, method: str, endpoint: str, body: Any) -> tuple:
        rest = endpoint[len("permissions/jobs/") :]
        job_part, _, tail = rest.partition("/")
        try:
            job_id = int(job_part)
        except ValueError:
            raise invalid(f"Invalid job id {job_part!r}") from None
        with self._lock:
            if job_id not in self._jobs:
                raise job_not_found(job_id)
            if tail == "permissionLevels" and method == "GET":
                levels = [{"permission_level": lvl, "description": ""} for lvl in PERMISSION_LEVELS]
                return 200, {"permission_levels": levels}, {}
            if tail:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
            if method == "GET":
                return 200, self._permissions_body(job_id), {}
            if method in ("PUT", "PATCH"):
                acl = (body or {}).get("access_control_list") or []
                self._validate_acl(acl)
                self._set_acl(job_id, acl, replace=method == "PUT")
                return 200, self._permissions_body(job_id), {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")

    # workspace -----------------------------------------------------------------------
    def _ws_get_status(self, q, body, raw, headers):
        with self._lock:
            return 200, self.workspace.get_status(q.get("path")), {}

    def _ws_list(self, q, body, raw, headers):
        with self._lock:
            return 200, self.workspace.list(q.get("path")), {}

    def _ws_mkdirs(self, q, body, raw, headers):
        with self._lock:
            return 200, self.workspace.mkdirs((body or {}).get("path")), {}

    def _ws_delete(self, q, body, raw, headers):
        body = body or {}
        with self._lock:
            return 200, self.workspace.delete(body.get("path"), bool(body.get("recursive"))), {}

    def _ws_import(self, q, body, raw, headers):
        ctype = headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            fields = _parse_multipart(ctype, raw)
            content = fields.get("content", b"")
            text = {k: v.decode("utf-8") for k, v in fields.items() if k != "content"}
            with self._lock:
                out = self.workspace.import_(
                    text.get("path"),
                    content,
                    text.get("format"),
                    text.get("language"),
                    _bool(text.get("overwrite")),
                )
            return 200, out, {}
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        with self._lock:
            return 200, self.workspace.import_json(body), {}

    def _ws_export(self, q, body, raw, headers):
        with self._lock:
            obj, out = self.workspace.export(q.get("path"), q.get("format"))
            if _bool(q.get("direct_download")):
                return 200, bytes(obj.content), {"Content-Type": "application/octet-stream"}
        return 200, out, {}

    def _scim_me(self, q, body, raw, headers):
        """The caller: a user, or a service principal whose userName is its application id."""
        me = {"id": "100", "userName": self.user_name, "displayName": self.user_name, "active": True}
        if self.service_principal:
            me["schemas"] = [SERVICE_PRINCIPAL_SCHEMA]
            me["applicationId"] = self.user_name
        else:
            me["schemas"] = [USER_SCHEMA]
        return 200, me, {}


_ROUTES: dict[tuple[str, str], Callable] = {
    ("POST", "jobs/create"): JobsEmulator._jobs_create,
    ("POST", "jobs/reset"): JobsEmulator._jobs_reset,
    ("POST", "jobs/update"): JobsEmulator._jobs_update,
    ("POST", "jobs/delete"): JobsEmulator._jobs_delete,
    ("GET", "jobs/get"): JobsEmulator._jobs_get,
    ("GET", "jobs/list"): JobsEmulator._jobs_list,
    ("POST", "jobs/run-now"): JobsEmulator._jobs_run_now,
    ("GET", "jobs/runs/list"): JobsEmulator._runs_list,
    ("GET", "jobs/runs/get"): JobsEmulator._runs_get,
    ("POST", "jobs/runs/cancel"): JobsEmulator._runs_cancel,
    ("GET", "workspace/get-status"): JobsEmulator._ws_get_status,
    ("GET", "workspace/list"): JobsEmulator._ws_list,
    ("POST", "workspace/mkdirs"): JobsEmulator._ws_mkdirs,
    ("POST", "workspace/delete"): JobsEmulator._ws_delete,
    ("POST", "workspace/import"): JobsEmulator._ws_import,
    ("GET", "workspace/export"): JobsEmulator._ws_export,
    ("GET", "preview/scim/v2/Me"): JobsEmulator._scim_me,
}
# API version served per endpoint family. Jobs: 2.2 only (what SDK 0.156 calls).
_VERSIONS = {"jobs": ("2.2",), "workspace": ("2.0",), "permissions": ("2.0",), "preview": ("2.0",)}


def endpoint_of(path: str) -> str | None:
    """'/api/2.2/jobs/create' -> 'jobs/create'; None for paths the emulator does not serve."""
    parts = path.split("/", 3)
    if len(parts) < 4 or parts[1] != "api":
        return None
    version, rest = parts[2], parts[3]
    family = rest.split("/", 1)[0]
    if version not in _VERSIONS.get(family, ()):
        return None
    return rest.rstrip("/")


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + raw
    )
    fields: dict[str, bytes] = {}
    if not msg.is_multipart():
        raise invalid("Malformed multipart body")
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "JobsEmulator/1.0"
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    emulator: JobsEmulator

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def setup(self) -> None:
        super().setup()
        with self.emulator._conns_lock:
            self.emulator._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.emulator._conns_lock:
                self.emulator._conns.discard(self.connection)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -------------------------------------------------------------------------
    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
            ctype = "application/octet-stream"
        else:
            data = json.dumps(payload).encode("utf-8")
            ctype = "application/json"
        try:
            self.send_response(status)
            hdrs = {"Content-Type": ctype, **(headers or {})}
            for k, v in hdrs.items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _wait_for_client_to_give_up(self, limit: float) -> None:
        """Until the client closes the connection (its read timed out), the emulator stops or
        ``limit`` seconds pass: no fixed delay that a loaded machine could outrun."""
        deadline = time.monotonic() + limit
        while not self.emulator._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:  # end of stream (the client gave up) or an error: either way, done
                return

    def _dispatch(self, method: str) -> None:
        emu = self.emulator
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""

        if path == "/.well-known/databricks-config":
            with emu._lock:
                emu._counts[(method, ".well-known/databricks-config")] += 1
            if emu.host_metadata is not None:
                self._send(200, emu.host_metadata)
            else:
                self._send(404, {"error_code": "NOT_FOUND", "message": "Not found"})
            return

        endpoint = endpoint_of(path) or path.lstrip("/")
        body: Any = None
        if raw and not self.headers.get("Content-Type", "").startswith("multipart/"):
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = None
        record = RequestRecord(method, endpoint, path, query, body, None, None, _now_ms())
        if emu.latency_ms:
            emu._stopping.wait(emu.latency_ms / 1000)
        with emu._lock:
            emu._counts[(method, endpoint)] += 1
            emu._log.append(record)

        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (emu.token is not None and auth != f"Bearer {emu.token}"):
            record.status = 401
            self._send(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
            return

        fault = emu.faults.pick(method, endpoint)
        if fault is not None:
            record.fault = fault.kind
            if self._apply_fault_before(fault, record):
                return

        if raw and body is None and not self.headers.get("Content-Type", "").startswith("multipart/"):
            status, payload, headers = 400, {"error_code": "MALFORMED_REQUEST", "message": "Invalid JSON"}, {}
        elif endpoint_of(path) is None:
            status, payload, headers = (
                404,
                {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{method} {path}'"},
                {},
            )
        else:
            try:
                status, payload, headers = emu.handle(method, endpoint, query, body, raw, self.headers)
            except ApiError as e:
                status, payload, headers = e.status, e.body(), e.headers
            except Exception as e:  # a bug in the emulator: make it visible
                status, payload, headers = 500, {"error_code": "EMULATOR_BUG", "message": repr(e)}, {}

        if fault is not None and fault.kind == F.KIND_DROP_AFTER_COMMIT:
            self._drop()
            return
        if fault is not None and fault.kind == F.KIND_STALL_AFTER_COMMIT:
            self._wait_for_client_to_give_up(fault.delay)
            self._drop()
            return
        record.status = status
        self._send(status, payload, headers)

    def _apply_fault_before(self, fault: Fault, record: RequestRecord) -> bool:
        """Apply a fault that acts before the request is handled. True if the reply is done."""
        kind = fault.kind
        retry_hdr = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if kind == F.KIND_403:  # the caller may not do this (a missing permission)
            record.status = 403
            msg = fault.message or "You do not have permission to perform this action."
            self._send(403, {"error_code": "PERMISSION_DENIED", "message": msg})
            return True
        if kind == F.KIND_429:
            record.status = 429
            msg = fault.message or "Too many requests. Please wait a moment and try again."
            self._send(429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": msg}, retry_hdr)
            return True
        if kind == F.KIND_503:
            record.status = 503
            msg = fault.message or "The service is temporarily unavailable."
            self._send(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": msg}, retry_hdr)
            return True
        if kind == F.KIND_500:
            record.status = 500
            self._send(
                500, {"error_code": "INTERNAL_ERROR", "message": fault.message or F.PERMANENT_500_MESSAGE}
            )
            return True
        if kind == F.KIND_400:
            record.status = 400
            msg = fault.message or "Invalid parameter: the emulator was told to reject this request."
            self._send(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": msg})
            return True
        if kind == F.KIND_JOB_RATE_LIMIT:  # the service's job-creation limit: a 400, not a 429
            record.status = 400
            msg = fault.message or F.JOB_RATE_LIMIT_MESSAGE
            self._send(400, {"error_code": "INVALID_STATE", "message": msg})
            return True
        if kind == F.KIND_500_TRANSIENT:
            record.status = 500
            self._send(
                500, {"error_code": "INTERNAL_ERROR", "message": fault.message or F.TRANSIENT_500_MESSAGE}
            )
            return True
        if kind == F.KIND_DROP_BEFORE:
            self._drop()
            return True
        if kind == F.KIND_SLOW:
            (fault.gate or self.emulator._stopping).wait(fault.delay)
        return False

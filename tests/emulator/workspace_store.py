"""Workspace objects (notebooks, files, directories) for the emulator."""

from __future__ import annotations

import base64
import binascii
import posixpath
import time
from dataclasses import dataclass
from typing import Any

from .jobs_logic import ApiError, invalid

NOTEBOOK_EXTENSIONS = {".py": "PYTHON", ".sql": "SQL", ".scala": "SCALA", ".r": "R"}
LANGUAGE_EXTENSIONS = {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}
NOTEBOOK_HEADERS = (
    b"# Databricks notebook source",
    b"-- Databricks notebook source",
    b"// Databricks notebook source",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def not_found(path: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")


@dataclass
class WsObject:
    path: str
    object_type: str  # DIRECTORY | NOTEBOOK | FILE
    object_id: int
    created_at: int
    modified_at: int
    content: bytes = b""
    language: str | None = None

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "object_type": self.object_type,
            "path": self.path,
            "object_id": self.object_id,
            "resource_id": str(self.object_id),
        }
        if self.object_type != "DIRECTORY":
            out["created_at"] = self.created_at
            out["modified_at"] = self.modified_at
        if self.object_type == "FILE":
            out["size"] = len(self.content)
        if self.language:
            out["language"] = self.language
        return out


class WorkspaceStore:
    """Not thread-safe by itself: the emulator calls it under its lock."""

    def __init__(self, user_name: str) -> None:
        self._objects: dict[str, WsObject] = {}
        self._next_id = 1_000_000
        for d in ("/", "/Users", f"/Users/{user_name}", "/Shared"):
            self._put(d, "DIRECTORY")

    # -- helpers ---------------------------------------------------------------------
    def _put(
        self, path: str, object_type: str, content: bytes = b"", language: str | None = None
    ) -> WsObject:
        now = _now_ms()
        old = self._objects.get(path)
        if old is not None:
            old.object_type, old.content, old.language, old.modified_at = object_type, content, language, now
            return old
        self._next_id += 1
        obj = WsObject(path, object_type, self._next_id, now, now, content, language)
        self._objects[path] = obj
        return obj

    @staticmethod
    def norm(path: Any) -> str:
        if not isinstance(path, str) or not path:
            raise invalid("Path is required")
        if not path.startswith("/"):
            raise invalid(f"Path ({path}) doesn't start with '/'")
        p = posixpath.normpath(path)
        return "/" if p in ("/", "//") else p

    def get(self, path: str) -> WsObject | None:
        return self._objects.get(path)

    def children(self, path: str) -> list[WsObject]:
        prefix = path.rstrip("/") + "/"
        return sorted(
            (
                o
                for p, o in self._objects.items()
                if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]
            ),
            key=lambda o: o.path,
        )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {p: {**o.info(), "content": o.content} for p, o in sorted(self._objects.items())}

    # -- API operations --------------------------------------------------------------
    def get_status(self, path: Any) -> dict:
        p = self.norm(path)
        obj = self._objects.get(p)
        if obj is None:
            raise not_found(p)
        return obj.info()

    def list(self, path: Any) -> dict:
        p = self.norm(path)
        obj = self._objects.get(p)
        if obj is None:
            raise not_found(p)
        objs = [obj] if obj.object_type != "DIRECTORY" else self.children(p)
        return {"objects": [o.info() for o in objs]} if objs else {}

    def mkdirs(self, path: Any) -> dict:
        p = self.norm(path)
        parts = [x for x in p.split("/") if x]
        cur = ""
        for part in parts:
            cur = f"{cur}/{part}"
            obj = self._objects.get(cur)
            if obj is None:
                self._put(cur, "DIRECTORY")
            elif obj.object_type != "DIRECTORY":
                raise ApiError(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    f"Cannot create directory {p}: {cur} exists and is not a directory",
                )
        return {}

    def delete(self, path: Any, recursive: bool) -> dict:
        p = self.norm(path)
        obj = self._objects.get(p)
        if obj is None:
            raise not_found(p)
        if p == "/":
            raise invalid("Cannot delete the root folder")
        if obj.object_type == "DIRECTORY":
            prefix = p + "/"
            below = [q for q in self._objects if q.startswith(prefix)]
            if below and not recursive:
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"Folder ({p}) is not empty")
            for q in below:
                del self._objects[q]
        del self._objects[p]
        return {}

    def import_(
        self, path: Any, content: bytes, fmt: str | None, language: str | None, overwrite: bool
    ) -> dict:
        p = self.norm(path)
        fmt = (fmt or "SOURCE").upper()
        ext = posixpath.splitext(p)[1].lower()
        if fmt == "SOURCE":
            if not language:
                raise invalid(f"To import {p} as SOURCE you must set the language field (or use format AUTO)")
            target, otype, lang = p, "NOTEBOOK", language.upper()
        elif fmt == "AUTO":
            is_nb = ext in NOTEBOOK_EXTENSIONS and content.lstrip().startswith(NOTEBOOK_HEADERS)
            if is_nb:
                target, otype, lang = p[: -len(ext)], "NOTEBOOK", NOTEBOOK_EXTENSIONS[ext]
            elif ext == ".ipynb":
                target, otype, lang = p[: -len(ext)], "NOTEBOOK", "PYTHON"
            else:
                target, otype, lang = p, "FILE", None
        elif fmt == "RAW":
            target, otype, lang = p, "FILE", None
        elif fmt == "JUPYTER":
            target = p[: -len(ext)] if ext == ".ipynb" else p
            otype, lang = "NOTEBOOK", (language or "PYTHON").upper()
        else:
            raise invalid(f"The emulator does not support import format {fmt}")
        if lang is not None and lang not in LANGUAGE_EXTENSIONS:
            raise invalid(f"Invalid language {lang}")
        parent = posixpath.dirname(target) or "/"
        pobj = self._objects.get(parent)
        if pobj is None or pobj.object_type != "DIRECTORY":
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"The parent folder ({parent}) does not exist.")
        existing = self._objects.get(target)
        if existing is not None:
            if existing.object_type == "DIRECTORY":
                raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"{target} already exists and is a directory.")
            if not overwrite:
                raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"{target} already exists.")
        self._put(target, otype, content, lang)
        return {}

    def import_json(self, body: dict) -> dict:
        raw = body.get("content") or ""
        try:
            content = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError, TypeError) as e:
            raise invalid(f"content is not valid base64: {e}") from None
        return self.import_(
            body.get("path"), content, body.get("format"), body.get("language"), bool(body.get("overwrite"))
        )

    def export(self, path: Any, fmt: str | None) -> tuple[WsObject, dict]:
        p = self.norm(path)
        obj = self._objects.get(p)
        if obj is None:
            raise not_found(p)
        if obj.object_type == "DIRECTORY":
            raise invalid("The emulator does not export directories")
        file_type = LANGUAGE_EXTENSIONS.get(obj.language or "", "") if obj.object_type == "NOTEBOOK" else ""
        if obj.object_type == "FILE":
            file_type = posixpath.splitext(p)[1].lstrip(".")
        out = {"content": base64.b64encode(obj.content).decode("ascii")}
        if file_type:
            out["file_type"] = file_type
        return obj, out

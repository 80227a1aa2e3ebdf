"""Helpers for replication tests: instances with their own databases, and a
transport that plugs two in-process cores together through the same protocol
functions the REST doors call (optionally failing, duplicating or reordering)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataferry.errors import TransientError
from dataferry.records.model import loads
from dataferry.records.protocol import ProtocolService
from dataferry.records.service import PROTOCOL
from tests.support.databases import PostgresDatabases, sqlite_url

TOKENS = {name: f"token-{name}-0123456789abcdef" for name in ("a", "b", "c", "d")}


def own_database(tmp_path: Path, postgres: PostgresDatabases | None, name: str) -> str:
    if postgres is not None:
        return postgres.clone()
    folder = tmp_path / f"db-{name}"
    folder.mkdir(exist_ok=True)
    return sqlite_url(folder)


def instance_env(name: str, **extra: str) -> dict[str, str]:
    return {
        "DATAFERRY_TOKENS": json.dumps([TOKENS[name]]),
        "DATAFERRY_TOKEN": TOKENS[name],
        "DATAFERRY_RECORDS__SYNC_INTERVAL": "0",
        **extra,
    }


class LocalTransport:
    """Talks to another in-process instance's ``ProtocolService``.

    ``fault(call, phase)`` may raise to simulate a network cut: phase "before"
    (the request never arrives) or "after" (it was applied, the answer was lost)."""

    def __init__(
        self,
        remote: ProtocolService,
        fault: Callable[[str, str], None] | None = None,
        protocol: int = PROTOCOL,
    ) -> None:
        self.remote = remote
        self.protocol = protocol  # 1: as an instance that speaks only version 1 would
        self.fault = fault or (lambda call, phase: None)
        self.sent: list[bytes] = []  # push bodies, for replaying duplicates

    def close(self) -> None:
        pass

    def _around(self, call: str, fn: Callable[[], Any]) -> Any:
        self.fault(call, "before")
        result = fn()
        self.fault(call, "after")
        return result

    def hello(self) -> dict[str, Any]:
        result: dict[str, Any] = self._around("hello", self.remote.hello)
        return result

    def pull(
        self, collection: str, requester: str, since: int, limit: int, max_bytes: int
    ) -> dict[str, Any]:
        body = {
            "protocol": self.protocol,
            "collection": collection,
            "requester": requester,
            "since": since,
            "limit": limit,
            "max_bytes": max_bytes,
        }
        result: dict[str, Any] = self._around("pull", lambda: loads(self.remote.pull(body)))
        return result

    def checkpoint(self, collection: str, source: str) -> dict[str, Any]:
        result: dict[str, Any] = self._around(
            "checkpoint", lambda: self.remote.checkpoint(collection, source)
        )
        return result

    def fetch(self, collection: str, uuids: list[str]) -> list[dict[str, Any]]:
        body = {"protocol": self.protocol, "collection": collection, "uuids": uuids}
        result: list[dict[str, Any]] = self._around(
            "fetch", lambda: loads(self.remote.fetch(body))["changes"]
        )
        return result

    def push(self, collection: str, body: bytes) -> dict[str, Any]:
        self.sent.append(body)
        result: dict[str, Any] = self._around("push", lambda: self.remote.push(body))
        return result


def cut(message: str = "network cut") -> TransientError:
    return TransientError(message)

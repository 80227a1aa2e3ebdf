"""One real server per test module for the ingest tables, with a policy and limits
configured, and a real external policy service on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.databases import PostgresDatabases, sqlite_url
from tests.support.server import Server

MiB = 1024 * 1024

INGEST_ENV = {
    "DATAFERRY_INGEST__ALLOWED_PROJECTS": '["p1", "p2"]',
    "DATAFERRY_INGEST__MAX_UPLOAD_BYTES": str(8 * MiB),
    "DATAFERRY_INGEST__MAX_COMPRESSION_RATIO": "50",
    "DATAFERRY_INGEST__MAX_UNPACKED_BYTES": str(64 * MiB),
}


class PolicyHandler(BaseHTTPRequestHandler):
    """Accepts every bundle except those tagged ``forbidden``; records what it saw."""

    seen: list[Any] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        doc = json.loads(body)
        PolicyHandler.seen.append(doc)
        refused = any(isinstance(e, dict) and e.get("value") == "forbidden" for e in doc)
        answer = (
            {"status": "error", "message": "tag 'forbidden' is not accepted here"}
            if refused
            else {"status": "success"}
        )
        data = json.dumps(answer).encode()
        self.send_response(412 if refused else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def policy_service() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), PolicyHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/ingest"
    finally:
        httpd.shutdown()
        httpd.server_close()


def start_server(folder: Path, postgres: PostgresDatabases | None, env: dict[str, str]) -> Server:
    db = postgres.clone() if postgres is not None else sqlite_url(folder)
    return Server(folder / "home", db, env).start()


def counts(server: Server) -> tuple[int, list[str]]:
    """(transactions recorded, files in the archive) — unchanged by a refused bundle."""
    total = httpx.get(f"{server.url}/api/v1/transactions", timeout=10).json()["total"]
    root = server.home / "archive"
    files = sorted(p.as_posix() for p in root.rglob("*")) if root.exists() else []
    return total, files


def spool_entries(server: Server) -> list[str]:
    root = server.home / "spool" / "ingest"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []

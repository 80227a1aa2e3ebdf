"""A partner's web service on a loopback port: accepts one JSON document per request
and can fail in every way a real one does (500s, resets, timeouts, slow answers)."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# What the receiver does with one request.
ACCEPT = "accept"  # apply, answer 200
FAIL_500 = "500"  # answer 500 without applying
RESET = "reset"  # drop the connection without applying
APPLY_RESET = "apply-reset"  # apply, then drop the connection (the answer is lost)
APPLY_TIMEOUT = "apply-timeout"  # apply, answer after the client gave up
SLOW = "slow"  # apply, answer 200 late but in time
GARBAGE = "garbage"  # apply, answer 200 with a body that is not JSON


@dataclass
class Received:
    id: str
    status: str
    idempotency_key: str
    document: dict[str, Any]
    applied: bool


@dataclass
class Receiver:
    """``choose(document) -> action`` decides each request's fate (default: accept)."""

    choose: Callable[[dict[str, Any]], str] = lambda doc: ACCEPT
    timeout_sleep: float = 1.5
    slow_sleep: float = 0.05
    on_apply: Callable[[dict[str, Any]], None] | None = None
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[Received] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    redirect_to: str = ""

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/vettings"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if receiver.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    doc = json.loads(raw)
                except ValueError:
                    self._answer(400, b"not json")
                    return
                action = receiver.choose(doc)
                if action in (FAIL_500, RESET):
                    receiver.record(doc, dict(self.headers), applied=False)
                    if action == FAIL_500:
                        self._answer(500, b"internal error")
                    else:
                        self._reset()
                    return
                receiver.record(doc, dict(self.headers), applied=True)
                if action == APPLY_RESET:
                    self._reset()
                elif action == APPLY_TIMEOUT:
                    time.sleep(receiver.timeout_sleep)
                    self._answer(200, b'{"ok": true}')
                elif action == SLOW:
                    time.sleep(receiver.slow_sleep)
                    self._answer(200, b'{"ok": true}')
                elif action == GARBAGE:
                    self._answer(200, b"<html>thanks!</html>")
                else:
                    self._answer(200, b'{"ok": true}')

            def _answer(self, code: int, body: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True

            def _reset(self) -> None:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def record(self, doc: dict[str, Any], headers: dict[str, str], applied: bool) -> None:
        with self.lock:
            key = str(doc.get("id"))
            lowered = {k.lower(): v for k, v in headers.items()}
            self.headers.append(lowered)
            self.log.append(
                Received(
                    key, str(doc.get("status")), lowered.get("idempotency-key", ""), doc, applied
                )
            )
            if applied:
                if doc.get("status") == "deleted":
                    self.state.pop(key, None)
                else:
                    self.state[key] = doc
                if self.on_apply is not None:
                    self.on_apply(doc)

    def applied(self, key: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.log if r.applied and (key is None or r.id == key)]

    def requests(self, key: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.log if key is None or r.id == key]


def chaos(seed: int, failure_rate: float = 0.3) -> Callable[[dict[str, Any]], str]:
    """A receiver policy failing at random in every way, reproducibly."""
    rng = random.Random(seed)
    lock = threading.Lock()
    bad = [FAIL_500, FAIL_500, RESET, APPLY_RESET, APPLY_TIMEOUT, SLOW, GARBAGE]

    def choose(doc: dict[str, Any]) -> str:
        with lock:
            if rng.random() < failure_rate:
                return rng.choice(bad)
            return ACCEPT

    return choose

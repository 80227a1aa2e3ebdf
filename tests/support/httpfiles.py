"""A small HTTP file server on a free loopback port for HTTP-source tests: serves a
folder with ``Range`` support, counts the bytes it sends, and can be told to stall
mid-file, to ignore ranges, or to fail a number of requests first."""

from __future__ import annotations

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.services import free_port


class FileServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bytes_sent = 0
        self.ranges: list[str] = []  # Range headers of GET requests, in order
        self.ranges_supported = True
        self.fail_next = 0  # answer this many GETs with 503 first
        self.stall_after: int | None = None  # stop sending after this many body bytes
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.token = ""  # when set, require "Authorization: Bearer <token>"
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _target(self) -> Path | None:
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                path = (server.root / rel).resolve()
                if not str(path).startswith(str(server.root.resolve())) or not path.is_file():
                    return None
                return path

            def _refuse(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _allowed(self) -> bool:
                if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._refuse(401)
                    return False
                return True

            def do_HEAD(self) -> None:
                if not self._allowed():
                    return
                path = self._target()
                if path is None:
                    return self._refuse(404)
                self.send_response(200)
                self.send_header("Content-Length", str(path.stat().st_size))
                if server.ranges_supported:
                    self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

            def do_GET(self) -> None:
                if not self._allowed():
                    return
                with server.lock:
                    if server.fail_next > 0:
                        server.fail_next -= 1
                        return self._refuse(503)
                path = self._target()
                if path is None:
                    return self._refuse(404)
                size = path.stat().st_size
                start = 0
                header = self.headers.get("Range", "")
                with server.lock:
                    server.ranges.append(header)
                end = size - 1
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", header)
                if m and server.ranges_supported and int(m.group(1)) < size:
                    start = int(m.group(1))
                    end = min(int(m.group(2) or end), end)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end + 1 - start))
                self.end_headers()
                with open(path, "rb") as f:
                    f.seek(start)
                    sent = 0
                    while block := f.read(min(256 * 1024, end + 1 - start - sent)):
                        if (
                            server.stall_after is not None
                            and sent + len(block) > server.stall_after
                        ):
                            block = block[: max(0, server.stall_after - sent)]
                            self._send(block)
                            server.stalled.set()
                            server.release.wait(120)
                            self.close_connection = True
                            return
                        self._send(block)
                        sent += len(block)

            def _send(self, block: bytes) -> None:
                try:
                    self.wfile.write(block)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                with server.lock:
                    server.bytes_sent += len(block)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FileServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n

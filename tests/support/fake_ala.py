"""A fake Atlas of Living Australia on a free loopback port: the biocache's
``ws/webportal/occurrences.gz`` and the species service's ``species/<lsid>.json``.
Modes: ``ok``, ``flaky`` (the first two occurrence requests get 503), ``garbage``
(the occurrences are not gzip), ``missing`` (the species is unknown: 404)."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.services import free_port

CSV = "raw_taxon_name,longitude,latitude\n" + "".join(
    f"Litoria fallax,{150 + i / 100:.2f},{-33 - i / 100:.2f}\n" for i in range(250)
)


class FakeALA:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.requests: list[str] = []
        self.failures_left = 2 if mode == "flaky" else 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with fake.lock:
                    fake.requests.append(self.path)
                if parts.path == "/ws/webportal/occurrences.gz":
                    if fake.mode == "missing":
                        return self._send(404, b"not found", "text/plain")
                    with fake.lock:
                        if fake.failures_left > 0:
                            fake.failures_left -= 1
                            return self._send(503, b"busy", "text/plain")
                    if fake.mode == "garbage":
                        return self._send(200, b"<html>oops</html>" * 20, "application/gzip")
                    return self._send(200, gzip.compress(CSV.encode()), "application/gzip")
                if parts.path.startswith("/ws/species/") and parts.path.endswith(".json"):
                    if fake.mode == "missing":
                        return self._send(404, b"{}", "application/json")
                    lsid = unquote(parts.path[len("/ws/species/") : -len(".json")])
                    doc = {"taxonConcept": {"guid": lsid, "nameString": "Litoria fallax"}}
                    return self._send(200, json.dumps(doc).encode(), "application/json")
                self._send(404, b"", "text/plain")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATAFERRY_ALA__BIOCACHE_URL": self.url,
            "DATAFERRY_ALA__BIE_URL": self.url + "ws/",
        }

    def start(self) -> FakeALA:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

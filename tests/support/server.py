"""A real ``dataferry serve`` subprocess on a free loopback port, and the real CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from dataferry.client import FINAL_STATES, Client
from tests.support.services import free_port

# Fast timings so crash and retry tests finish in seconds.
FAST_ENV = {
    "DATAFERRY_JOBS__TICK_SECONDS": "0.3",
    "DATAFERRY_JOBS__LEASE_SECONDS": "3",
    "DATAFERRY_JOBS__BACKOFF_BASE": "0.2",
    "DATAFERRY_JOBS__BACKOFF_CAP": "1",
    "DATAFERRY_JOBS__PROGRESS_INTERVAL": "0.2",
}


# A line of uvicorn's access log: ... - "PUT /api/v1/x?y=1 HTTP/1.1" 200 OK
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>[0-9]{3})')

# Ports tried when another process takes the chosen one first.
PORT_TRIES = 5


class Server:
    def __init__(
        self,
        home: Path,
        database_url: str,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.home = home
        # "info" logs every request (uvicorn's access log) into ``self.log``
        self.log_level = log_level
        self.port = port or free_port()
        self.port_given = port is not None
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATAFERRY_HOME": str(home),
            "DATAFERRY_DATABASE_URL": database_url,
            "DATAFERRY_PORT": str(self.port),
            "DATAFERRY_URL": self.url,
            **FAST_ENV,
            **(extra_env or {}),
        }
        self.env.pop("DATAFERRY_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / f"serve-{self.port}.log"

    def start(self, timeout: float = 30.0) -> Server:
        # free_port() only finds a port that was free: a server of a parallel test may
        # take it first. Then this one cannot bind and exits; start again elsewhere.
        for _ in range(1 if self.port_given else PORT_TRIES):
            if self._start(timeout):
                return self
            if not self.port_given:
                self._use_port(free_port())
        raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env.update({"DATAFERRY_PORT": str(port), "DATAFERRY_URL": self.url})

    def _ours(self, response: httpx.Response) -> bool:
        """A health answer from this server's process, not another test's on the port."""
        assert self.proc is not None
        node = str(response.json().get("node", ""))
        named = self.env.get("DATAFERRY_NODE_NAME")
        return node == named if named else node.endswith(f":{self.proc.pid}")

    def _start(self, timeout: float) -> bool:
        """True once the server answers; False if it could not bind its port."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            logged_before = log.tell()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dataferry", "serve", "--log-level", self.log_level],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(self.log, "rb") as log:
                    log.seek(logged_before)
                    if b"address already in use" in log.read():
                        return False
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=1)
                if response.status_code == 200 and self._ours(response):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def requests(self, prefix: str = "/") -> list[tuple[str, str, int]]:
        """``(method, target, status)`` of every request whose target (path and query)
        starts with ``prefix`` that this server answered, in order: read from uvicorn's
        access log, which it writes with ``log_level="info"``."""
        found = []
        for m in ACCESS_LINE.finditer(self.log.read_text(errors="replace")):
            if m["target"].startswith(prefix):
                found.append((m["method"], m["target"], int(m["status"])))
        return found

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def client(self, token: str = "") -> Client:
        return Client(self.url, token or self.env.get("DATAFERRY_TOKEN", ""))

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120, env_columns: int = 0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``dataferry`` CLI against this server."""
        env = {**self.env, "COLUMNS": str(env_columns)} if env_columns else self.env
        result = subprocess.run(
            [sys.executable, "-m", "dataferry", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dataferry {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str, check: bool = True) -> Any:
        return json.loads(self.cli(*args, "--json", check=check).stdout)

    def wait_job(
        self, job_id: int, timeout: float = 120, states: frozenset[str] = FINAL_STATES
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                # Waiting for the end: a long poll, answered as soon as it comes.
                # Other states (running, retrying) are polled.
                doc = c.job(job_id, wait=0 if states - FINAL_STATES else 5.0)
                if doc["state"] in states:
                    return doc
                if time.monotonic() > deadline:
                    raise AssertionError(f"job {job_id} still {doc} after {timeout}s")
                if states - FINAL_STATES:
                    time.sleep(0.1)

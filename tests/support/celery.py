"""Celery for tests: the executor selected for this run, a real broker, and real
``dataferry worker`` / ``dataferry beat`` processes.

``DATAFERRY_TEST_EXECUTOR=celery`` runs the job tests (marker ``executors``) with
Celery workers; ``DATAFERRY_TEST_BROKER_URL`` picks the broker (default: Redis on
127.0.0.1:6379, database 7). Each test gets its own queue prefix, so test runs
sharing a broker never take each other's messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.services import port_open, unavailable

EXECUTOR_ENV = "DATAFERRY_TEST_EXECUTOR"
BROKER_ENV = "DATAFERRY_TEST_BROKER_URL"
DEFAULT_BROKER = "redis://127.0.0.1:6379/7"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def selected_executor() -> str:
    value = os.environ.get(EXECUTOR_ENV, "inline")
    if value not in ("inline", "celery"):
        raise ValueError(f"{EXECUTOR_ENV} must be inline or celery, not {value!r}")
    return value


def broker_url() -> str:
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER


def require_broker(url: str) -> None:
    """Skip (fail under CI) unless the broker at ``url`` accepts connections."""
    parts = urlsplit(url)
    port = parts.port or (6379 if parts.scheme.startswith("redis") else 5672)
    if not port_open(parts.hostname or "127.0.0.1", port):
        unavailable(f"the Celery broker at {parts.hostname}:{port} is not reachable")


def celery_env(broker: str, prefix: str | None = None) -> dict[str, str]:
    """Environment that makes a dataferry process use Celery on ``broker``."""
    return {
        "DATAFERRY_EXECUTOR": "celery",
        "DATAFERRY_BROKER_URL": broker,
        "DATAFERRY_CELERY__QUEUE_PREFIX": prefix or new_prefix(),
        "DATAFERRY_CELERY__REDISPATCH_SECONDS": "2",
    }


def new_prefix() -> str:
    return f"dftest-{uuid.uuid4().hex[:10]}"


def purge_prefix(broker: str, prefix: str) -> None:
    """Delete this test's Redis queues (duplicates the atomic claim ignored)."""
    if not broker.startswith("redis"):
        return
    import redis

    client = redis.Redis.from_url(broker)
    try:
        keys = list(client.scan_iter(match=f"{prefix}.*", count=1000))
        keys += list(client.scan_iter(match=f"_kombu.binding.{prefix}.*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class Worker:
    """A real ``dataferry worker`` (or ``beat``) subprocess sharing a test's settings."""

    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        args: list[str],
        name: str = "worker",
        python: list[str] | None = None,
    ) -> None:
        self.home = home
        self.env = {**env}
        self.env.pop("DATAFERRY_CONFIG", None)
        self.args = args
        # What the interpreter runs before ``args``: the dataferry command line.
        self.python = python or ["-m", "dataferry"]
        self.log = home / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: str = " ready: ", timeout: float = 60) -> Worker:
        return self.launch().wait_ready(ready, timeout)

    def launch(self) -> Worker:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.python, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, ready: str = " ready: ", timeout: float = 60) -> Worker:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.text()[-3000:]}")
            if ready in self.text():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.args} did not start:\n{self.text()[-3000:]}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code


class WorkerGroup:
    """The workers and beat of one test; all stopped at the end of the test."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.started: list[Worker] = []

    def worker(self, *args: str, name: str = "worker") -> Worker:
        return self.workers([*args], name=name)[0]

    def workers(self, *argvs: list[str], name: str = "worker") -> list[Worker]:
        """Start workers side by side (each ``argv`` after ``worker``); wait until all are ready."""
        return [w.wait_ready() for w in self.launch(*argvs, name=name)]

    def launch(self, *argvs: list[str], name: str = "worker") -> list[Worker]:
        """Start workers without waiting (call ``wait_ready`` on each)."""
        started = [Worker(self.home, self.env, ["worker", *a], name=name) for a in argvs]
        for w in started:
            self.started.append(w.launch())
        return started

    def beat(self) -> Worker:
        w = Worker(self.home, self.env, ["beat"], name="beat").start(ready="dataferry beat ")
        self.started.append(w)
        return w

    def stop(self) -> None:
        """SIGTERM all at once (a warm shutdown), then SIGKILL whatever still runs."""
        live = [w for w in self.started if w.proc is not None and w.proc.poll() is None]
        for w in live:
            assert w.proc is not None
            w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for w in live:
            assert w.proc is not None
            with suppress(subprocess.TimeoutExpired):
                w.proc.wait(max(0.1, deadline - time.monotonic()))
        for w in self.started:
            w.kill(signal.SIGKILL)


@contextmanager
def embedded_workers(
    core: Any, queues: list[str], concurrency: int = 4, tick: bool = True
) -> Iterator[None]:
    """A real Celery worker inside this process (thread pool, real broker), for
    tests that register job kinds in-process; plus the scheduler tick thread."""
    from celery.contrib.testing.worker import start_worker

    from dataferry.jobs.executors.celery import install_tasks, make_celery

    # A Celery app of its own: a worker's queue selection is kept on its app, so two
    # workers of one app in one process could both end up consuming the same queue.
    app = make_celery(core.settings)
    install_tasks(app, core)
    names = [core.settings.celery.broker_queue(q) for q in queues]
    with start_worker(
        app,
        concurrency=concurrency,
        pool="threads",
        perform_ping_check=False,
        queues=names,
        loglevel="WARNING",
        shutdown_timeout=120,  # a loaded machine can take long to stop a worker thread
    ):
        if tick:
            core.scheduler.start()
        yield


def registered_queues(home: Path) -> list[str]:
    """Every job queue the capabilities register (what a worker should consume)."""
    from cryptography.fernet import Fernet

    from dataferry.app import Core
    from dataferry.config import Settings

    core = Core(
        Settings(
            home=home,
            database_url="sqlite:///:memory:",
            secret_key=Fernet.generate_key().decode(),
        )
    )
    try:
        return core.registry.queues()
    finally:
        core.stop()


class PrivateRedis:
    """A redis-server of the test's own on a free port (nothing kept on disk), so a
    test can stop and start its broker without touching the shared one."""

    def __init__(self, folder: Path) -> None:
        from tests.support.services import free_port

        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> PrivateRedis:
        import shutil

        exe = shutil.which("redis-server")
        if exe is None:
            unavailable("redis-server is not installed (apt-get install redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [str(exe), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with open(self.folder / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port, timeout=0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as abrupt as a crash: every queued message is gone
            self.proc.wait(10)
        self.proc = None


def quick_kind_worker(settings: Any, queue: str, ready: Any, stop: Any) -> None:
    """A process of its own running one embedded worker for a job kind "quick" on
    ``queue`` (Celery's in-process test workers share one event loop hub, so two in
    one process can stall each other). Started with multiprocessing's spawn."""
    from dataferry.app import build
    from dataferry.jobs.registry import JobKind

    core = build(settings)
    core.registry.register(JobKind("quick", _quick, queue=queue))
    core.use_celery()
    try:
        with embedded_workers(core, [queue], concurrency=1, tick=False):
            ready.set()
            stop.wait(300)
    finally:
        core.stop()


def _quick(ctx: Any) -> dict[str, bool]:
    return {"ok": True}

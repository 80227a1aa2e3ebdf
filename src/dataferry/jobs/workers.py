"""Celery worker and beat processes: ``dataferry worker`` and ``dataferry beat``.

One Celery worker process consumes one or more job queues with a thread pool
(jobs are I/O-bound; threads keep a process's jobs in one place, so killing the
process stops them all and their leases expire). Without ``--queues``,
``dataferry worker`` runs one such process per job queue, each with that queue's
concurrency, so a flood of one kind of job cannot starve another.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataferry.errors import InvalidRequest

if TYPE_CHECKING:
    from dataferry.app import Core
    from dataferry.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    """One Celery worker process: the job queues it consumes and its thread count."""

    queues: tuple[str, ...]
    concurrency: int


def plan_workers(
    settings: Settings,
    known: list[str],
    queues: list[str] | None,
    concurrency: int | None,
) -> list[WorkerPlan]:
    """Which worker processes to run. ``known`` are the registered job queues."""
    if queues:
        unknown = sorted(set(queues) - set(known))
        if unknown:
            raise InvalidRequest(
                f"unknown queue(s) {', '.join(unknown)}; known queues: {', '.join(known)}"
            )
        wanted = tuple(dict.fromkeys(queues))
        n = concurrency or sum(settings.celery.concurrency_of(q) for q in wanted)
        return [WorkerPlan(wanted, n)]
    return [WorkerPlan((q,), concurrency or settings.celery.concurrency_of(q)) for q in known]


@dataclass(frozen=True, slots=True)
class WorkerEnd:
    """How a Celery worker ended: its exit code, and whether it stopped on an error
    of its own after it was ready (nobody asked it to stop): then it should run again."""

    code: int
    crashed: bool


# Consecutive restarts of a worker that crashed soon after starting, carried across
# the exec (outside the DATAFERRY_ prefix: it is not a setting).
RESTARTS_ENV = "_DATAFERRY_WORKER_RESTARTS"
STEADY_SECONDS = 60.0  # a worker that ran this long before crashing restarts at once


def run_worker(core: Core, plan: WorkerPlan, *, beat: bool, loglevel: str) -> WorkerEnd:
    """Run one Celery worker in this process until it stops."""
    from celery import signals

    from dataferry.jobs.executors.celery import install_tasks

    settings = core.settings
    core.use_celery()  # the tick's re-dispatches go to the broker
    app = core.celery
    install_tasks(app, core)
    broker_queues = [settings.celery.broker_queue(q) for q in plan.queues]
    broker_queues.append(settings.celery.tick_queue)

    def ready(**_: object) -> None:
        # Tests and operators wait for this line.
        print(
            f"dataferry worker {core.node} ready: queues {','.join(plan.queues)} "
            f"concurrency {plan.concurrency}{' with beat' if beat else ''}",
            flush=True,
        )

    started: list[float] = []
    asked: list[bool] = []

    def on_ready(**kw: object) -> None:
        started.append(time.monotonic())
        ready(**kw)

    def on_shutting_down(**_: object) -> None:
        asked.append(True)  # SIGTERM, SIGINT or SIGQUIT: a stop we were asked for
        # Running jobs stop at their next check and go back to the queue, instead of
        # holding the warm shutdown until they end.
        core.runner.stopping.set()

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutting_down, weak=False)
    worker = app.Worker(
        hostname=f"dataferry-{'+'.join(plan.queues)}@{core.node}",
        queues=broker_queues,
        concurrency=plan.concurrency,
        pool="threads",
        beat=beat,
        schedule_filename=str(settings.home / "celerybeat-schedule"),
        loglevel=loglevel.upper(),
        without_mingle=True,
        without_gossip=True,
        quiet=True,
    )
    worker.start()
    code = int(worker.exitcode or 0)
    # Celery gives up on some errors it could survive: kombu 5.7's Redis transport
    # can raise AttributeError while it closes a connection the broker dropped, and
    # the worker then stops with "Unrecoverable error". It was running fine until
    # then, so run it again rather than leave the queue without a consumer.
    crashed = code != 0 and bool(started) and not asked
    if crashed:
        ran = time.monotonic() - started[0]
        log.error("the Celery worker stopped on an error after %.0f s; starting it again", ran)
        if ran >= STEADY_SECONDS:
            os.environ.pop(RESTARTS_ENV, None)
    return WorkerEnd(code, crashed)


def restart_process() -> None:
    """Replace this process with a fresh ``dataferry`` run of the same command line
    (same pid, so a service manager or a test still sees the worker it started).
    Waits 1, 2, 4 ... 60 s first if it keeps crashing soon after starting."""
    n = int(os.environ.get(RESTARTS_ENV, "0") or 0)
    for sig in (signal.SIGTERM, signal.SIGINT):  # a stop asked for meanwhile ends it
        signal.signal(sig, signal.SIG_DFL)
    time.sleep(min(60.0, 2.0**n) if n else 0.5)
    os.environ[RESTARTS_ENV] = str(n + 1)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, "-m", "dataferry", *sys.argv[1:]])


def run_beat(core: Core, *, loglevel: str) -> None:
    """Send the scheduler tick to the workers every ``jobs.tick_seconds``."""
    settings = core.settings
    print(
        f"dataferry beat {core.node}: tick every {settings.jobs.tick_seconds}s "
        f"to {settings.celery.tick_queue}",
        flush=True,
    )
    core.celery.Beat(
        schedule=str(settings.home / "celerybeat-schedule"),
        loglevel=loglevel.upper(),
        quiet=True,
    ).run()


def _die_with_parent() -> None:
    """In a child: get SIGTERM when the supervising process dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(plans: list[WorkerPlan], *, beat: bool, loglevel: str) -> int:
    """Run one child worker process per plan; stop them all when one ends or on SIGTERM.

    A service manager (systemd ``Restart=always``) restarts the whole group."""
    children: list[subprocess.Popen[bytes]] = []
    for i, plan in enumerate(plans):
        argv = [
            sys.executable,
            "-m",
            "dataferry",
            "worker",
            "--queues",
            ",".join(plan.queues),
            "--concurrency",
            str(plan.concurrency),
            "--log-level",
            loglevel,
        ]
        if beat and i == 0:
            argv.append("--beat")
        children.append(subprocess.Popen(argv, preexec_fn=_die_with_parent))
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while True:
        ended = [c for c in children if c.poll() is not None]
        if ended and not stopping:
            code = ended[0].returncode or 1
            log.error("worker process %s exited with %s; stopping the others", ended[0].pid, code)
            stop(signal.SIGTERM, None)
        if len(ended) == len(children):
            return 0 if stopping and code == 0 else code
        time.sleep(0.2)

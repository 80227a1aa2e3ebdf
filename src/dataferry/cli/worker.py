"""``dataferry worker`` and ``dataferry beat``: the Celery side of scale-out."""

from __future__ import annotations

import logging

import typer

from dataferry.cli.common import fail, settings
from dataferry.cli.common import log_level as log_level_of
from dataferry.config import Settings


def _celery_settings() -> Settings:
    s = settings()
    if s.executor != "celery":
        fail(
            'this needs executor = "celery" and broker_url in the configuration '
            "(or DATAFERRY_EXECUTOR=celery and DATAFERRY_BROKER_URL=redis://host:6379/0)"
        )
    return s


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def worker(
    concurrency: int = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        max=256,
        help="Jobs run at once (threads). Default: celery.concurrency of each queue.",
    ),
    queues: str = typer.Option(
        None,
        "--queues",
        "-Q",
        help="Comma-separated job queues to consume (e.g. transfers). Default: every "
        "queue, one worker process per queue so no kind of job starves another.",
    ),
    beat: bool = typer.Option(
        False, "--beat", "-B", help="Also run the scheduler tick (only one per installation)."
    ),
    log_level: str = typer.Option("warning", help="Log level: debug, info, warning, error."),
) -> None:
    """Run jobs from the broker on this machine (executor = "celery").

    Start as many as you like, on as many machines as you like; they share the
    database."""
    from dataferry.app import build
    from dataferry.errors import InvalidRequest
    from dataferry.jobs.workers import plan_workers, restart_process, run_worker, supervise

    log_level = log_level_of(log_level)
    s = _celery_settings()
    _logging(log_level)
    wanted = [q.strip() for q in queues.split(",") if q.strip()] if queues is not None else None
    if queues is not None and not wanted:
        fail("--queues names no queue")
    core = build(s)
    try:
        plans = plan_workers(s, core.registry.queues(), wanted, concurrency)
    except InvalidRequest as exc:
        core.stop()
        fail(exc.message)
    if wanted is None:  # one process per queue, each with its own concurrency
        core.stop()
        raise typer.Exit(supervise(plans, beat=beat, loglevel=log_level))
    try:
        end = run_worker(core, plans[0], beat=beat, loglevel=log_level)
    finally:
        core.stop()
    if end.crashed:
        restart_process()
    raise typer.Exit(end.code)


def beat(
    log_level: str = typer.Option("warning", help="Log level: debug, info, warning, error."),
) -> None:
    """Run the scheduler tick as a Celery beat schedule (run exactly one).

    It re-queues jobs whose worker died, starts due retries and re-sends jobs the
    broker lost."""
    from dataferry.app import build
    from dataferry.jobs.workers import run_beat

    log_level = log_level_of(log_level)
    s = _celery_settings()
    _logging(log_level)
    core = build(s)
    try:
        run_beat(core, loglevel=log_level)
    finally:
        core.stop()

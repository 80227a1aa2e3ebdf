"""Which Celery worker processes ``dataferry worker`` runs, and Celery settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dataferry.config import Settings
from dataferry.errors import InvalidRequest
from dataferry.jobs.workers import WorkerPlan, plan_workers


def settings(**celery: object) -> Settings:
    return Settings(
        executor="celery",
        broker_url="redis://127.0.0.1:6379/0",
        celery=celery,
    )


def test_one_process_per_queue_with_its_own_concurrency() -> None:
    s = settings(concurrency={"transfers": 8}, default_concurrency=3)
    assert plan_workers(s, ["datasets", "transfers"], None, None) == [
        WorkerPlan(("datasets",), 3),
        WorkerPlan(("transfers",), 8),
    ]
    # --concurrency applies to each process
    assert plan_workers(s, ["datasets", "transfers"], None, 2) == [
        WorkerPlan(("datasets",), 2),
        WorkerPlan(("transfers",), 2),
    ]


def test_named_queues_share_one_process() -> None:
    s = settings(concurrency={"transfers": 8}, default_concurrency=3)
    known = ["datasets", "transfers"]
    assert plan_workers(s, known, ["transfers"], None) == [WorkerPlan(("transfers",), 8)]
    assert plan_workers(s, known, ["transfers", "datasets", "transfers"], None) == [
        WorkerPlan(("transfers", "datasets"), 11)
    ]
    assert plan_workers(s, known, ["datasets"], 5) == [WorkerPlan(("datasets",), 5)]


def test_unknown_queue_is_named() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown queue.*bogus.*known queues: datasets"):
        plan_workers(settings(), ["datasets", "transfers"], ["bogus"], None)


def test_celery_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="needs broker_url"):
        Settings(executor="celery")
    with pytest.raises(ValidationError, match=r"celery.concurrency.transfers"):
        settings(concurrency={"transfers": 0})
    with pytest.raises(ValidationError, match="queue_prefix"):
        settings(queue_prefix="bad prefix!")
    s = settings(queue_prefix="site-a")
    assert s.celery.broker_queue("transfers") == "site-a.transfers"
    assert s.celery.tick_queue == "site-a.tick"

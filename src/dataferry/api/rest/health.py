"""``/healthz`` (open) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from dataferry.api.deps import core as get_core
from dataferry.app import Core
from dataferry.jobs.states import JobState

router = APIRouter()


@router.get("/healthz", tags=["health"])
def healthz(core: Core = Depends(get_core)) -> dict[str, Any]:
    with core.db.read() as s:
        s.connection().exec_driver_sql("SELECT 1")
    return {"status": "ok", "instance_id": core.instance_id, "node": core.node}


class _JobCollector:
    """Reads the database at scrape time, so every process reports the same truth."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def collect(self) -> Any:
        counts = self.core.job_store.counts_by_state()
        jobs = GaugeMetricFamily("dataferry_jobs", "Jobs by state", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], counts.get(state.value, 0))
        yield jobs
        moved = CounterMetricFamily(
            "dataferry_bytes_transferred", "Bytes copied by jobs (all time)"
        )
        moved.add_metric([], self.core.job_store.bytes_done_total())
        yield moved
        # Who runs what: one sample per running job, and a count per worker.
        running = self.core.job_store.running()
        per_job = GaugeMetricFamily(
            "dataferry_job_running",
            "1 for each running job, labelled with the worker (node/claim) that runs it",
            labels=["job_id", "kind", "worker"],
        )
        per_worker: dict[str, int] = {}
        for job_id, kind, worker in running:
            per_job.add_metric([str(job_id), kind, worker], 1)
            node = worker.split("/")[0]
            per_worker[node] = per_worker.get(node, 0) + 1
        yield per_job
        by_worker = GaugeMetricFamily(
            "dataferry_worker_running_jobs", "Running jobs per worker node", labels=["worker"]
        )
        for node, n in sorted(per_worker.items()):
            by_worker.add_metric([node], n)
        yield by_worker


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(core: Core = Depends(get_core)) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_JobCollector(core))
    for collector in core.collectors:
        registry.register(collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

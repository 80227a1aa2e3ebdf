"""Wires sinks into the core: the service, the delivery daemon, metrics, config sinks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from dataferry.sinks.daemon import SinkDaemon
from dataferry.sinks.engine import SinkEngine
from dataferry.sinks.service import SinkService
from dataferry.sinks.store import SinkStore

if TYPE_CHECKING:
    from dataferry.app import Core


class SinkCollector:
    """Per-sink figures for ``/metrics``, read from the database at scrape time."""

    def __init__(self, store: SinkStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        changes = GaugeMetricFamily(
            "dataferry_sink_changes", "Sink outbox rows by state", labels=["sink", "state"]
        )
        delivered = CounterMetricFamily(
            "dataferry_sink_delivered", "Changes the partner accepted", labels=["sink"]
        )
        failed = CounterMetricFamily(
            "dataferry_sink_failed_attempts", "Sends that were not accepted", labels=["sink"]
        )
        counts = self.store.all_counts()
        for sink in self.store.all():
            for state in ("pending", "delivered", "dead", "dropped"):
                changes.add_metric([sink.name, state], counts.get(sink.name, {}).get(state, 0))
            delivered.add_metric([sink.name], sink.delivered_total)
            failed.add_metric([sink.name], sink.failed_total)
        yield changes
        yield delivered
        yield failed


class _ConfigSinks:
    """Applies the config file's sinks when the core starts, then runs the daemon."""

    def __init__(self, core: Core, daemon: SinkDaemon) -> None:
        self.core = core
        self.daemon = daemon

    def start(self) -> None:
        self.core.sinks.sync_config(self.core.settings.sinks)
        self.daemon.start()

    def stop(self) -> None:
        self.daemon.stop()


def install(core: Core) -> None:
    store = SinkStore(core.db)
    engine = SinkEngine(store, core.box, core.node, core.settings.sink)
    daemon = SinkDaemon(engine, store, core.settings.sink.tick_seconds)
    core.sinks = SinkService(store, core.box, engine, daemon)
    records = getattr(core, "records", None)
    if records is not None:  # collections as sources, and a wake-up on every change
        from dataferry.sinks.sources.collection import CollectionSource

        engine.collections = lambda name: CollectionSource(records, name)
        records.subscribe(lambda collection, seq: daemon.wake_source(f"collection:{collection}"))
    core.background.append(_ConfigSinks(core, daemon))
    core.collectors.append(SinkCollector(store))

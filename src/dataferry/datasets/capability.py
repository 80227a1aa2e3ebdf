"""Wires dataset delivery into the core: sites, the peer file protocol, the provider
and consumer services, their job kinds, and the consumer's periodic step."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

from dataferry.datasets import delivery, peerfs, rpc
from dataferry.datasets.consumer import ConsumerService
from dataferry.datasets.peerfiles import PeerFiles
from dataferry.datasets.provider import DELIVERY_KIND, MANIFEST_KIND, ProviderService
from dataferry.datasets.sites import SiteService
from dataferry.jobs.registry import JobKind
from dataferry.transfers.store import TransferStore

if TYPE_CHECKING:
    from dataferry.app import Core


def install(core: Core) -> None:
    settings = core.settings.datasets
    # One TLS context for every peer client of this process: building one (loading the
    # CA bundle) costs milliseconds of CPU, and a client is made per poll and per job.
    verify: ssl.SSLContext = (
        ssl.create_default_context(cafile=settings.peer_ca_file)
        if settings.peer_ca_file
        else httpx.create_ssl_context()
    )
    core.sites = SiteService(core.db, core.box, settings.allow_insecure_peers)
    core.peer_files = PeerFiles(core.endpoints)
    core.provider = ProviderService(
        core.db, core.jobs, core.endpoints, core.sites, settings, verify
    )
    core.consumer = ConsumerService(core.db, core.sites, core.endpoints, settings, verify)
    core.registry.register(JobKind(MANIFEST_KIND, core.provider.run_manifest, queue="datasets"))
    core.registry.register(
        JobKind(
            DELIVERY_KIND,
            delivery.handler(
                core.endpoints,
                core.sites,
                TransferStore(core.db),
                core.settings.transfer,
                settings.site_name,
                verify,
                settings.peer_timeout,
            ),
            queue="transfers",
        )
    )
    consumer = core.consumer

    def drive_synced_datasets() -> None:
        consumer.tick()

    core.scheduler.add_periodic(
        "synced datasets", drive_synced_datasets, core.settings.jobs.tick_seconds
    )
    # dataferry://SITE/... endpoints resolve sites through this core's registry.
    peerfs.configure(
        peerfs.PeerConfig(core.sites.access, settings.site_name, verify, settings.peer_timeout)
    )
    rpc.register(core)

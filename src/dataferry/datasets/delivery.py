"""The delivery job: a transfer from the dataset's folder to the consumer's inbound
location over the peer file protocol (the transfer engine's plan, per-file rows,
temporary names, verification and resume all apply)."""

from __future__ import annotations

import ssl
from typing import Any

from dataferry.config import TransferSettings
from dataferry.datasets.peer import PeerClient
from dataferry.datasets.peerfs import PeerEndpointFS, PeerFileSystem
from dataferry.datasets.provider import PEER_ENDPOINT
from dataferry.datasets.sites import SiteService
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.service import EndpointService
from dataferry.jobs.context import JobContext
from dataferry.transfers.run import TransferRun
from dataferry.transfers.store import TransferStore


class _Endpoints:
    """The registry as a delivery sees it: ``@peer`` is the consumer's endpoint."""

    def __init__(
        self,
        endpoints: EndpointService,
        sites: SiteService,
        my_site: str,
        params: dict[str, Any],
        verify: ssl.SSLContext | bool,
        timeout: float,
        connections: int,
    ) -> None:
        self.endpoints = endpoints
        self.sites = sites
        self.my_site = my_site
        self.site = str(params["peer_site"])
        self.endpoint = str(params["peer_endpoint"])
        self.verify = verify
        self.timeout = timeout
        self.connections = connections

    def open(self, name: str) -> EndpointFS:
        if name != PEER_ENDPOINT:
            return self.endpoints.open(name)
        client = PeerClient(
            self.sites.access(self.site),
            self.my_site,
            verify=self.verify,
            timeout=self.timeout,
            connections=self.connections,
        )
        fs = PeerFileSystem(self.site, self.endpoint, client)
        return PeerEndpointFS(f"{self.site}/{self.endpoint}", fs, "/", {})


def handler(
    endpoints: EndpointService,
    sites: SiteService,
    store: TransferStore,
    settings: TransferSettings,
    my_site: str,
    verify: ssl.SSLContext | bool,
    timeout: float,
) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        resolver = _Endpoints(
            endpoints, sites, my_site, ctx.params, verify, timeout, settings.concurrency * 2
        )
        return TransferRun(ctx, resolver, store, settings).run()  # type: ignore[arg-type]

    return run

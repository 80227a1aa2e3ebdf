"""Two real dataferry instances on loopback: a provider (a facility) and a consumer
(a home institution), each with its own database, registered with each other."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.server import Server

TOKEN = "facility-home-token-0123456789"
PROVIDER, CONSUMER = "fac", "home"


@dataclass
class Pair:
    provider: Server
    consumer: Server
    data: Path  # the provider's published folder (endpoint "data")
    inbox: Path  # the consumer's inbound folder (endpoint "inbox")

    def wait_synced(
        self,
        uid: str,
        states: tuple[str, ...] = ("complete", "failed_permanent"),
        timeout: float = 180,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.consumer.client() as c:
            while True:
                try:
                    doc: dict[str, Any] = c.synced_dataset(uid)
                    if doc["state"] in states:
                        return doc
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    doc = {}
                if time.monotonic() > deadline:
                    raise AssertionError(f"{uid} still {doc} after {timeout}s")
                time.sleep(0.1)


def env_for(site: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "DATAFERRY_DATASETS__SITE_NAME": site,
        "DATAFERRY_DATASETS__POLL_SECONDS": "0.3",
        "DATAFERRY_DATASETS__BACKOFF_BASE": "0.2",
        "DATAFERRY_DATASETS__BACKOFF_CAP": "1",
        "DATAFERRY_DATASETS__MAX_RETRIES": "60",
        **(extra or {}),
    }


def make_pair(
    server_factory: Any,
    tmp_path: Path,
    consumer_db: str,
    provider_env: dict[str, str] | None = None,
    consumer_env: dict[str, str] | None = None,
    consumer_log_level: str = "warning",
) -> Pair:
    data, inbox = tmp_path / "facility-data", tmp_path / "home-inbox"
    data.mkdir()
    inbox.mkdir()
    provider: Server = server_factory(PROVIDER, env=env_for(PROVIDER, provider_env))
    consumer: Server = server_factory(
        CONSUMER, env=env_for(CONSUMER, consumer_env), db=consumer_db, log_level=consumer_log_level
    )
    provider.cli("endpoint", "add", "data", str(data))
    consumer.cli("endpoint", "add", "inbox", str(inbox), "--option", f"peer_write={PROVIDER}")
    provider.cli(
        "site", "add", CONSUMER, consumer.url, "--token", TOKEN, "--role", "consumer",
        "--inbound", "inbox:from-fac",
    )  # fmt: skip
    consumer.cli("site", "add", PROVIDER, provider.url, "--token", TOKEN, "--role", "provider")
    return Pair(provider, consumer, data, inbox)

"""The dashboard's sinks page in a real Chromium, against a real server and a real
partner service on loopback: a change the partner refuses becomes a dead letter,
shown with its error; the sink is paused and resumed from the page; the letter,
re-queued from the page, is delivered."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_dashboard import expect
from tests.e2e.test_dashboard_areas import login
from tests.support.databases import PostgresDatabases
from tests.support.receiver import ACCEPT, FAIL_500, Receiver
from tests.support.replication import TOKENS, instance_env, own_database
from tests.support.server import Server


def sink_doc(server: Server, name: str) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/api/v1/sinks/{name}",
        headers={"Authorization": f"Bearer {TOKENS['a']}"},
        timeout=30,
    )
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def test_dead_letter_requeued_from_the_sinks_page(
    server_factory: Any,
    open_page: Any,
    shots: Any,
    tmp_path: Path,
    postgres: PostgresDatabases | None,
) -> None:
    receiver = Receiver().start()
    receiver.choose = lambda doc: FAIL_500
    try:
        a: Server = server_factory(
            "a", env=instance_env("a"), db=own_database(tmp_path, postgres, "a")
        )
        a.cli("records", "put", "birds", '{"species": "emu"}')
        a.cli(
            "sink", "add", "partner", "--collection", "birds", "--url", receiver.url,
            "--retry-interval", "0.05", "--retry-cap", "0.1", "--give-up-after", "2",
            "--poll-interval", "1",
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while sink_doc(a, "partner")["changes"]["dead"] != 1:
            assert time.monotonic() < deadline, sink_doc(a, "partner")
            time.sleep(0.2)

        watched = open_page(a.url)
        page = watched.page
        login(page, a, TOKENS["a"])
        page.get_by_role("link", name="Sinks").click()
        row = page.locator('tr[data-sink="partner"]')
        expect(row.locator('[data-field="state"]')).to_contain_text("active")
        expect(row.locator('[data-field="dead"]')).to_have_text("1")
        expect(row.locator('[data-field="delivered"]')).to_have_text("0")
        row.get_by_role("link", name="partner").click()
        dead = page.locator("table.dead tbody tr")
        expect(dead).to_have_count(1)
        expect(dead).to_contain_text("500")
        shots(page, "sinks")

        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_role("status")).to_have_text("paused")
        expect(page.locator('h1 [data-field="state"]')).to_have_text("paused")
        page.get_by_role("button", name="Resume").click()
        expect(page.get_by_role("status")).to_have_text("resumed")
        expect(page.locator('h1 [data-field="state"]')).to_have_text("active")

        receiver.choose = lambda doc: ACCEPT
        key = dead.get_attribute("data-key")
        page.get_by_role("button", name=f"Re-queue {key}").click()
        expect(page.get_by_role("status")).to_have_text("1 dead letter re-queued")
        deadline = time.monotonic() + 120
        while sink_doc(a, "partner")["changes"]["delivered"] != 1:
            assert time.monotonic() < deadline, sink_doc(a, "partner")
            time.sleep(0.2)
        page.reload()
        expect(page.locator('[data-field="dead"]')).to_have_text("0")
        expect(page.locator('[data-field="delivered"]')).to_have_text("1")
        expect(page.locator("table.dead tbody")).to_contain_text("No dead letters.")
        applied = receiver.applied()
        assert len(applied) == 1 and "emu" in json.dumps(applied[0].document)
        assert watched.foreign_requests() == []
    finally:
        receiver.stop()

"""The dashboard's replication and datasets pages in a real Chromium, against real
instances: sync now, records and conflicts; a dataset that failed, restarted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from dataferry.datasets.sites import SITE_HEADER
from tests.e2e.test_dashboard import expect
from tests.support.databases import PostgresDatabases
from tests.support.pair import CONSUMER, PROVIDER, TOKEN, make_pair
from tests.support.replication import TOKENS, instance_env, own_database
from tests.support.server import Server
from tests.support.trees import make_tree

UUID = "0b7f6f3e-6f1e-4c55-9d1a-7c2a4a3c9e10"


def login(page: Any, server: Server, token: str) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()


def test_replication_page_sync_now(
    server_factory: Any,
    open_page: Any,
    shots: Any,
    tmp_path: Path,
    postgres: PostgresDatabases | None,
) -> None:
    a: Server = server_factory("a", env=instance_env("a"), db=own_database(tmp_path, postgres, "a"))
    b: Server = server_factory("b", env=instance_env("b"), db=own_database(tmp_path, postgres, "b"))
    a.cli("records", "put", "obs", '{"site": "a", "count": 1}', "--uuid", UUID)
    b.cli("records", "put", "obs", '{"site": "b", "count": 2}', "--uuid", UUID)
    for i in range(3):
        b.cli("records", "put", "obs", f'{{"n": {i}}}')
    a.cli("peer", "add", "b", b.url, "--token", TOKENS["b"])

    watched = open_page(a.url)
    page = watched.page
    login(page, a, TOKENS["a"])
    page.get_by_role("link", name="Replication").click()
    peer = page.locator('tr[data-peer="b"]')
    expect(peer.locator('[data-field="last-sync"]')).to_have_text("never")
    expect(peer.locator('[data-field="sync-count"]')).to_have_text("0")
    expect(page.locator('tr[data-collection="obs"] [data-field="records"]')).to_have_text("1")

    page.get_by_role("button", name="Sync now with b").click()
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("h1 small")).to_have_text("replicate")
    expect(page.locator('h1 [data-field="state"]')).to_have_text("succeeded", timeout=120_000)

    page.get_by_role("link", name="Replication").click()
    expect(peer.locator('[data-field="sync-count"]')).to_have_text("1")
    expect(peer.locator('[data-field="last-sync"]')).not_to_have_text("never")
    expect(page.locator('tr[data-collection="obs"] [data-field="records"]')).to_have_text("4")
    conflicts = page.locator("table.conflicts tbody")
    expect(conflicts).to_contain_text(UUID)
    shots(page, "replication")
    page.get_by_role("link", name="review").click()
    expect(page.get_by_role("heading", name="Conflicts in obs")).to_be_visible()
    expect(page.locator("table.conflicts tbody")).to_contain_text(UUID)
    assert watched.foreign_requests() == []


def test_failed_dataset_restarts_to_complete(
    server_factory: Any, open_page: Any, shots: Any, tmp_path: Path, consumer_db: str
) -> None:
    uid = f"{PROVIDER}.exp-0042"
    pair = make_pair(
        server_factory, tmp_path, consumer_db, consumer_env={"DATAFERRY_DATASETS__MAX_RETRIES": "0"}
    )
    expected = make_tree(pair.data / "exp42", 12, seed=5)
    doc = pair.provider.cli_json("dataset", "publish", uid, "--from", "data:exp42")
    assert pair.provider.wait_job(doc["job_id"])["state"] == "succeeded"
    # the provider is down when the consumer hears of the dataset: with no retries
    # allowed, the consumer's first request fails it for good
    pair.provider.kill()
    announce = httpx.post(
        f"{pair.consumer.url}/api/v1/synced-datasets",
        json={"uid": uid, "version": 1, "meta": {"beamline": "I03"}},
        headers={SITE_HEADER: PROVIDER, "Authorization": f"Bearer {TOKEN}"},
    )
    assert announce.status_code == 200, announce.text
    pair.wait_synced(uid, states=("failed_permanent",))

    watched = open_page(pair.consumer.url)
    page = watched.page
    page.goto(f"{pair.consumer.url}/datasets")
    row = page.locator(f'tr[data-dataset="{uid}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("failed_permanent")
    expect(row.locator(".step-failed")).to_have_text(re.compile("registered"))
    shots(page, "datasets")
    row.get_by_role("link", name=uid).click()
    box = page.locator("[data-live-dataset]")
    expect(box.locator("h1 [data-field=state]")).to_have_text("failed_permanent")
    expect(box.locator("table.history tbody tr")).to_have_count(2)
    expect(box.locator("table.history")).to_contain_text("announced by fac")
    shots(page, "dataset-failed")

    pair.provider.start()
    page.get_by_role("button", name="Restart").click()
    expect(page.get_by_role("status")).to_have_text("restarted")
    expect(page.locator("h1 [data-field=state]")).to_have_text("complete", timeout=120_000)
    expect(page.locator(".step-done")).to_have_count(5)
    expect(page.get_by_role("button", name="Restart")).to_be_disabled()
    history = page.locator("table.history tbody")
    expect(history).to_contain_text("restarted by an operator")
    expect(history).to_contain_text("checking_integrity")
    landed = pair.inbox / "from-fac" / uid
    assert sorted(p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()) == (
        sorted(expected)
    )
    assert CONSUMER in pair.provider.cli("site", "list").stdout
    assert watched.foreign_requests() == []

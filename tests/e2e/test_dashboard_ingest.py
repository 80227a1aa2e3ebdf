"""The ingest page in a real Chromium: a bundle chosen with the file input (and one
dropped on the drop zone) uploads with a progress bar, then its tasks complete."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_dashboard import expect
from tests.support.server import Server

pytest.importorskip("dataferry.ingest", reason="the ingest capability is not installed")


def bundle(files: dict[str, bytes]) -> bytes:
    from tests.support.bundles import make_bundle  # type: ignore[import-not-found,unused-ignore]

    data: bytes = make_bundle(files)
    return data


def test_upload_a_bundle_and_watch_its_tasks(server: Server, open_page: Any, shots: Any) -> None:
    files = {"run1/a.txt": b"hello", "run1/big.bin": bytes(range(256)) * 20000}
    watched = open_page(server.url)
    page = watched.page
    page.goto(f"{server.url}/ingest")
    page.get_by_label("Drop a bundle here, or choose a file").set_input_files(
        files=[{"name": "run1.tar", "mimeType": "application/x-tar", "buffer": bundle(files)}]
    )
    expect(page.locator("[data-upload-percent]")).to_have_text("100.0 %", timeout=60_000)
    job_link = page.locator("[data-upload-job] a")
    expect(job_link).to_have_text(re.compile(r"^#\d+$"))
    expect(page.locator("[data-upload-job] [data-field=state]")).to_have_text(
        "succeeded", timeout=120_000
    )
    tasks = page.locator("[data-task]")
    count = tasks.count()
    assert count >= 5
    expect(page.locator("[data-task].step-done")).to_have_count(count)
    expect(page.locator("[data-upload-error]")).to_be_hidden()
    shots(page, "ingest")
    job_id = int(job_link.inner_text().lstrip("#"))
    archive = server.home / "archive" / str(job_id)
    assert (archive / "run1" / "a.txt").read_bytes() == b"hello"

    # dropped on the drop zone, a refused bundle (no metadata.txt) fails with its reason
    page.goto(f"{server.url}/ingest")
    expect(page.locator(f'tr[data-job="{job_id}"]')).to_contain_text("succeeded")
    data = list(b"not a tar at all")
    page.evaluate(
        """(bytes) => {
            const dt = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], "junk.tar");
            dt.items.add(file);
            const zone = document.querySelector("[data-drop]");
            const init = {dataTransfer: dt, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent("drop", init));
        }""",
        data,
    )
    expect(page.locator("[data-upload-percent]")).to_have_text("100.0 %", timeout=60_000)
    expect(page.locator("[data-upload-error]")).to_be_visible(timeout=120_000)
    expect(page.locator("[data-task].step-failed")).to_have_count(1)
    assert watched.foreign_requests() == []

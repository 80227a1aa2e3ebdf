"""Size and age limits (rclone's --min-size/--max-size/--min-age/--max-age) through
every door, on local, SFTP and S3 sources: copy, mirror, check and dry run."""

from __future__ import annotations

import os
import re
import time
import xmlrpc.client
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import Server

DAY = 86400
# path -> (size in bytes, age in seconds)
SOURCE = {
    "small.txt": (10, 3600),
    "big.bin": (5000, 3600),
    "old.txt": (10, 30 * DAY),
    "sub/mid.dat": (1000, 3 * DAY),
}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def dated(path: Path, size: int, age: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age
    os.utime(path, (when, when))


@pytest.fixture
def tree(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel, (size, age) in SOURCE.items():
        dated(src / "run" / rel, size, age)
    dst.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    return src, dst


def result_of(server: Server, job_id: int) -> dict[str, Any]:
    with server.client() as c:
        result: dict[str, Any] = c.job_detail(job_id)["result"]
        return result


def test_cli_copies_only_files_within_the_limits(server: Server, tree: tuple[Path, Path]) -> None:
    _, dst = tree
    cases = {
        ("--max-size", "2K", "--max-age", "7d"): ["small.txt", "sub/mid.dat"],
        ("--min-size", "1000"): ["big.bin", "sub/mid.dat"],
        ("--min-age", "2d", "--max-age", "1w"): ["sub/mid.dat"],
        ("--min-age", "12h"): ["old.txt", "sub/mid.dat"],
        ("--max-size", "1K", "--exclude", "old.txt"): ["small.txt", "sub/mid.dat"],
        ("--max-age", "2h", "--include", "*.txt"): ["small.txt"],
        ("--min-size", "1M"): [],
    }
    for n, (options, expected) in enumerate(cases.items()):
        doc = server.cli_json("transfer", "src:run", f"dst:out{n}", *options, "--wait")
        assert doc["state"] == "succeeded", (options, doc)
        got = files_under(dst / f"out{n}") if (dst / f"out{n}").exists() else []
        assert got == expected, options
        assert doc["files_total"] == len(expected)
        result = result_of(server, doc["job_id"])
        assert ("reference_time" in result) == any("age" in o for o in options)
        assert "unknown_mtime" not in result  # every local file tells its time
    # --wait's words
    shown = server.cli("transfer", "src:run", "dst:words", "--max-age", "2h", "--wait").stdout
    assert "copied 2," in shown


def test_mirror_leaves_what_the_limits_leave_out(server: Server, tree: tuple[Path, Path]) -> None:
    """A destination file is judged by its own size and time, as by its path: one the
    limits leave out stays; one they take and the source has not goes; the copy of a
    source file the limits leave out stays whatever its own size and time."""
    src, dst = tree
    first = server.cli_json("transfer", "src:run", "dst:out", "--wait")  # times kept
    assert first["state"] == "succeeded", first
    dated(dst / "out" / "gone-new.txt", 10, 60)  # taken, not at the source: removed
    dated(dst / "out" / "gone-big.bin", 9000, 60)  # too big to be judged: stays
    dated(dst / "out" / "gone-old.txt", 10, 60 * DAY)  # too old to be judged: stays
    (src / "run" / "old.txt").unlink()  # its copy at the destination is too old: stays
    dated(dst / "out" / "big.bin", 10, 60)  # an older copy of a file now too big: stays
    dated(src / "run" / "new.txt", 10, 60)
    options = ("src:run", "dst:out", "--mode", "mirror", "--max-size", "2K", "--max-age", "7d")

    preview = server.cli_json("transfer", *options, "--dry-run")
    assert [f["path"] for f in preview["files"]] == ["new.txt", "small.txt", "sub/mid.dat"]
    assert preview["delete"] == ["gone-new.txt"] and preview["delete_total"] == 1
    assert preview["unknown_mtime"] == 0 and preview["reference_time"]
    text = " ".join(server.cli("transfer", *options, "--dry-run").stdout.split())
    assert "delete gone-new.txt" in text and "ages measured from" in text
    assert "big.bin" not in text and "old.txt" not in text

    doc = server.cli_json("transfer", *options, "--wait")
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "out") == [
        "big.bin", "gone-big.bin", "gone-old.txt", "new.txt", "old.txt", "small.txt",
        "sub/mid.dat",
    ]  # fmt: skip
    assert result_of(server, doc["job_id"])["deleted"] == 1

    # check compares only what the limits take: the rest at the destination is not extra
    check = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "check", "--max-size", "2K",
        "--max-age", "7d", "--wait",
    )  # fmt: skip
    assert check["state"] == "succeeded", check
    result = result_of(server, check["job_id"])
    assert (result["same"], result["extra"]) == (3, 0)
    dated(dst / "out" / "extra.txt", 10, 60)
    check = server.cli_json(
        "transfer", "src:run", "dst:out", "--mode", "check", "--max-age", "7d", "--wait",
        check=False,
    )  # fmt: skip
    assert check["state"] == "failed", check
    # big.bin (an hour old) is compared now; extra.txt is extra; the old files are not
    result = result_of(server, check["job_id"])
    assert (result["same"], result["differ"]) == (3, 1)
    assert result["extra_paths"] == ["extra.txt", "gone-big.bin"]


def test_empty_folders_are_not_limited_by_size_or_age(
    server: Server, tree: tuple[Path, Path]
) -> None:
    src, dst = tree
    (src / "run" / "empty").mkdir()
    doc = server.cli_json(
        "transfer", "src:run", "dst:e", "--empty-folders", "--min-size", "1M", "--wait"
    )
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "e") == [] and (dst / "e" / "empty").is_dir()


BAD = [
    ({"min_size": -1}, "min_size must be between 0"),
    ({"max_size": 2**63}, "max_size must be between 0"),
    ({"min_size": 1.5}, "min_size"),
    ({"max_size": True}, "max_size"),
    ({"max_size": "10M"}, "max_size"),
    ({"max_age": 0}, "max_age must be more than 0"),
    ({"min_age": -1}, "min_age must be more than 0"),
    ({"max_age": 4e9}, "100 years"),
    ({"min_age": True}, "min_age"),
    ({"min_age": ""}, "min_age"),
    ({"min_size": 10, "max_size": 5}, "min_size 10 is more than max_size 5"),
    ({"min_age": 7 * DAY, "max_age": DAY}, "min_age 604800 is more than max_age 86400"),
    ({"source": "src:run/small.txt", "max_size": 5}, "max_size applies to a folder source"),
    ({"source": "src:run/small.txt", "min_age": 5}, "min_age applies to a folder source"),
    (
        {"source": "src:run/small.txt", "max_size": 5, "min_age": 5},
        "max_size and min_age apply to a folder source",
    ),
    (
        {"source": "src:run/small.txt", "min_size": 1, "max_size": 5, "max_age": 9},
        "min_size, max_size and max_age apply to a folder source",
    ),
]


def nothing_queued(server: Server, dst: Path) -> None:
    with server.client() as c:
        assert c.jobs()["total"] == 0
    assert not (dst / "bad").exists()


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_limits_are_refused_at_rest_and_nothing_is_queued(
    server: Server, tree: tuple[Path, Path], fields: dict[str, object], message: str
) -> None:
    body = {"source": "src:run", "destination": "dst:bad", **fields}
    for path in ("/api/v1/transfers", "/api/v1/transfers/preview"):
        r = httpx.post(f"{server.url}{path}", json=body)
        assert r.status_code == 422, r.text
        assert message in r.text
    nothing_queued(server, tree[1])


def test_nan_and_infinity_are_refused_at_rest(server: Server, tree: tuple[Path, Path]) -> None:
    for number in ("NaN", "Infinity", "-Infinity"):
        content = f'{{"source": "src:run", "destination": "dst:bad", "max_age": {number}}}'
        r = httpx.post(
            f"{server.url}/api/v1/transfers",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422 and "max_age" in r.text, r.text
    nothing_queued(server, tree[1])


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_limits_are_refused_at_jsonrpc(
    server: Server, tree: tuple[Path, Path], fields: dict[str, object], message: str
) -> None:
    params = {"source": "src:run", "destination": "dst:bad", **fields}
    call = {"jsonrpc": "2.0", "method": "transfers.submit", "params": params, "id": 1}
    answer = httpx.post(f"{server.url}/jsonrpc", json=call).json()
    assert answer["error"]["code"] == -32602, answer
    assert message in answer["error"]["message"]
    nothing_queued(server, tree[1])


def test_xmlrpc_takes_limits_and_refuses_bad_ones(server: Server, tree: tuple[Path, Path]) -> None:
    _, dst = tree
    p: Any = xmlrpc.client.ServerProxy(f"{server.url}/RPC2", allow_none=True)
    assert "max_age" in p.system.methodHelp("transfers.submit")
    # positional, as XML-RPC calls are: min_size, max_size, min_age, max_age come last
    head = ("src:run", "dst:bad", "copy", "sha256", None, None, None, None, None, False)
    for method, limits, message in [
        (p.transfers.submit, (10, 5), "min_size 10 is more"),
        (p.transfers.submit, (None, None, None, float("nan")), "max_age must be more than 0"),
        (p.transfers.preview, (1.0,), "min_size: Input should be"),
    ]:
        with pytest.raises(xmlrpc.client.Fault) as err:
            method(*head, *limits)
        assert err.value.faultCode == -32602 and message in err.value.faultString
    nothing_queued(server, dst)
    no = (None, None, None, None, None, False)
    preview = p.transfers.preview("src:run", "dst:x", "copy", "sha256", *no, None, 20)
    assert [f["path"] for f in preview["files"]] == ["old.txt", "small.txt"]
    job = p.transfers.submit("src:run", "dst:x", "copy", "sha256", *no, None, None, 2 * DAY)
    assert server.wait_job(job["job_id"])["state"] == "succeeded"
    assert files_under(dst / "x") == ["old.txt", "sub/mid.dat"]
    # a size of 2 GiB or more is an <i8> (Python's client cannot send one: raw XML)
    values = "".join(f"<param><value>{v}</value></param>" for v in head[:4])
    nil = "<param><value><nil/></value></param>"
    body = (
        "<?xml version='1.0'?><methodCall><methodName>transfers.preview</methodName>"
        f"<params>{values}{nil * 5}<param><value><boolean>0</boolean></value></param>"
        f"{nil}<param><value><i8>{2**40}</i8></value></param></params></methodCall>"
    ).replace("dst:bad", "dst:big")
    answer: Any = xmlrpc.client.loads(httpx.post(f"{server.url}/RPC2", content=body).content)
    assert answer[0][0]["files_total"] == 4, answer


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--min-size", "10X"), "--min-size '10X' is not a size"),
        (("--max-size", ""), "--max-size '' is not a size"),
        (("--max-size", "1.5G"), "is not a size"),
        (("--max-age", "7y"), "--max-age '7y' is not a duration"),
        (("--min-age", ""), "--min-age '' is not a duration"),
        (("--max-size", "8192P"), "--max-size must be between 0"),
    ],
)
def test_cli_refuses_sizes_and_durations_it_cannot_read(
    server: Server, tree: tuple[Path, Path], options: tuple[str, ...], message: str
) -> None:
    done = server.cli("transfer", "src:run", "dst:bad", *options, check=False)
    assert done.returncode == 2, done
    assert message in " ".join(done.stderr.split())
    nothing_queued(server, tree[1])


def test_cli_refusals_from_the_service(server: Server, tree: tuple[Path, Path]) -> None:
    for options, message in [
        (("--min-size", "2K", "--max-size", "1K"), "min_size 2048 is more than max_size 1024"),
        (("--min-age", "2d", "--max-age", "1d"), "min_age 172800 is more than max_age 86400"),
        (("--max-age", "5300w"), "100 years"),
    ]:
        done = server.cli("transfer", "src:run", "dst:bad", *options, "--dry-run", check=False)
        assert done.returncode == 1 and message in " ".join(done.stderr.split()), done
    nothing_queued(server, tree[1])
    helped = server.cli("transfer", "--help", env_columns=200).stdout
    assert "--min-size" in helped and "1024-based" in helped and "7d" in helped


@pytest.mark.parametrize("protocol", ["sftp", "s3"])
def test_remote_sources_are_chosen_by_size_and_age(
    request: pytest.FixtureRequest,
    server: Server,
    tree: tuple[Path, Path],
    tmp_path: Path,
    protocol: str,
) -> None:
    """SFTP keeps the source's times (to the second); S3's time is the upload's, so
    there every file is as young as the copy that put it there."""
    from tests.integration.test_remote_protocols import add_remote

    _, dst = tree
    add_remote(request, server, protocol, tmp_path)
    first = server.cli_json("transfer", "src:run", "remote:run", "--wait")
    assert first["state"] == "succeeded", first
    if protocol == "sftp":
        cases = {
            ("--max-size", "2K", "--max-age", "7d"): ["small.txt", "sub/mid.dat"],
            ("--min-age", "2d"): ["old.txt", "sub/mid.dat"],
        }
    else:
        cases = {
            ("--max-age", "1h", "--min-size", "1000"): ["big.bin", "sub/mid.dat"],
            ("--min-age", "1d"): [],
        }
    for n, (options, expected) in enumerate(cases.items()):
        preview = server.cli_json("transfer", "remote:run", f"dst:{n}", *options, "--dry-run")
        assert [f["path"] for f in preview["files"]] == expected, options
        doc = server.cli_json("transfer", "remote:run", f"dst:{n}", *options, "--wait")
        assert doc["state"] == "succeeded", doc
        assert (files_under(dst / str(n)) if (dst / str(n)).exists() else []) == expected


def test_the_dashboard_form_takes_sizes_and_ages(server: Server, tree: tuple[Path, Path]) -> None:
    from tests.support.browser import Browser, csrf_of

    _, dst = tree
    form = {
        "source_endpoint": "src",
        "source_path": "run",
        "destination_endpoint": "dst",
        "destination_path": "web",
        "max_size": "2K",
        "max_age": "7d",
    }
    with Browser(server.url) as browser:
        page = browser.get("/transfers/new").text
        for name in ("min_size", "max_size", "min_age", "max_age"):
            assert f'name="{name}"' in page
        for bad, message in [
            ({"min_size": "10X"}, "min_size &#39;10X&#39; is not a size"),
            ({"min_age": "7y"}, "min_age &#39;7y&#39; is not a duration"),
            ({"min_size": "3K"}, "min_size 3072 is more than max_size 2048"),
            ({"min_age": "8d"}, "min_age 691200 is more than max_age 604800"),
        ]:
            refused = browser.post("/transfers/new", data={**form, **bad, "csrf": csrf_of(page)})
            assert refused.status_code == 422 and message in refused.text, refused.text
            page = refused.text
            typed = next(iter(bad.values()))
            assert f'value="{typed}"' in page and 'value="2K"' in page  # kept as typed
        preview = browser.post(
            "/transfers/new", data={**form, "csrf": csrf_of(page), "action": "preview"}
        ).text
        assert "2 files (1010 bytes)" in preview
        # as the job page words it, not ISO 8601's 2026-12-08T01:02:03+00:00
        assert re.search(r"Ages measured from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.", preview)
        assert "<code>small.txt</code>" in preview and "big.bin" not in preview
        done = browser.post("/transfers/new", data={**form, "csrf": csrf_of(preview)})
        assert done.status_code == 303, done.text
        job_id = int(done.headers["location"].rsplit("/", 1)[1])
    assert server.wait_job(job_id)["state"] == "succeeded"
    assert files_under(dst / "web") == ["small.txt", "sub/mid.dat"]
    with server.client() as c:
        assert c.jobs()["total"] == 1  # the refusals and the dry run queued nothing


def test_ages_are_measured_from_the_first_planning_even_after_a_retry(
    server: Server, tree: tuple[Path, Path]
) -> None:
    """The moment is stored with the job: a retried check lists the destination
    against the same moment its plan used, however much later it runs."""
    _, dst = tree
    dated(dst / "out" / "extra.txt", 10, 60)
    options = ("src:run", "dst:out", "--mode", "check", "--max-age", "7d", "--wait")
    first = server.cli_json("transfer", *options, check=False)
    assert first["state"] == "failed", first
    pinned = result_of(server, first["job_id"])["reference_time"]
    time.sleep(1.2)  # the moment is shown to the second
    server.cli("retry", str(first["job_id"]))
    again = server.wait_job(first["job_id"])
    assert again["state"] == "failed" and again["attempts"] >= 1, again
    assert result_of(server, first["job_id"])["reference_time"] == pinned


def test_the_store_pins_the_moment_once_and_keeps_the_unknown_count(core: Any) -> None:
    """On the job's row (SQLite and PostgreSQL): the first planning's moment stays,
    only while the job is ours, and the plan adds the count of files left out for
    want of a time without losing it."""
    from dataferry.errors import JobLost
    from dataferry.transfers.store import PlannedFile, TransferStore

    store = TransferStore(core.db)
    job = core.job_store.create("transfer", {"source": "a:x", "max_age": 60.0})
    with pytest.raises(JobLost):  # not claimed: not ours
        store.pin_reference(job.id, "me", 100)
    assert core.job_store.claim(job.id, "me", 60) is not None
    assert store.pin_reference(job.id, "me", 100) == 100
    assert store.pin_reference(job.id, "me", 200) == 100  # a re-plan: the same moment
    store.save_plan(job.id, "me", [PlannedFile("a", 1, 5)], unknown_mtime=2)
    params = core.job_store.get(job.id).params
    assert params == {"source": "a:x", "max_age": 60.0, "reference_ns": 100, "unknown_mtime": 2}


def test_files_without_a_time_are_left_out_by_an_age_and_counted(
    server: Server, tree: tuple[Path, Path]
) -> None:
    """A time before 1970 is no time (the plan stores none): an age limit does not take
    such a file, and the dry run and the job's result count it; a size limit does."""
    src, dst = tree
    dated(src / "run" / "ancient.txt", 10, time.time() + 10 * 365 * DAY)  # 1960
    preview = server.cli_json("transfer", "src:run", "dst:a", "--max-age", "7d", "--dry-run")
    assert preview["unknown_mtime"] == 1
    assert "ancient.txt" not in [f["path"] for f in preview["files"]]
    text = " ".join(
        server.cli("transfer", "src:run", "dst:a", "--min-age", "1d", "--dry-run").stdout.split()
    )
    assert "1 files left out: their time is unknown" in text and "ancient" not in text
    doc = server.cli_json("transfer", "src:run", "dst:a", "--min-age", "1d", "--wait")
    assert doc["state"] == "succeeded", doc
    assert files_under(dst / "a") == ["old.txt", "sub/mid.dat"]
    assert result_of(server, doc["job_id"])["unknown_mtime"] == 1
    shown = server.cli("transfer", "src:run", "dst:b", "--max-age", "7d", "--wait").stdout
    assert "left out 1 (time unknown)" in shown
    sized = server.cli_json("transfer", "src:run", "dst:c", "--max-size", "10", "--wait")
    assert files_under(dst / "c") == ["ancient.txt", "old.txt", "small.txt"]
    assert "unknown_mtime" not in result_of(server, sized["job_id"])


def test_the_job_page_words_the_moment_and_the_files_without_a_time(
    server: Server, tree: tuple[Path, Path]
) -> None:
    """The dashboard's job page says what ages were measured from as a UTC time and how
    many files an age limit left out, as the preview does; not raw nanoseconds."""
    from tests.support.browser import Browser

    src, _ = tree
    dated(src / "run" / "ancient.txt", 10, time.time() + 10 * 365 * DAY)  # 1960
    aged = server.cli_json("transfer", "src:run", "dst:a", "--min-age", "1d", "--wait")
    sized = server.cli_json("transfer", "src:run", "dst:b", "--max-size", "10", "--wait")
    with server.client() as c:
        pinned = c.job_detail(aged["job_id"])["params"]["reference_ns"]
    moment = datetime.fromtimestamp(pinned // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    with Browser(server.url) as browser:
        page = browser.get(f"/jobs/{aged['job_id']}").text
        plain = browser.get(f"/jobs/{sized['job_id']}").text
    assert "1 files left out: their time is unknown." in page
    assert f"Ages measured from {moment} UTC." in page
    assert str(pinned) not in page and "reference_ns" not in page
    assert "unknown_mtime" not in page and "reference_time" not in page
    assert "<dt>min_age</dt>" in page  # the limit itself is still listed
    assert "left out" not in plain and "Ages measured" not in plain

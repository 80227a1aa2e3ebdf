"""Bad requests get a clear 4xx and change nothing; a vanishing source fails cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.answers import send_body
from tests.support.server import Server
from tests.support.trees import temporaries

MiB = 1024 * 1024


@pytest.fixture
def setup(server: Server, tmp_path: Path) -> tuple[Server, Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f.txt").write_text("data")
    dst.mkdir()
    (dst / "a-file").write_text("in the way")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (src / "d" / "escape").symlink_to(outside)
    (src / "link-out").symlink_to(outside / "secret.txt")
    with server.client() as c:
        c.add_endpoint("src", str(src))
        c.add_endpoint("dst", str(dst))
        c.add_endpoint("ro", str(dst), options={"read_only": "true"})
    return server, src, dst


def post(server: Server, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/transfers", json=body, timeout=10)


REFUSED: list[tuple[dict[str, Any], int, str]] = [
    ({"source": "nope:d", "destination": "dst:x"}, 404, "endpoint 'nope' does not exist"),
    ({"source": "src:d", "destination": "nope:x"}, 404, "endpoint 'nope' does not exist"),
    (
        {"source": "src:missing", "destination": "dst:x"},
        404,
        "source path 'missing' does not exist",
    ),
    ({"source": "src:d", "destination": "ro:x"}, 403, "read-only"),
    ({"source": "src:d", "destination": "dst:a-file/x"}, 422, "is a file"),
    ({"source": "src:../outside", "destination": "dst:x"}, 422, "escapes"),
    ({"source": "src:/etc", "destination": "dst:x"}, 422, "absolute"),
    ({"source": "src:d", "destination": "dst:../x"}, 422, "escapes"),
    ({"source": "src:link-out", "destination": "dst:x"}, 422, "outside its root through a link"),
    ({"source": "src:d", "destination": "src:d/inner"}, 422, "overlap"),
    ({"source": "src", "destination": "dst:x"}, 422, "ENDPOINT:PATH"),
    ({"source": "src:d", "destination": "dst:x", "mode": "teleport"}, 422, "mode 'teleport'"),
    ({"source": "src:d", "destination": "dst:x", "checksum": "crc"}, 422, "checksum 'crc'"),
    ({"source": "src:d", "destination": "dst:x", "overwrite": "maybe"}, 422, "overwrite"),
    ({"source": "src:d"}, 422, "destination"),
    ({"source": "src:d", "destination": "dst:x", "extra": 1}, 422, "extra"),
]


def test_refused_and_nothing_changes(setup: tuple[Server, Path, Path]) -> None:
    server, _src, dst = setup
    before = sorted(p.name for p in dst.iterdir())
    for body, status, message in REFUSED:
        response = post(server, body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["detail"], (body, response.text)
        assert sorted(p.name for p in dst.iterdir()) == before
    with server.client() as c:
        assert c.jobs()["total"] == 0


def test_framework_refusals_have_the_error_shape_too(server: Server) -> None:
    """A body that is not UTF-8, a path no route has and a method the route has not
    were answered ``{"detail": "..."}`` without ``error`` (found by schemathesis)."""
    refusals = [
        (
            httpx.post(
                f"{server.url}/api/v1/transfers",
                content=b"\x80{U",
                headers={"Content-Type": "application/json"},
            ),
            400,
            "bad_request",
            "parsing the body",
        ),
        (httpx.get(f"{server.url}/api/v1/nothing-here"), 404, "not_found", "no such API path"),
        (httpx.patch(f"{server.url}/api/v1/jobs"), 405, "method_not_allowed", "not allowed"),
    ]
    for response, status, code, words in refusals:
        assert response.status_code == status, response.text
        assert response.json()["error"] == code, response.text
        assert words in response.json()["detail"], response.text
    assert refusals[2][0].headers["allow"] == "GET"
    with server.client() as c:
        assert c.jobs()["total"] == 0


def test_a_path_no_route_serves_is_named_with_its_method(server: Server) -> None:
    """An unrouted path was answered a bare ``"Not Found"``, the same words as nothing
    at all; it names the method and path and where the API is described. A 404 a
    route raises (no such job) keeps its own words."""
    api = f"{server.url}/api/v1"
    for method, url, detail in [
        ("GET", f"{api}/transferz", "no such API path: GET /api/v1/transferz (see /docs)"),
        (
            "POST",
            f"{api}/jobz/1/cancel",
            "no such API path: POST /api/v1/jobz/1/cancel (see /docs)",
        ),
        # the path as sent: a name with a slash in it is no route's one segment
        (
            "DELETE",
            f"{api}/endpoints/..%2Fsinks%2Fs1",
            "no such API path: DELETE /api/v1/endpoints/..%2Fsinks%2Fs1 (see /docs)",
        ),
        (
            "GET",
            f"{server.url}/nothing-here?x=1",
            "no such path: GET /nothing-here (the API is under /api/v1, see /docs)",
        ),
        (
            "GET",
            f"{server.url}/static/nothing.js",
            "no such path: GET /static/nothing.js (the API is under /api/v1, see /docs)",
        ),
    ]:
        r = httpx.request(method, url, timeout=10)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json() == {"error": "not_found", "detail": detail}, (method, url)
    # a route's own 404s are as they were
    assert httpx.get(f"{api}/jobs/999", timeout=10).json() == {
        "error": "not_found",
        "detail": "job 999 does not exist",
    }
    assert httpx.get(f"{api}/endpoints/nope", timeout=10).json() == {
        "error": "not_found",
        "detail": "endpoint 'nope' does not exist",
    }
    # the interactive reference the message points to is there
    assert httpx.get(f"{server.url}/docs", timeout=10).status_code == 200


def test_a_method_a_path_does_not_take_names_every_method_it_does(server: Server) -> None:
    """Starlette's 405 said "Method Not Allowed" and listed only the methods of the
    first route on the path: PUT on an endpoint answered ``Allow: GET``, though
    DELETE serves the path too."""
    r = httpx.put(f"{server.url}/api/v1/endpoints/lab", timeout=10)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "DELETE, GET"
    assert r.json() == {
        "error": "method_not_allowed",
        "detail": "method PUT is not allowed on /api/v1/endpoints/lab; it takes DELETE, GET",
    }
    r = httpx.post(f"{server.url}/static/dashboard.css", timeout=10)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "GET, HEAD"
    assert r.json()["detail"] == (
        "method POST is not allowed on /static/dashboard.css; it takes GET, HEAD"
    )


def test_a_page_no_route_serves_is_a_page_for_a_browser(server: Server) -> None:
    """A browser asking for a dashboard page that does not exist was shown the JSON
    ``{"detail": "Not Found"}``; it gets the dashboard's error page. An API path stays
    JSON whoever asks."""
    html = {"Accept": "text/html"}
    r = httpx.get(f"{server.url}/no-such-page", headers=html, timeout=10)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in r.text
    assert "no such page: /no-such-page" in r.text
    assert '<a href="/">' in r.text
    # what the path holds is shown as text, never as markup
    r = httpx.get(f"{server.url}/a&b=%3Cscript%3E", headers=html, timeout=10)
    assert r.status_code == 404 and "no such page: /a&amp;b=%3Cscript%3E" in r.text
    r = httpx.post(f"{server.url}/jobs", headers=html, timeout=10)
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")
    assert "method POST is not allowed on /jobs; it takes GET" in r.text
    assert r.headers["allow"] == "GET"
    r = httpx.get(f"{server.url}/api/v1/transferz", headers=html, timeout=10)
    assert r.status_code == 404
    assert r.json()["detail"] == "no such API path: GET /api/v1/transferz (see /docs)"


def test_link_leaving_the_root_inside_a_tree_fails_the_job(
    setup: tuple[Server, Path, Path],
) -> None:
    server, _src, dst = setup
    doc = server.cli_json("transfer", "src:d", "dst:x", "--wait", check=False)
    assert doc["state"] == "failed"
    assert "outside its root through a link" in doc["error"]
    assert not (dst / "x").exists()


def test_tree_with_a_pipe_or_a_broken_link_fails_the_job_and_a_link_loop_is_walked_once(
    setup: tuple[Server, Path, Path],
) -> None:
    server, src, dst = setup
    (src / "t" / "sub").mkdir(parents=True)
    (src / "t" / "sub" / "g.txt").write_text("g")
    (src / "t" / "sub" / "back").symlink_to(src / "t")  # a loop, inside the root
    doc = server.cli_json("transfer", "src:t", "dst:t", "--wait", check=False)
    assert doc["state"] == "succeeded", doc
    assert (dst / "t" / "sub" / "g.txt").read_text() == "g"
    for name, make in (
        ("pipe", lambda p: os.mkfifo(p)),
        ("dangling", lambda p: p.symlink_to(src / "t" / "nothing-here")),
    ):
        tree = src / name
        tree.mkdir()
        (tree / "ok.txt").write_text("ok")
        make(tree / "odd")
        doc = server.cli_json("transfer", f"src:{name}", f"dst:{name}", "--wait", check=False)
        assert doc["state"] == "failed", doc
        assert f"'{name}/odd' on endpoint 'src' is neither a file nor a folder" in doc["error"]
        assert not (dst / name).exists()


def test_a_file_name_that_is_not_utf8_fails_the_job_naming_it(
    setup: tuple[Server, Path, Path],
) -> None:
    """Names are stored and sent as UTF-8 text; a name on disk that is not (Linux
    allows any bytes) fails the transfer at planning with the name shown escaped
    (before: "internal error: UnicodeEncodeError")."""
    server, src, dst = setup
    tree = src / "mixed"
    tree.mkdir()
    (tree / "ok.txt").write_text("ok")
    with open(os.fsencode(tree) + b"/caf\xe9.txt", "wb") as f:  # Latin-1, not UTF-8
        f.write(b"latin-1 name")
    doc = server.cli_json("transfer", "src:mixed", "dst:mixed", "--wait", check=False)
    assert doc["state"] == "failed" and doc["attempts"] == 1, doc
    assert "'mixed/caf\\udce9.txt' on endpoint 'src'" in doc["error"], doc
    assert "not valid UTF-8" in doc["error"], doc
    assert not (dst / "mixed").exists()


def test_bad_endpoints_refused(setup: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, _, _ = setup
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "x", "url": "gopher://h/p"}, 422, "unknown URL scheme 'gopher'"),
        ({"name": "x", "url": str(tmp_path / "nope")}, 422, "does not exist"),
        ({"name": "x", "url": "file://remotehost/data"}, 422, "host"),
        ({"name": "bad name!", "url": str(tmp_path)}, 422, "endpoint name"),
        ({"name": "src", "url": str(tmp_path)}, 409, "already exists"),
        (
            {"name": "x", "url": str(tmp_path), "options": {"a": "1"}, "secrets": {"a": "2"}},
            422,
            "both as option and secret",
        ),
    ]
    # Options and secrets no protocol reads, and values their protocol refuses: before,
    # stored (a typo silently ignored, a bad value failing or not at the first transfer).
    sftp, s3, web = "sftp://me@127.0.0.1:2222/data", "s3://bucket/p", "https://h.example/f"
    bad: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        (sftp, {"know_hosts": "/x"}, {}, "option 'know_hosts' is not an option of sftp"),
        (sftp, {"timeout": "-5"}, {}, "option timeout: must be from 0.01"),
        (sftp, {"timeout": "nan"}, {}, "option timeout: must be a number of seconds"),
        (sftp, {"timeout": True}, {}, "option timeout: must be a number of seconds"),
        (sftp, {"host_key_check": "maybe"}, {}, "option host_key_check: must be true or false"),
        (sftp, {"ciphers": "rot13"}, {}, "unknown cipher(s) rot13"),
        (sftp, {"username": "a b"}, {}, "option username: must be 1-255 printable"),
        (sftp, {"timeout": {"s": 1}}, {}, "must be text, a number or true/false"),
        (sftp, {}, {"pasword": "x"}, "secret 'pasword' is not a secret of sftp endpoints"),
        (s3, {"block_size": "1024"}, {}, "option block_size: must be from 5242880"),
        (s3, {"block_size": 6e6}, {}, "option block_size: must be a whole number"),
        (s3, {"anon": "maybe"}, {}, "option anon: must be true or false"),
        (s3, {"region": "us east"}, {}, "option region"),
        (s3, {}, {"password": "x"}, "secret 'password' is not a secret of s3 endpoints"),
        (web, {"timeout": "0"}, {}, "option timeout: must be from 0.01"),
        (web, {"ciphers": "x"}, {}, "option 'ciphers' is not an option of https endpoints"),
        (str(tmp_path), {"read_only": "maybe"}, {}, "option read_only: must be true or false"),
        (str(tmp_path), {"peer_read": "a b"}, {}, "option peer_read: must be site names"),
        (str(tmp_path), {}, {"password": "x"}, "(known: none)"),
    ]
    for url, options, secrets, message in bad:
        body = {"name": "x", "url": url, "options": options, "secrets": secrets}
        cases.append((body, 422, message))
    for body, status, message in cases:
        response = httpx.post(f"{server.url}/api/v1/endpoints", json=body, timeout=10)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["detail"]
    with server.client() as c:
        assert [e["name"] for e in c.endpoints()] == ["dst", "ro", "src"]
    # the CLI says the same; every value an option may take is still accepted
    refused = server.cli("endpoint", "add", "x", sftp, "-o", "timeout=forever", check=False)
    assert refused.returncode == 1 and "option timeout" in refused.stderr
    server.cli(
        "endpoint", "add", "ok", sftp, "-o", "timeout=2.5", "-o", "host_key_check=no",
        "-o", "ciphers=aes128-ctr", "-o", "known_hosts=/x", "-o", "username=u",
        "-o", "read_only=on", "-o", "peer_read=*", "-o", "peer_write=fac,lab-2",
        "-s", "password=p", "-s", "private_key=k", "-s", "passphrase=q",
    )  # fmt: skip
    server.cli(
        "endpoint", "add", "ok3", s3, "-o", "block_size=5242880", "-o", "anon=1",
        "-o", "region=eu-west-1", "-o", "endpoint_url=http://127.0.0.1:9",
        "-s", "access_key_id=a", "-s", "secret_access_key=b", "-s", "session_token=c",
    )  # fmt: skip
    missing = httpx.get(f"{server.url}/api/v1/endpoints/none", timeout=10)
    assert missing.status_code == 404
    assert httpx.delete(f"{server.url}/api/v1/endpoints/none", timeout=10).status_code == 404


def test_names_ending_in_a_newline_are_refused(server_factory: Any, tmp_path: Path) -> None:
    """``^...$`` matched before a final newline: an endpoint, a site, a collection and a
    dataset could be named ``x\n``, a name no header, URL or ``ENDPOINT:PATH`` can
    carry (a site so named could never authenticate; consumers could not fetch such a
    dataset)."""
    server = server_factory(env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    (tmp_path / "d").mkdir()
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as c:
        c.post("/endpoints", json={"name": "data", "url": str(tmp_path)}).raise_for_status()
        refused = [
            c.post("/endpoints", json={"name": "x\n", "url": str(tmp_path)}),
            c.post(
                "/sites",
                json={"name": "home\n", "url": "http://127.0.0.1:9", "token": "t" * 12},
            ),
            c.put("/collections/obs%0A"),
            c.post("/datasets", json={"uid": "fac.exp\n", "source": "data:d"}),
        ]
        for response in refused:
            assert response.status_code == 422, (response.request.url, response.text)
        assert [e["name"] for e in c.get("/endpoints").json()["endpoints"]] == ["data"]
        assert c.get("/sites").json()["sites"] == []
        assert c.get("/collections").json()["collections"] == []
        assert c.get("/datasets").json()["datasets"] == []
    with server.client() as cl:
        assert cl.jobs()["total"] == 0


def test_a_refusal_quoting_a_lone_surrogate_is_answered(
    setup: tuple[Server, Path, Path], tmp_path: Path
) -> None:
    """JSON can carry "\\ud800", UTF-8 cannot: a refusal quoting it failed to encode
    (500, the connection dropped) instead of saying what was wrong (schemathesis)."""
    server, _, _ = setup
    body = json.dumps({"name": "x", "url": str(tmp_path / "\ud800")})  # escaped as \ud800
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post("/api/v1/endpoints", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert "\\ud800" in r.json()["detail"], r.text
        assert c.get("/api/v1/endpoints").status_code == 200  # the connection still works
    with server.client() as cl:
        assert [e["name"] for e in cl.endpoints()] == ["dst", "ro", "src"]


def test_json_bodies_holding_a_lone_surrogate_are_refused_and_store_nothing(
    server_factory: Any, tmp_path: Path
) -> None:
    """JSON can spell "\\ud800", a character no UTF-8 text holds. Endpoints (options),
    sites, peers, datasets (meta) and records (keys or values) were stored with it and
    then answered 500 (the record could not be listed again); transfers failed 500
    (schemathesis and a hand probe)."""
    server = server_factory(env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    (tmp_path / "d").mkdir()
    bad = "\ud800"
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as c:
        c.post("/endpoints", json={"name": "data", "url": str(tmp_path)}).raise_for_status()
        c.put("/collections/obs").raise_for_status()

        def send(method: str, path: str, body: Any) -> httpx.Response:
            # json.dumps escapes the surrogate (\ud800), as any JSON encoder may
            headers = {"Content-Type": "application/json"}
            return c.request(method, path, content=json.dumps(body), headers=headers)

        refused = [
            send("POST", "/endpoints", {"name": "e", "url": str(tmp_path), "options": {"a": bad}}),
            send("POST", "/endpoints", {"name": "e", "url": str(tmp_path), "secrets": {bad: "1"}}),
            send("POST", "/sites", {"name": "s", "url": "http://127.0.0.1:9", "token": bad * 9}),
            send("POST", "/peers", {"name": "p", "url": "http://127.0.0.1:9", "token": bad}),
            send("POST", "/datasets", {"uid": "fac.x", "source": "data:d", "meta": {"k": bad}}),
            send("POST", "/collections/obs/records", {"a": {"b": [1, bad]}}),
            send("POST", "/collections/obs/records", {bad: 1}),
            send("POST", "/transfers", {"source": f"data:{bad}", "destination": "data:x"}),
        ]
        for response in refused:
            assert response.status_code == 422, (response.request.content, response.text)
            assert "lone surrogate" in response.json()["detail"], response.text
        # an escaped backslash before "ud800" is plain text
        ok = send("POST", "/collections/obs/records", {"a": "\\ud800"})
        assert ok.status_code == 201, ok.text
        records = c.get("/collections/obs/records").json()["records"]
        assert [r["data"] for r in records] == [{"a": "\\ud800"}]
        assert [e["name"] for e in c.get("/endpoints").json()["endpoints"]] == ["data"]
        assert c.get("/sites").json()["sites"] == []
        assert c.get("/peers").json()["peers"] == []
        assert c.get("/datasets").json()["datasets"] == []
    call = {"jsonrpc": "2.0", "id": 1, "method": "system.listMethods", "params": [bad]}
    rpc = httpx.post(
        f"{server.url}/jsonrpc",
        content=json.dumps(call),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert rpc.json()["error"]["code"] == -32700, rpc.text
    with server.client() as cl:
        assert cl.jobs()["total"] == 0


BAD_BASE_URLS = [
    "http://[::1",  # was a 500 for a site (urlsplit's ValueError)
    "http://127.0.0.1:99999",
    "http://127.0.0.1:x",
    "http://127.0.0.1:0",
    "http://",
    "http://127.0.0.1:1/a b",
    "http://127.0.0.1:1/\x16",
    "https://" + "a" * 64 + ".example",  # a label over 63: the job failed at every sync
    "https://a..b.example",
]


def test_peer_and_site_urls_no_client_can_use_are_refused(server: Server) -> None:
    """A site URL "http://[::1" was a 500; a bad port, no host or a control character
    was stored for sites and peers and failed only later, at every sync or poll."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as c:
        for i, url in enumerate(BAD_BASE_URLS):
            site = c.post("/sites", json={"name": f"s{i}", "url": url, "token": "t" * 12})
            peer = c.post("/peers", json={"name": f"p{i}", "url": url})
            for r in (site, peer):
                assert r.status_code == 422, (url, r.text)
                assert "must be http(s)://HOST[:PORT]" in r.json()["detail"], r.text
        assert c.get("/sites").json()["sites"] == []
        assert c.get("/peers").json()["peers"] == []
        ok = c.post("/peers", json={"name": "p", "url": "http://user:pw@127.0.0.1:9/base/"})
        assert ok.status_code == 201, ok.text


def test_peer_fields_of_the_wrong_type_are_refused(server: Server) -> None:
    """A sync naming collections [1, null] was a 500 (check_collection took only
    strings); a peer token 5 or {"a": 1} was stored as its str() ("{'a': 1}"); a peer
    name with a control character was stored (a NUL: 500 on PostgreSQL)."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as c:
        # on demand only (interval 0): the scheduler submits no sync of its own
        peer = {"name": "p", "url": "http://127.0.0.1:9", "interval_seconds": 0}
        c.post("/peers", json=peer).raise_for_status()
        r = c.post("/peers/p/sync", json={"collections": [1, None]})
        assert r.status_code == 422 and "collection name 1" in r.json()["detail"], r.text
        for token in (5, {"a": 1}, ["t"]):
            r = c.post("/peers", json={"name": "q", "url": "http://127.0.0.1:9", "token": token})
            assert r.status_code == 422 and "token must be a string" in r.text, r.text
        for name in ("q\n", "q\x00", "a\tb"):  # control characters: never a usable name
            r = c.post("/peers", json={"name": name, "url": "http://127.0.0.1:9"})
            assert r.status_code == 422 and "printable characters" in r.text, (name, r.text)
        assert [p["name"] for p in c.get("/peers").json()["peers"]] == ["p"]
    with server.client() as cl:
        assert cl.jobs()["total"] == 0


def test_cli_reports_errors_plainly(setup: tuple[Server, Path, Path]) -> None:
    server, _, _ = setup
    result = server.cli("transfer", "nope:x", "dst:y", check=False)
    assert result.returncode == 1
    assert "endpoint 'nope' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    result = server.cli("endpoint", "add", "x", "/y", "--option", "novalue", check=False)
    assert result.returncode == 1 and "key=value" in result.stderr
    result = server.cli("status", "424242", check=False)
    assert result.returncode == 1 and "job 424242 does not exist" in result.stderr


def test_cli_says_when_the_url_is_not_dataferry(tmp_path: Path) -> None:
    """A --url where some other web server answers (a proxy's page, a typo): a
    traceback for a 200 that is not JSON, the whole HTML page for an error."""

    class Other(BaseHTTPRequestHandler):
        def _page(self) -> None:
            body = b"<html><body><h1>Welcome to nginx</h1></body></html>"
            send_body(self, 404 if "missing" in self.path else 200, body, "text/html")

        do_GET = do_POST = _page

        def log_message(self, *args: Any) -> None:
            pass

    env = {"DATAFERRY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    empty = subprocess.run(
        [sys.executable, "-m", "dataferry", "--url", "", "jobs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2 and "--url is empty" in empty.stderr, empty
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for url in (
            f"http://127.0.0.1:{httpd.server_port}",
            f"http://127.0.0.1:{httpd.server_port}/missing",
        ):
            for args in (["jobs"], ["status", "1"], ["transfer", "a:b", "c:d"]):
                result = subprocess.run(
                    [sys.executable, "-m", "dataferry", "--url", url, *args],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                said = " ".join(result.stderr.split())
                assert result.returncode == 1, result
                assert "Traceback" not in result.stderr, result.stderr
                assert "does not look like dataferry (is DATAFERRY_URL or --url right?)" in said
                assert "Welcome to nginx" in said and len(said) < 400, said
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_unknown_job_and_bad_job_queries(setup: tuple[Server, Path, Path]) -> None:
    server, _, _ = setup
    assert httpx.get(f"{server.url}/api/v1/jobs/999").status_code == 404
    assert httpx.post(f"{server.url}/api/v1/jobs/999/cancel").status_code == 404
    r = httpx.get(f"{server.url}/api/v1/jobs", params={"state": "bogus"})
    assert r.status_code == 422 and "unknown state" in r.json()["detail"]
    assert httpx.get(f"{server.url}/api/v1/jobs", params={"limit": 0}).status_code == 422
    # a kind no capability registers (a typo) was an empty page, as if no such job ran
    r = httpx.get(f"{server.url}/api/v1/jobs", params={"kind": "tranfser"})
    assert r.status_code == 422 and "unknown kind 'tranfser'; one of: " in r.json()["detail"]
    assert "transfer" in r.json()["detail"]
    result = server.cli("jobs", "--kind", "tranfser", check=False)
    assert result.returncode == 1 and "unknown kind" in result.stderr
    r = httpx.get(f"{server.url}/api/v1/jobs", params={"kind": "ingest"})
    assert r.status_code == 200 and r.json()["total"] == 0


BEYOND_64_BITS = 2**63  # one past the largest integer SQLite and PostgreSQL store


def test_values_the_database_cannot_hold_are_refused_on_every_door(
    setup: tuple[Server, Path, Path],
) -> None:
    """An id or offset past the database's integers, or a name with a NUL character
    (PostgreSQL text cannot hold one), is the caller's mistake: a 4xx or an RPC
    fault, never a 500, and nothing changes."""
    server, _, _ = setup
    with server.client() as c:
        before = (c.request("GET", "/api/v1/jobs"), c.request("GET", "/api/v1/endpoints"))
    api = f"{server.url}/api/v1"
    for method, url, params in [
        ("GET", f"{api}/jobs/{BEYOND_64_BITS}", {}),
        ("GET", f"{api}/jobs/{BEYOND_64_BITS}/files", {}),
        ("POST", f"{api}/jobs/{BEYOND_64_BITS}/cancel", {}),
        ("POST", f"{api}/jobs/{BEYOND_64_BITS}/retry", {}),
        ("GET", f"{api}/jobs", {"offset": BEYOND_64_BITS}),
        ("GET", f"{api}/jobs", {"before": BEYOND_64_BITS}),
        ("GET", f"{api}/transactions/{BEYOND_64_BITS}", {}),
        ("GET", f"{server.url}/get_state", {"job_id": BEYOND_64_BITS}),
    ]:
        r = httpx.request(method, url, params=params, timeout=10)
        assert r.status_code == 422, (method, url, params, r.status_code, r.text)
        assert "range" in r.json()["detail"], r.text
    # 2**31 is past PostgreSQL's 32-bit ids only: no such job either way.
    assert httpx.get(f"{api}/jobs/{2**31}").status_code in (404, 422)
    for url in [f"{api}/endpoints/a%00b", f"{api}/sites/a%00b", f"{api}/sinks/a%00b"]:
        r = httpx.get(url, timeout=10)
        assert r.status_code in (404, 422), (url, r.status_code, r.text)
    r = httpx.delete(f"{api}/endpoints/src%00", timeout=10)
    assert r.status_code in (404, 422), r.text

    rpc = {"jsonrpc": "2.0", "id": 1, "method": "jobs.get", "params": [BEYOND_64_BITS]}
    answer = httpx.post(f"{server.url}/jsonrpc", json=rpc, timeout=10).json()
    assert answer["error"]["code"] == -32602 and "range" in answer["error"]["message"]
    mover = xmlrpc.client.ServerProxy(f"{server.url}/data_mover")
    assert mover.checkMoveStatus(str(BEYOND_64_BITS)) == {
        "status": "REJECTED",
        "reason": "Job does not exist",
    }
    result = server.cli("status", str(BEYOND_64_BITS), check=False)
    assert result.returncode == 1 and "range" in result.stderr
    assert "Traceback" not in result.stderr

    with server.client() as c:
        after = (c.request("GET", "/api/v1/jobs"), c.request("GET", "/api/v1/endpoints"))
    assert after == before


def test_a_name_the_file_system_refuses_fails_the_job_at_once(
    setup: tuple[Server, Path, Path],
) -> None:
    """No retry can mend a name longer than the file system allows: the job fails on
    its first attempt instead of retrying with backoff."""
    server, _, dst = setup
    r = post(server, {"source": "src:d/f.txt", "destination": "dst:" + "x" * 300})
    assert r.status_code == 202, r.text
    doc = server.wait_job(r.json()["job_id"])
    assert doc["state"] == "failed" and doc["attempts"] == 1, doc
    assert "File name too long" in doc["error"], doc["error"]
    assert sorted(p.name for p in dst.iterdir()) == ["a-file"]


def test_vanishing_source_fails_then_retry_succeeds(server_factory: Any, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    (src / "d" / "a-large.bin").write_bytes(os.urandom(256 * MiB))
    (src / "d" / "b-small.txt").write_text("small")
    env: dict[str, str] = {
        "DATAFERRY_TRANSFER__CONCURRENCY": "1",
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "65536",
    }
    server: Server = server_factory("v", env=env)
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    with server.client() as c:
        job_id = c.transfer("src:d", "dst:d")["job_id"]
    # Files are copied in name order, one at a time: while the large file's temporary
    # is being filled, the small one has not been read yet.
    large_tmp = dst / "d" / f".a-large.bin.{job_id}.dftmp"
    deadline = time.monotonic() + 60
    while not large_tmp.exists():
        assert time.monotonic() < deadline, server.wait_job(job_id, timeout=1)
        time.sleep(0.0005)
    (src / "d" / "b-small.txt").unlink()  # while the large file is still copying
    doc = server.wait_job(job_id)
    assert doc["state"] == "failed", doc
    assert "b-small.txt" in doc["error"] and "vanished" in doc["error"]
    assert temporaries(dst) == []
    with server.client() as c:
        states = {f["path"]: f["state"] for f in c.job_files(job_id)}
    assert states == {"a-large.bin": "done", "b-small.txt": "failed"}
    large = os.stat(dst / "d" / "a-large.bin")

    (src / "d" / "b-small.txt").write_text("small")
    assert server.cli_json("retry", str(job_id))["state"] == "queued"
    doc = server.wait_job(job_id)
    assert doc["state"] == "succeeded", doc
    assert (dst / "d" / "b-small.txt").read_text() == "small"
    again = os.stat(dst / "d" / "a-large.bin")
    assert (again.st_ino, again.st_mtime_ns) == (large.st_ino, large.st_mtime_ns)


def nested(depth: int) -> str:
    """JSON text of ``depth`` lists, one inside the other."""
    return "[" * depth + "]" * depth


def test_deeply_nested_records_are_refused_on_every_door(server: Server) -> None:
    """A record or schema nested past the records' limit (100 levels), or JSON nested
    past what a parser can recurse into, is a 422, an RPC fault or a rejected import
    row, never a 500 from a RecursionError; nothing is written and the server serves on.
    (Before, 300 levels were stored through JSON-RPC and then every listing of the
    collection failed.)"""
    api = f"{server.url}/api/v1/collections/obs"
    json_type = {"content-type": "application/json"}
    assert httpx.post(f"{api}/records", json={"n": 1}, timeout=10).status_code == 201
    before = httpx.get(f"{api}/changes", timeout=10).json()

    record = '{"a": ' + nested(300) + "}"
    r = httpx.post(f"{api}/records", content=record, headers=json_type, timeout=10)
    assert r.status_code == 422 and "nests deeper than 100 levels" in r.json()["detail"], r.text
    schema = '{"schema": ' + '{"items": ' * 300 + "{}" + "}" * 301
    r = httpx.put(api, content=schema, headers=json_type, timeout=10)
    assert r.status_code == 422 and "nests deeper than 100 levels" in r.json()["detail"], r.text

    for params, code in ((f'["obs", {record}]', -32602), (nested(100_000), -32700)):
        call = '{"jsonrpc": "2.0", "id": 1, "method": "records.put", "params": ' + params + "}"
        r = httpx.post(f"{server.url}/jsonrpc", content=call, headers=json_type, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["error"]["code"] == code, r.text

    def import_(fmt: str, body: str) -> httpx.Response:
        return httpx.post(f"{api}/import", params={"format": fmt}, content=body, timeout=30)

    r = import_("json", nested(100_000))
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"], r.text
    rows = {
        "json": (f"[{record}]", "nests deeper than 100 levels"),
        "csv": (f'data\n"{"[" * 100_000}"\n', "nested too deeply"),
        "xml": (f"<records><record><data>{nested(100_000)}</data></record></records>", "deeply"),
    }
    for fmt, (body, reason) in rows.items():
        report = import_(fmt, body)
        assert report.status_code == 200, (fmt, report.text)
        assert report.json()["rejected"] == 1 and reason in report.text, (fmt, report.text)
    # A CSV row with more values than the header has columns is one rejected row.
    report = import_("csv", "n\n1,2,3\n")
    assert report.status_code == 200, report.text
    assert "more values than the header" in report.json()["rejections"][0]["reason"]

    assert httpx.get(f"{api}/changes", timeout=10).json() == before
    assert httpx.get(f"{api}/records", timeout=10).json()["total"] == 1
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.database_agnostic
def test_cli_says_plainly_what_json_it_cannot_read_or_send(server: Server, tmp_path: Path) -> None:
    """A document or mapping file nested too deeply to parse, and a number JSON cannot
    carry (``inf``, ``nan``), are clean CLI errors, not tracebacks; nothing is sent."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + nested(100_000) + "}")
    for args, message in [
        (("records", "put", "obs", "--file", str(deep)), "nested too deeply"),
        (("sink", "add", "s", "--collection", "obs", "--mapping", str(deep)), "nested too deeply"),
        (("sink", "add", "s", "--collection", "obs", "--poll-interval", "inf"), "infinite"),
        (("sink", "add", "s", "--collection", "obs", "--timeout", "nan"), "not a number"),
    ]:
        result = server.cli(*args, check=False)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    with server.client() as c:
        assert c.request("GET", "/api/v1/sinks")["sinks"] == []
        assert c.request("GET", "/api/v1/collections")["collections"] == []


def test_nan_and_infinity_in_records_are_refused_not_stored_as_null(server: Server) -> None:
    """Python's JSON parsers read NaN and Infinity, which JSON has not got; a record
    holding one was stored with null in its place. Now: 422, an RPC fault, a rejected
    import row; nothing is written."""
    api = f"{server.url}/api/v1/collections/obs"
    json_type = {"content-type": "application/json"}
    assert httpx.post(f"{api}/records", json={"n": 1}, timeout=10).status_code == 201
    before = httpx.get(f"{api}/changes", timeout=10).json()
    for value in ("NaN", "Infinity", "-Infinity"):
        record = '{"a": {"b": [1, ' + value + "]}}"
        r = httpx.post(f"{api}/records", content=record, headers=json_type, timeout=10)
        assert r.status_code == 422 and "JSON numbers are finite" in r.text, r.text
        call = '{"jsonrpc": "2.0", "id": 1, "method": "records.put", "params": ["obs", '
        r = httpx.post(f"{server.url}/jsonrpc", content=call + record + "]}", timeout=10)
        assert r.json()["error"]["code"] == -32602, r.text
        r = httpx.post(
            f"{api}/import", params={"format": "json"}, content=f"[{record}]", timeout=10
        )
        assert r.status_code == 200 and r.json()["rejected"] == 1, r.text
        assert "JSON numbers are finite" in r.json()["rejections"][0]["reason"]
    assert httpx.get(f"{api}/changes", timeout=10).json() == before

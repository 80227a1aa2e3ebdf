"""The RPC doors through a real server: XML-RPC with Python's own ServerProxy (the
way existing data mover clients call it) and JSON-RPC 2.0 with plain HTTP posts."""

from __future__ import annotations

import io
import time
import xmlrpc.client
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.httpfiles import FileServer
from tests.support.server import Server

ALL_METHODS = {
    "transfers.submit", "jobs.get", "jobs.list", "jobs.cancel", "jobs.retry", "endpoints.list",
    "move", "check_move_status", "checkMoveStatus", "pullOccurrenceFromALA", "checkALAJobStatus",
}  # fmt: skip


@pytest.fixture
def folders(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "tree" / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "tree" / "a.txt").write_text("alpha")
    (src / "tree" / "sub" / "b-ü.txt").write_text("beta")
    (src / "one.txt").write_text("one")
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "dst", str(dst))
    return src, dst


@pytest.fixture
def web(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.csv").write_text("x,y\n1,2\n")
    srv = FileServer(root).start()
    yield srv
    srv.stop()


def proxy(server: Server, path: str = "/data_mover", token: str = "") -> Any:
    base = server.url.replace("http://", f"http://dataferry:{token}@") if token else server.url
    return xmlrpc.client.ServerProxy(base + path, allow_none=True)


def wait_status(
    call: Any, job_id: int, final: tuple[str, ...] = ("COMPLETED", "FAILED")
) -> dict[str, Any]:
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc: dict[str, Any] = call(job_id)
        seen.append(doc["status"])
        if doc["status"] in final:
            doc["seen"] = seen
            return doc
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {seen[-5:]}")


# -- XML-RPC -----------------------------------------------------------------


def test_xmlrpc_introspection_on_both_paths(server: Server) -> None:
    for path in ("/RPC2", "/data_mover"):
        names = set(proxy(server, path).system.listMethods())
        assert names >= ALL_METHODS and "system.methodHelp" in names
    help_text = proxy(server).system.methodHelp("move")
    assert "REJECTED" in help_text and "zip" in help_text


def test_xmlrpc_move_copies_urls_and_endpoint_paths(
    server: Server, folders: tuple[Path, Path], web: FileServer
) -> None:
    _src, dst = folders
    p = proxy(server)
    doc = p.move("src:tree", "dst:inbox")
    assert doc["status"] == "PENDING" and isinstance(doc["id"], int)
    done = wait_status(p.check_move_status, doc["id"])
    assert done == {"id": doc["id"], "status": "COMPLETED", "seen": done["seen"]}
    assert (dst / "inbox" / "tree" / "sub" / "b-ü.txt").read_text() == "beta"
    # a list of sources, one of them a URL; the camelCase alias answers the same
    doc = p.move([web.url + "/data.csv", "src:one.txt"], "dst:inbox2")
    done = wait_status(p.checkMoveStatus, doc["id"])
    assert done["status"] == "COMPLETED", done
    assert (dst / "inbox2" / "data.csv").read_text() == "x,y\n1,2\n"
    assert (dst / "inbox2" / "one.txt").read_text() == "one"


def test_xmlrpc_move_zip(server: Server, folders: tuple[Path, Path], web: FileServer) -> None:
    _, dst = folders
    p = proxy(server)
    doc = p.move(["src:tree", web.url + "/data.csv"], "dst:out/bundle.zip", True)
    assert wait_status(p.check_move_status, doc["id"])["status"] == "COMPLETED"
    with zipfile.ZipFile(io.BytesIO((dst / "out" / "bundle.zip").read_bytes())) as z:
        assert sorted(z.namelist()) == ["data.csv", "tree/a.txt", "tree/sub/b-ü.txt"]
        assert z.read("tree/a.txt") == b"alpha"
    assert not [n for n in (dst / "out").iterdir() if n.name.endswith(".dftmp")]


def test_xmlrpc_move_zip_into_a_file_fails_naming_it(
    server: Server, folders: tuple[Path, Path]
) -> None:
    """A zip move whose destination folder is a file fails with the file system's
    reason (before: "internal error: FileExistsError"), and leaves nothing behind."""
    _, dst = folders
    (dst / "taken").write_text("a file, not a folder")
    p = proxy(server)
    for destination in ("dst:taken", "dst:taken/deeper/bundle.zip"):
        done = wait_status(p.check_move_status, p.move("src:tree", destination, True)["id"])
        assert done["status"] == "FAILED", done
        assert "internal error" not in done["reason"], done
        assert "taken" in done["reason"] and "Not a directory" in done["reason"], done
    assert sorted(n.name for n in dst.iterdir()) == ["taken"]
    assert (dst / "taken").read_text() == "a file, not a folder"


def test_xmlrpc_move_failure_and_rejections(
    server: Server, folders: tuple[Path, Path], web: FileServer
) -> None:
    p = proxy(server)
    doc = p.move(web.url + "/missing.csv", "dst:x")
    done = wait_status(p.check_move_status, doc["id"])
    assert done["status"] == "FAILED" and "not found" in done["reason"], done
    reasons = {
        "unknown destination": p.move("src:one.txt", "nowhere:x"),
        "unknown URL scheme": p.move("gopher://host/x", "dst:x"),
        "missing host": p.move("http:///x", "dst:x"),
        "missing source": p.move(),
        "missing destination": p.move("src:one.txt"),
    }
    for expected, answer in reasons.items():
        assert answer["status"] == "REJECTED", (expected, answer)
        assert expected.split()[-1] in answer["reason"], (expected, answer)
    with server.client() as c:
        assert c.jobs()["total"] == 1  # only the first move made a job
    for check in (p.check_move_status, p.checkMoveStatus, p.checkALAJobStatus):
        assert check(987654) == {"status": "REJECTED", "reason": "Job does not exist"}
        assert check("not-a-number") == {"status": "REJECTED", "reason": "Job does not exist"}


def test_xmlrpc_job_methods(server: Server, folders: tuple[Path, Path]) -> None:
    p = proxy(server)
    job = p.transfers.submit("src:tree", "dst:copy")
    assert job["state"] in ("queued", "running", "succeeded") and job["kind"] == "transfer"
    doc = server.wait_job(job["job_id"])
    assert doc["state"] == "succeeded"
    assert p.jobs.get(job["job_id"])["files_done"] == 2
    assert p.jobs.list("succeeded")["total"] == 1
    assert [e["name"] for e in p.endpoints.list()] == ["dst", "src"]
    with pytest.raises(xmlrpc.client.Fault) as err:
        p.jobs.cancel(job["job_id"])
    assert err.value.faultCode == -32000 and "conflict" in err.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as err:
        p.transfers.submit("src:../x", "dst:y")
    assert err.value.faultCode == -32602 and ".." in err.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as err:
        p.jobs.get()
    assert err.value.faultCode == -32602
    for not_an_id in (float("inf"), float("nan"), 1.5, True, "1e3", [1]):
        with pytest.raises(xmlrpc.client.Fault) as err:
            p.jobs.get(not_an_id)
        assert err.value.faultCode == -32602 and "whole number" in err.value.faultString
        gone = {"status": "REJECTED", "reason": "Job does not exist"}
        assert p.checkMoveStatus(not_an_id) == gone
    assert p.jobs.get(float(job["job_id"]))["job_id"] == job["job_id"]  # 7.0 is job 7
    with pytest.raises(xmlrpc.client.Fault) as err:
        p.no.such.method()
    assert err.value.faultCode == -32601
    failed = p.move("src:missing.txt", "dst:x")
    assert wait_status(p.check_move_status, failed["id"])["status"] == "FAILED"
    again = p.jobs.retry(failed["id"])
    assert again["attempts"] == 0 and again["state"] in ("queued", "running", "failed")
    queued = p.transfers.submit("src:one.txt", "dst:two.txt")
    try:
        assert p.jobs.cancel(queued["job_id"])["state"] == "cancelled"
    except xmlrpc.client.Fault as late:  # it ran to the end before the cancel came
        assert "conflict" in late.faultString
        assert p.jobs.get(queued["job_id"])["state"] == "succeeded"


def post_xml(server: Server, body: str | bytes) -> Any:
    r = httpx.post(server.url + "/RPC2", content=body, headers={"Content-Type": "text/xml"})
    assert r.status_code == 200
    return xmlrpc.client.loads(r.content)


def test_xmlrpc_hostile_and_malformed_bodies(server: Server) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{"&lol" + (str(i - 1) if i > 1 else "") + ";" * 1}' * 10 + '">'
            for i in range(1, 10)
        )
        + "]><methodCall><methodName>&lol9;</methodName></methodCall>"
    )
    external = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<methodCall><methodName>jobs.get</methodName><params><param><value>"
        "<string>&xxe;</string></value></param></params></methodCall>"
    )
    for body in (bomb, external, "<methodCall><methodName>x", "not xml at all", b"\xff\xfe\x00"):
        with pytest.raises(xmlrpc.client.Fault) as err:
            post_xml(server, body)
        assert err.value.faultCode == -32700, body
    assert httpx.get(server.url + "/healthz").status_code == 200  # still up


def test_rpc_tokens(server_factory) -> None:  # type: ignore[no-untyped-def]
    server: Server = server_factory("a", env={"DATAFERRY_TOKENS": '["s3cret-token"]'})
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        proxy(server).jobs.list()
    assert err.value.errcode == 401
    with pytest.raises(xmlrpc.client.ProtocolError):
        proxy(server, token="wrong").jobs.list()
    assert proxy(server, token="s3cret-token").jobs.list()["total"] == 0
    call = {"jsonrpc": "2.0", "method": "jobs.list", "id": 1}
    r = httpx.post(server.url + "/jsonrpc", json=call, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == -32001
    r = httpx.post(
        server.url + "/jsonrpc", json=call, headers={"Authorization": "Bearer s3cret-token"}
    )
    assert r.json()["result"]["total"] == 0


# -- JSON-RPC -----------------------------------------------------------------


def rpc(server: Server, body: Any, raw: bytes | None = None) -> httpx.Response:
    if raw is not None:
        return httpx.post(server.url + "/jsonrpc", content=raw)
    return httpx.post(server.url + "/jsonrpc", json=body)


def call(server: Server, method: str, *params: Any, **named: Any) -> Any:
    body = {"jsonrpc": "2.0", "method": method, "params": named or list(params), "id": "x"}
    doc = rpc(server, body).json()
    assert doc["id"] == "x" and doc["jsonrpc"] == "2.0"
    return doc


def test_jsonrpc_every_method(server: Server, folders: tuple[Path, Path]) -> None:
    _, dst = folders
    job = call(server, "transfers.submit", source="src:tree", destination="dst:j")["result"]
    assert server.wait_job(job["job_id"])["state"] == "succeeded"
    assert call(server, "jobs.get", job["job_id"])["result"]["state"] == "succeeded"
    assert call(server, "jobs.list", kind="transfer")["result"]["total"] == 1
    assert len(call(server, "endpoints.list")["result"]) == 2
    moved = call(server, "move", "src:one.txt", "dst:m")["result"]
    assert moved["status"] == "PENDING"
    done = wait_status(lambda i: call(server, "check_move_status", i)["result"], moved["id"])
    assert done["status"] == "COMPLETED" and (dst / "m" / "one.txt").read_text() == "one"
    assert call(server, "checkMoveStatus", moved["id"])["result"]["status"] == "COMPLETED"
    assert call(server, "jobs.cancel", moved["id"])["error"]["data"]["error"] == "conflict"
    failed = call(server, "move", "src:missing.txt", "dst:x")["result"]
    done = wait_status(lambda i: call(server, "check_move_status", i)["result"], failed["id"])
    assert done["status"] == "FAILED" and "not found" in done["reason"], done
    retried = call(server, "jobs.retry", failed["id"])["result"]
    assert retried["attempts"] == 0 and retried["state"] == "queued"
    assert call(server, "pullOccurrenceFromALA", "urn:lsid:x")["result"]["status"] == "REJECTED"
    assert call(server, "checkALAJobStatus", 424242)["result"]["status"] == "REJECTED"


def test_jsonrpc_batch_notifications_and_errors(server: Server, folders: tuple[Path, Path]) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "jobs.list", "id": 1},
        {"jsonrpc": "2.0", "method": "move", "params": ["src:one.txt", "dst:n"]},  # notification
        {"jsonrpc": "2.0", "method": "nope", "id": 2},
        {"jsonrpc": "2.0", "method": "jobs.get", "params": {"wrong": 1}, "id": 3},
        {"jsonrpc": "2.0", "method": "jobs.get", "params": [999], "id": 4},
        {"jsonrpc": "1.0", "method": "jobs.list", "id": 5},
        42,
    ]
    answers = rpc(server, batch).json()
    by_id = {a["id"]: a for a in answers}
    assert len(answers) == 6  # the notification gets no answer
    assert "result" in by_id[1]
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    assert by_id[4]["error"]["code"] == -32000 and by_id[4]["error"]["data"]["error"] == "not_found"
    invalid = [a for a in answers if a["id"] is None]
    assert len(invalid) == 2 and {a["error"]["code"] for a in invalid} == {-32600}
    # the notification still ran: one move job exists
    assert call(server, "jobs.list", kind="mover.move")["result"]["total"] == 1
    r = rpc(server, {"jsonrpc": "2.0", "method": "jobs.list"})
    assert r.status_code == 204 and r.content == b""
    assert rpc(server, None, raw=b"{not json").json()["error"]["code"] == -32700
    assert rpc(server, []).json()["error"]["code"] == -32600
    assert rpc(server, {"jsonrpc": "2.0", "method": 7, "id": 1}).json()["error"]["code"] == -32600
    refused = call(server, "transfers.submit", "src:one.txt", "dst:x", "teleport")
    assert refused["error"]["code"] == -32602 and "mode" in refused["error"]["message"]
    # Parameters of the wrong type are refused before the method runs, on every method
    # (they reached the services before: a list as a dataset uid was an SQL error).
    jobs_before = call(server, "jobs.list")["result"]["total"]
    for method, params, where in [
        ("datasets.show", [["a"]], "uid"),
        ("records.put", [-1, -1], "collection"),
        ("jobs.list", [["a"]], "state"),
        ("transfers.submit", [{"a": 1}, "dst:x"], "source"),
    ]:
        answer = rpc(server, {"jsonrpc": "2.0", "method": method, "params": params, "id": 9})
        error = answer.json()["error"]
        assert error["code"] == -32602, (method, error)
        assert f"{where}: Input should be" in error["message"], (method, error)
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.ServerProxy(f"{server.url}/RPC2").datasets.restart(["a"])
    assert fault.value.faultCode == -32602 and "uid: Input should be" in fault.value.faultString
    assert call(server, "jobs.list")["result"]["total"] == jobs_before


NOT_INTS = [True, "5", 1.5, 5.0]  # lax reading took these as 1, 5, refused, 5


def test_integer_params_are_strict_at_both_doors(
    server: Server, folders: tuple[Path, Path]
) -> None:
    """A list method's limit and offset take integers only: JSON's true, a string of
    digits and a float are refused naming the parameter, as a negative number is."""
    call(server, "transfers.submit", source="src:one.txt", destination="dst:x")
    xml = proxy(server, "/RPC2")
    for name in ("limit", "offset"):
        for value in NOT_INTS:
            error = call(server, "jobs.list", **{name: value})["error"]
            assert error["code"] == -32602, (name, value, error)
            assert f"{name}: Input should be a valid integer" in error["message"], error
            with pytest.raises(xmlrpc.client.Fault) as fault:
                xml.jobs.list(None, None, *([value] if name == "limit" else [50, value]))
            assert fault.value.faultCode == -32602, (name, value)
            assert f"{name}: Input should be a valid integer" in fault.value.faultString
    for params, message in [
        ({"limit": -1}, "limit must be between 1"),
        ({"offset": -1}, "offset must not be negative"),
    ]:
        error = call(server, "jobs.list", **params)["error"]
        assert error["code"] == -32602 and message in error["message"], error
        with pytest.raises(xmlrpc.client.Fault) as fault:
            xml.jobs.list(None, None, params.get("limit", 50), params.get("offset", 0))
        assert fault.value.faultCode == -32602 and message in fault.value.faultString
    page = call(server, "jobs.list", limit=5, offset=0)["result"]
    assert page["limit"] == 5 and page["total"] == 1
    assert xml.jobs.list(None, None, 5, 0)["limit"] == 5
    with pytest.raises(xmlrpc.client.Fault) as fault:  # another registry method alike
        xml.records.changes("c", 0, True)
    assert "limit: Input should be a valid integer" in fault.value.faultString

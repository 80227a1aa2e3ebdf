"""Peers authenticate per site: no token, a wrong token or an unknown site gets 403
and changes nothing; plain HTTP from a host that is not loopback is refused unless
allowed; ``serve --certfile/--keyfile`` serves HTTPS that peers verify."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pair import TOKEN
from tests.support.server import Server
from tests.support.services import unavailable

UID = "fac.exp-1"
ADMIN = "admin-token-for-these-tests"


def local_address() -> str:
    """An address of this machine that is not loopback (peers' requests come from it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.250", 9))  # no packet is sent: only the route is looked up
            addr: str = s.getsockname()[0]
        except OSError:
            addr = ""
    if not addr or ipaddress.ip_address(addr).is_loopback:
        unavailable("this machine has no address besides loopback")
    return addr


@pytest.fixture
def provider(server_factory: Any, tmp_path: Path) -> Server:
    """A provider with one ready dataset and the consumer site 'home' registered."""
    data = tmp_path / "data" / "exp"
    data.mkdir(parents=True)
    (data / "f.txt").write_bytes(b"payload")
    srv: Server = server_factory("p", env={"DATAFERRY_DATASETS__SITE_NAME": "fac"})
    srv.cli("endpoint", "add", "data", str(tmp_path / "data"), "-o", "peer_read=home")
    srv.cli("site", "add", "home", "http://127.0.0.1:9", "--token", TOKEN, "--inbound", "in:x")
    job = srv.cli_json("dataset", "publish", UID, "--from", "data:exp")["job_id"]
    assert srv.wait_job(job)["state"] == "succeeded"
    return srv


BAD_HEADERS = {
    "no token": {"X-Dataferry-Site": "home"},
    "no site": {"Authorization": f"Bearer {TOKEN}"},
    "wrong token": {"X-Dataferry-Site": "home", "Authorization": "Bearer wrong-token-123"},
    "unknown site": {"X-Dataferry-Site": "mallory", "Authorization": f"Bearer {TOKEN}"},
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_bad_peer_credentials_get_403_and_change_nothing(provider: Server, case: str) -> None:
    headers = BAD_HEADERS[case]
    with httpx.Client(base_url=f"{provider.url}/api/v1", headers=headers, timeout=30) as c:
        calls = [
            c.post(f"/datasets/{UID}/transfer-requests", json={}),
            c.get(f"/datasets/{UID}/transfer-status", params={"transfer_id": 1}),
            c.post("/synced-datasets", json={"uid": "fac.other"}),
            c.get("/peer/endpoints/data/files", params={"path": "exp/f.txt"}),
            c.put("/peer/endpoints/data/uploads", params={"path": ".n.1.dftmp"}, content=b"x"),
            c.delete("/peer/endpoints/data/files", params={"path": "exp/f.txt"}),
        ]
    for r in calls:
        assert r.status_code == 403, (r.request.url, r.text)
        assert r.json()["error"] == "forbidden"
    with provider.client() as c:
        kinds = [j["kind"] for j in c.jobs()["jobs"]]
        assert kinds == ["dataset_manifest"]  # no delivery was started
        assert c.synced_datasets() == []
    assert (provider.home.parent / "data" / "exp" / "f.txt").read_bytes() == b"payload"
    assert not (provider.home.parent / "data" / ".n.1.dftmp").exists()


def test_a_provider_site_is_not_served_our_datasets(provider: Server) -> None:
    """A site registered with role provider sends us datasets; before, its token
    also fetched our datasets' manifests and started deliveries to it."""
    provider.cli(
        "site", "add", "src", "http://127.0.0.1:9", "--token", TOKEN, "--role", "provider",
        "--inbound", "in:x",
    )  # fmt: skip
    headers = {"X-Dataferry-Site": "src", "Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{provider.url}/api/v1", headers=headers, timeout=30) as c:
        calls = [
            c.get(f"/datasets/{UID}"),
            c.get(f"/datasets/{UID}", params={"format": "mets"}),
            c.post(f"/datasets/{UID}/transfer-requests", json={}),
            c.get(f"/datasets/{UID}/transfer-status", params={"transfer_id": 1}),
            c.get("/datasets/fac.nope"),  # the same answer, whether the dataset exists
        ]
    for r in calls:
        assert r.status_code == 403, (r.request.url, r.text)
        assert r.json()["detail"] == (
            "site 'src' is registered here as a provider (it sends us datasets): "
            "only a consumer site may ask for ours"
        ), r.text
    with provider.client() as c:
        assert [j["kind"] for j in c.jobs()["jobs"]] == ["dataset_manifest"]


def test_the_right_site_and_token_are_accepted(provider: Server) -> None:
    headers = {"X-Dataferry-Site": "home", "Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{provider.url}/api/v1", headers=headers, timeout=30) as c:
        doc = c.get(f"/datasets/{UID}").json()
        assert doc["files"] == 1 and doc["manifest"][0]["path"] == "f.txt"
        assert (
            c.get("/peer/endpoints/data/files", params={"path": "exp/f.txt"}).content == b"payload"
        )
        bad = c.get(f"/datasets/{UID}/transfer-status", params={"transfer_id": 99})
        assert bad.status_code == 400 and bad.json()["status"] == "bad request"
        # An id past what the database stores is no such transfer either, not a
        # "server error" the consumer would retry.
        for too_big in (2**63, 2**31):
            bad = c.get(f"/datasets/{UID}/transfer-status", params={"transfer_id": too_big})
            assert bad.status_code == 400 and bad.json()["status"] == "bad request", bad.text


def test_an_announced_uid_that_could_never_be_fetched_is_refused(provider: Server) -> None:
    """A peer's notify took any UID with a dot: one with a control character, a '/'
    or a space was stored, and the consumer then failed every tick with a traceback
    (no URL can carry it) or asked the provider for another path (found by
    schemathesis on the peer routes)."""
    headers = {"X-Dataferry-Site": "home", "Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{provider.url}/api/v1", headers=headers, timeout=30) as c:
        for uid in ("fac.exp\x16", "fac.a/../../peer", "fac.a b", "fac.", ".x", "fac.x\n", "f c.x"):
            r = c.post("/synced-datasets", json={"uid": uid})
            assert r.status_code == 422, (uid, r.text)
            assert "must be <site-prefix>.<id>" in r.json()["detail"], r.text
        with provider.client() as admin:
            assert admin.synced_datasets() == []
        ok = c.post("/synced-datasets", json={"uid": "fac.exp-2.v_1"})
        assert ok.status_code == 200, ok.text


def test_site_registry_rules(provider: Server) -> None:
    def refused(*args: str) -> str:
        r = provider.cli("site", "add", *args, check=False)
        assert r.returncode == 1, r.stdout
        return r.stderr

    assert "plain HTTP" in refused("far", "http://203.0.113.5:8080", "--token", TOKEN)
    assert "already exists" in refused("home", "http://127.0.0.1:1", "--token", TOKEN)
    assert "at least 8" in refused("short", "https://x.example", "--token", "abc")
    assert "role" in refused("r", "https://x.example", "--token", TOKEN, "--role", "boss")
    assert "ENDPOINT:PATH" in refused(
        "i", "https://x.example", "--token", TOKEN, "--inbound", "nocolon"
    )
    sites = provider.cli_json("site", "list")
    assert [s["name"] for s in sites] == ["home"]
    assert "token" not in sites[0]  # never shown
    provider.cli("site", "add", "far", "https://203.0.113.5", "--token", TOKEN)
    provider.cli("site", "remove", "far")
    assert [s["name"] for s in provider.cli_json("site", "list")] == ["home"]


def test_plain_http_from_a_non_loopback_peer_is_refused_unless_allowed(
    server_factory: Any, tmp_path: Path
) -> None:
    addr = local_address()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"1")
    headers = {"X-Dataferry-Site": "home", "Authorization": f"Bearer {TOKEN}"}
    for allow in ("false", "true"):
        srv: Server = server_factory(
            f"h-{allow}",
            env={
                "DATAFERRY_HOST": "0.0.0.0",
                "DATAFERRY_TOKENS": f'["{ADMIN}"]',
                "DATAFERRY_TOKEN": ADMIN,
                "DATAFERRY_DATASETS__ALLOW_INSECURE_PEERS": allow,
            },
            db=f"sqlite:///{tmp_path}/{allow}.db",
        )
        srv.cli("endpoint", "add", "d", str(tmp_path / "d"), "-o", "peer_read=home")
        srv.cli("site", "add", "home", "http://127.0.0.1:9", "--token", TOKEN)
        url = f"http://{addr}:{srv.port}/api/v1/peer/endpoints/d/files"
        r = httpx.get(url, params={"path": "f"}, headers=headers, timeout=30)
        if allow == "false":
            assert r.status_code == 403 and "HTTPS" in r.json()["detail"], r.text
        else:
            assert r.status_code == 200 and r.content == b"1"
        srv.kill()


def self_signed(folder: Path, addresses: list[str]) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dataferry-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


def test_https_serve_with_certificate_accepts_remote_peers(
    server_factory: Any, tmp_path: Path
) -> None:
    addr = local_address()
    certfile, keyfile = self_signed(tmp_path, ["127.0.0.1", addr])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"tls")
    srv = Server(
        tmp_path / "tls-home",
        f"sqlite:///{tmp_path}/tls.db",
        {"DATAFERRY_HOST": "0.0.0.0", "DATAFERRY_TOKENS": f'["{ADMIN}"]', "DATAFERRY_TOKEN": ADMIN},
    )
    srv.home.mkdir(parents=True)
    srv.env["DATAFERRY_URL"] = srv.url = f"https://127.0.0.1:{srv.port}"
    srv.env["SSL_CERT_FILE"] = str(certfile)  # the CLI trusts the test certificate
    log = open(srv.log, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataferry",
            "serve",
            "--certfile",
            str(certfile),
            "--keyfile",
            str(keyfile),
        ],
        env=srv.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(
                        f"{srv.url}/healthz",
                        verify=ssl.create_default_context(cafile=str(certfile)),
                        timeout=1,
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(srv.log.read_text()) from None
                time.sleep(0.2)
        srv.cli("endpoint", "add", "d", str(tmp_path / "d"), "-o", "peer_read=home")
        srv.cli("site", "add", "home", "http://127.0.0.1:9", "--token", TOKEN)
        headers = {"X-Dataferry-Site": "home", "Authorization": f"Bearer {TOKEN}"}
        url = f"https://{addr}:{srv.port}/api/v1/peer/endpoints/d/files"
        r = httpx.get(
            url,
            params={"path": "f"},
            headers=headers,
            verify=ssl.create_default_context(cafile=str(certfile)),
            timeout=30,
        )
        assert r.status_code == 200 and r.content == b"tls"
        with pytest.raises(httpx.HTTPError):  # an untrusted certificate is not accepted
            httpx.get(url, params={"path": "f"}, headers=headers, timeout=30)
    finally:
        proc.kill()
        proc.wait(30)
        log.close()

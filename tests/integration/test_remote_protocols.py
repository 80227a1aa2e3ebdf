"""Every remote protocol as source and destination, through a real server and the
real CLI: SFTP against a real OpenSSH sshd, S3 against moto's standalone server
(the S3 stand-in, on loopback), HTTP against a small Range-capable file server."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.httpfiles import FileServer, write_random
from tests.support.server import Server
from tests.support.sshd import SSHServer
from tests.support.trees import hash_tree, make_tree, temporaries

# What differs here is the protocol; the jobs and endpoints they use are stored as in
# every other test, which the PostgreSQL pass runs.
pytestmark = pytest.mark.database_agnostic

MiB = 1024 * 1024


def add_sftp(server: Server, name: str, sshd: SSHServer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    key = sshd.folder / "user_ed25519"
    server.cli(
        "endpoint", "add", name, sshd.url(folder),
        "--secret-file", f"private_key={key}",
        "--option", f"known_hosts={sshd.folder / 'known_hosts'}",
    )  # fmt: skip


def make_bucket(endpoint_url: str) -> str:
    import boto3

    bucket = f"b-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return bucket


def add_s3(server: Server, name: str, endpoint_url: str, bucket: str, prefix: str = "") -> None:
    server.cli(
        "endpoint", "add", name, f"s3://{bucket}/{prefix}",
        "--option", f"endpoint_url={endpoint_url}", "--option", "region=us-east-1",
        "--secret", "access_key_id=test", "--secret", "secret_access_key=test",
    )  # fmt: skip


def add_remote(request: pytest.FixtureRequest, server: Server, protocol: str, folder: Path) -> None:
    """Register ``remote``: SFTP (the test sshd, under ``folder``) or S3 (moto)."""
    if protocol == "sftp":
        sshd: SSHServer = request.getfixturevalue("sshd")
        add_sftp(server, "remote", sshd, folder / "sftp-root")
    else:
        url = request.getfixturevalue("s3_service")
        add_s3(server, "remote", url, make_bucket(url), "data")


@pytest.fixture(params=["sftp", "s3"])
def remote(request, server: Server, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """A registered remote endpoint named ``remote`` of each writable protocol."""
    add_remote(request, server, request.param, tmp_path)
    return str(request.param)


@pytest.fixture
def local(server: Server, tmp_path: Path) -> tuple[Path, Path]:
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    back.mkdir()
    server.cli("endpoint", "add", "src", str(src))
    server.cli("endpoint", "add", "back", str(back))
    return src, back


def transfer(server: Server, *args: str) -> dict[str, object]:
    doc: dict[str, object] = server.cli_json("transfer", *args, "--wait", check=False)
    return doc


def test_tree_to_remote_and_back_in_every_mode(
    server: Server, remote: str, local: tuple[Path, Path]
) -> None:
    src, back = local
    expected = make_tree(src / "tree", 40, max_size=200_000)
    doc = transfer(server, "src:tree", "remote:tree")
    assert doc["state"] == "succeeded", doc
    assert doc["files_done"] == 40

    # sync: only the changed files travel
    changed = sorted(expected)[:3]
    for rel in changed:
        (src / "tree" / rel).write_bytes(b"changed " + rel.encode())
    doc = transfer(server, "src:tree", "remote:tree", "--mode", "sync")
    assert doc["state"] == "succeeded", doc
    with server.client() as c:
        states = [f["state"] for f in c.job_files(int(str(doc["job_id"])))]
    assert states.count("done") == len(changed) and states.count("skipped") == 40 - len(changed)

    # back again: remote as source, then move (the remote copy is emptied)
    doc = transfer(server, "remote:tree", "back:copy")
    assert doc["state"] == "succeeded", doc
    assert hash_tree(back / "copy") == hash_tree(src / "tree")
    doc = transfer(server, "remote:tree", "back:moved", "--mode", "move")
    assert doc["state"] == "succeeded", doc
    assert hash_tree(back / "moved") == hash_tree(src / "tree")
    result = server.cli("transfer", "remote:tree", "back:again", check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert temporaries(back) == []


def test_large_file_with_expected_checksum(
    server: Server, remote: str, local: tuple[Path, Path]
) -> None:
    src, back = local
    write_random(src / "big.bin", 24 * MiB + 123)  # S3: multipart (8 MiB parts)
    digest = hashlib.sha256((src / "big.bin").read_bytes()).hexdigest()
    doc = transfer(
        server, "src:big.bin", "remote:in/big.bin", "--expected-checksum", f"sha256:{digest}"
    )
    assert doc["state"] == "succeeded", doc
    doc = transfer(
        server, "remote:in/big.bin", "back:big.bin", "--expected-checksum", f"sha256:{digest}"
    )
    assert doc["state"] == "succeeded", doc
    with server.client() as c:
        assert c.job_files(int(str(doc["job_id"])))[0]["checksum"] == f"sha256:{digest}"
    assert hashlib.sha256((back / "big.bin").read_bytes()).hexdigest() == digest
    # a wrong expectation fails and leaves nothing under the final name
    doc = transfer(
        server, "src:big.bin", "remote:in/other.bin", "--expected-checksum", "sha256:" + "1" * 64
    )
    assert doc["state"] == "failed" and "expected" in str(doc["error"]), doc
    result = server.cli("transfer", "remote:in/other.bin", "back:x", check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr


# -- SFTP specifics -----------------------------------------------------------


def test_sftp_byte_level_resume_after_kill(server_factory, sshd: SSHServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_resume import job_result, stop_when_partial

    src, root = tmp_path / "src", tmp_path / "sftp-root"
    src.mkdir()
    size = 160 * MiB
    write_random(src / "big.bin", size)
    digest = hashlib.sha256((src / "big.bin").read_bytes()).hexdigest()
    env = {
        "DATAFERRY_TRANSFER__RESUME_MIN_BYTES": str(MiB),
        "DATAFERRY_TRANSFER__CHUNK_SIZE": "65536",  # many small writes: a slow copy to catch
    }
    server: Server = server_factory("a", env=env)
    server.cli("endpoint", "add", "src", str(src))
    add_sftp(server, "remote", sshd, root)
    job_id = server.cli_json("transfer", "src:big.bin", "remote:big.bin")["job_id"]
    partial = stop_when_partial(server, root, 2 * MiB)
    del server.env["DATAFERRY_TRANSFER__CHUNK_SIZE"]  # the rest at the usual block size
    restarted = server.start()
    doc = restarted.wait_job(job_id)
    assert doc["state"] == "succeeded", doc
    result = job_result(restarted, job_id)
    assert result["bytes_resumed"] >= partial - 64 * 1024 > 0
    assert result["bytes_read"] == size - result["bytes_resumed"]
    assert hashlib.sha256((root / "big.bin").read_bytes()).hexdigest() == digest
    assert temporaries(root) == []


def test_sftp_password_secret(server: Server, sshd: SSHServer, tmp_path: Path) -> None:
    from tests.support.sshd import PASSWORD, PASSWORD_USER, ensure_password_user

    folder = ensure_password_user()
    if folder is None:
        pytest.skip("password login needs a throwaway account, which only root can create")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.txt").write_text("hi")
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    known = f"known_hosts={sshd.folder / 'known_hosts'}"
    url = sshd.url(folder, user=PASSWORD_USER)
    server.cli("endpoint", "add", "pw", url, "-o", known, "-s", f"password={PASSWORD}")
    doc = transfer(server, "src:hello.txt", "pw:hello.txt")
    assert doc["state"] == "succeeded", doc
    assert (folder / "hello.txt").read_text() == "hi"
    # wrong password: refused at once, naming the endpoint and the cause, never the secret
    server.cli("endpoint", "add", "badpw", url, "-o", known, "-s", "password=Wrong-Secret-9")
    result = server.cli("transfer", "src:hello.txt", "badpw:x.txt", check=False)
    assert result.returncode == 1
    assert "badpw" in result.stderr and "permission denied" in result.stderr
    assert "Wrong-Secret-9" not in result.stderr


def test_sftp_host_key_checked_by_default(server: Server, sshd: SSHServer, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    key = sshd.folder / "user_ed25519"
    server.cli("endpoint", "add", "nokh", sshd.url(tmp_path), "--secret-file", f"private_key={key}")
    result = server.cli("transfer", "src:a", "nokh:a", check=False)
    assert result.returncode == 1 and "host key not verifiable" in result.stderr
    assert "BEGIN OPENSSH PRIVATE KEY" not in result.stderr
    # a server that is down: transient, said as such
    server.cli(
        "endpoint", "add", "down", f"sftp://root@127.0.0.1:{free_port_number()}/tmp",
        "-o", "host_key_check=false", "-o", "timeout=5",
    )  # fmt: skip
    result = server.cli("transfer", "src:a", "down:a", check=False)
    assert result.returncode == 1 and "down" in result.stderr
    assert "transient" in result.stderr or "Connection" in result.stderr


def free_port_number() -> int:
    from tests.support.services import free_port

    return free_port()


# -- S3 specifics -----------------------------------------------------------------


def test_s3_missing_bucket_is_permanent(server: Server, s3_service: str, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    add_s3(server, "nobucket", s3_service, "no-such-bucket-here")
    result = server.cli("transfer", "src:a", "nobucket:a", check=False)
    assert result.returncode == 1
    assert "nobucket" in result.stderr and "does not exist" in result.stderr


def test_s3_wrong_credentials_fail_at_once_naming_the_endpoint(
    server: Server, s3_service: str, tmp_path: Path
) -> None:
    """moto checks request signatures once its authentication is switched on
    (``/moto-api/reset-auth``); then only an IAM user's key is accepted."""
    import json

    import boto3
    import httpx

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    bucket = make_bucket(s3_service)
    iam = boto3.client(
        "iam", endpoint_url=s3_service, aws_access_key_id="test",
        aws_secret_access_key="test", region_name="us-east-1",
    )  # fmt: skip
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(allow_all))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    for name, secret in (("good", key["SecretAccessKey"]), ("bad", "Wrong-Secret-9")):
        server.cli(
            "endpoint", "add", name, f"s3://{bucket}/p",
            "--option", f"endpoint_url={s3_service}", "--option", "region=us-east-1",
            "--secret", f"access_key_id={key['AccessKeyId']}",
            "--secret", f"secret_access_key={secret}",
        )  # fmt: skip
    httpx.post(f"{s3_service}/moto-api/reset-auth", content=b"0").raise_for_status()
    try:
        result = server.cli("transfer", "src:a", "bad:a", check=False)
        assert result.returncode == 1, result.stdout
        assert "'bad'" in result.stderr and "access denied" in result.stderr, result.stderr
        assert "Wrong-Secret-9" not in result.stderr + result.stdout
        assert server.cli_json("jobs") == []  # refused before a job exists
        doc = transfer(server, "src:a", "good:a")
        assert doc["state"] == "succeeded", doc
    finally:
        httpx.post(f"{s3_service}/moto-api/reset-auth", content=b"inf").raise_for_status()


def test_s3_final_key_appears_only_when_complete(
    server: Server, s3_service: str, tmp_path: Path
) -> None:
    import boto3

    (tmp_path / "src").mkdir()
    write_random(tmp_path / "src" / "f.bin", 12 * MiB)
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    bucket = make_bucket(s3_service)
    add_s3(server, "s3", s3_service, bucket, "p")
    doc = transfer(server, "src:f.bin", "s3:f.bin")
    assert doc["state"] == "succeeded", doc
    client = boto3.client(
        "s3", endpoint_url=s3_service, aws_access_key_id="t", aws_secret_access_key="t",
        region_name="us-east-1",
    )  # fmt: skip
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["p/f.bin"]  # the temporary key is gone
    body = client.get_object(Bucket=bucket, Key="p/f.bin")["Body"].read()
    assert body == (tmp_path / "src" / "f.bin").read_bytes()


# -- HTTP sources -----------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "www"
    root.mkdir()
    srv = FileServer(root).start()
    yield srv
    srv.stop()


def test_http_source_with_checksum_and_nested_unicode(
    server: Server, files: FileServer, tmp_path: Path
) -> None:
    write_random(files.root / "données" / "日本語.bin", 3 * MiB)
    digest = hashlib.sha256((files.root / "données" / "日本語.bin").read_bytes()).hexdigest()
    dst = tmp_path / "dst"
    dst.mkdir()
    server.cli("endpoint", "add", "web", files.url)
    server.cli("endpoint", "add", "dst", str(dst))
    doc = transfer(
        server,
        "web:données/日本語.bin",
        "dst:x/日本語.bin",
        "--expected-checksum",
        f"sha256:{digest}",
    )
    assert doc["state"] == "succeeded", doc
    assert hashlib.sha256((dst / "x" / "日本語.bin").read_bytes()).hexdigest() == digest
    result = server.cli("transfer", "web:nope.bin", "dst:nope.bin", check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr
    result = server.cli("transfer", "dst:x", "web:up", check=False)
    assert result.returncode == 1 and "cannot be written" in result.stderr


def test_http_transient_503_is_retried(server: Server, files: FileServer, tmp_path: Path) -> None:
    write_random(files.root / "f.bin", 100_000)
    files.fail_next = 2
    (tmp_path / "dst").mkdir()
    server.cli("endpoint", "add", "web", files.url)
    server.cli("endpoint", "add", "dst", str(tmp_path / "dst"))
    doc = transfer(server, "web:f.bin", "dst:f.bin")
    assert doc["state"] == "succeeded" and doc["attempts"] == 3, doc
    assert (tmp_path / "dst" / "f.bin").read_bytes() == (files.root / "f.bin").read_bytes()


def test_http_wrong_token_is_permanent(server: Server, files: FileServer, tmp_path: Path) -> None:
    write_random(files.root / "f.bin", 1000)
    files.token = "right-token"
    (tmp_path / "dst").mkdir()
    server.cli("endpoint", "add", "web", files.url, "-s", "token=wrong-token")
    server.cli("endpoint", "add", "ok", files.url, "-s", "token=right-token")
    server.cli("endpoint", "add", "dst", str(tmp_path / "dst"))
    assert transfer(server, "ok:f.bin", "dst:f.bin")["state"] == "succeeded"
    result = server.cli("transfer", "web:f.bin", "dst:g.bin", check=False)
    assert result.returncode == 1 and "wrong-token" not in result.stderr


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "no-range"])
def test_http_download_resumes_with_range(
    server_factory: Any, files: FileServer, tmp_path: Path, ranges: bool
) -> None:
    from tests.integration.test_resume import job_result

    size = 12 * MiB
    write_random(files.root / "big.bin", size)
    digest = hashlib.sha256((files.root / "big.bin").read_bytes()).hexdigest()
    dst = tmp_path / "dst"
    dst.mkdir()
    files.ranges_supported = ranges
    files.stall_after = 5 * MiB
    env = {"DATAFERRY_TRANSFER__RESUME_MIN_BYTES": str(MiB)}
    server: Server = server_factory("a", env=env)
    server.cli("endpoint", "add", "web", files.url)
    server.cli("endpoint", "add", "dst", str(dst))
    job_id = server.cli_json("transfer", "web:big.bin", "dst:big.bin")["job_id"]
    assert files.stalled.wait(60)
    tmp = [t for t in temporaries(dst)]
    assert len(tmp) == 1
    for _ in range(500):  # the server sent 5 MiB; wait until all of it is on disk
        if os.path.getsize(tmp[0]) == 5 * MiB:
            break
        import time

        time.sleep(0.01)
    server.kill()
    files.stall_after = None
    files.release.set()
    files.bytes_sent = 0
    restarted = server.start()
    doc = restarted.wait_job(job_id)
    assert doc["state"] == "succeeded", doc
    assert hashlib.sha256((dst / "big.bin").read_bytes()).hexdigest() == digest
    result = job_result(restarted, job_id)
    assert result["bytes_resumed"] == 5 * MiB
    assert result["bytes_read"] == size - 5 * MiB
    if ranges:
        # after the restart the server sent only the missing bytes (plus the tail check)
        assert files.ranges[-1] == f"bytes={5 * MiB}-"
        assert files.bytes_sent <= size - 5 * MiB + 64 * 1024
    assert temporaries(dst) == []


def test_s3_crash_mid_upload_restarts_and_never_shows_a_half_object(
    server_factory: Any, s3_service: str, tmp_path: Path
) -> None:
    import time

    import boto3

    (tmp_path / "src").mkdir()
    write_random(tmp_path / "src" / "big.bin", 48 * MiB)
    server: Server = server_factory("a", env={"DATAFERRY_TRANSFER__CHUNK_SIZE": "1048576"})
    server.cli("endpoint", "add", "src", str(tmp_path / "src"))
    bucket = make_bucket(s3_service)
    add_s3(server, "s3", s3_service, bucket, "p")
    client = boto3.client(
        "s3", endpoint_url=s3_service, aws_access_key_id="t", aws_secret_access_key="t",
        region_name="us-east-1",
    )  # fmt: skip
    job_id = server.cli_json("transfer", "src:big.bin", "s3:big.bin")["job_id"]
    with server.client() as c:
        deadline = time.monotonic() + 60
        while c.job(job_id)["bytes_done"] < 6 * MiB:
            assert time.monotonic() < deadline, c.job(job_id)
            time.sleep(0.02)
    server.kill()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert "p/big.bin" not in [o["Key"] for o in listed]  # nothing under the final key yet
    restarted = server.start()
    doc = restarted.wait_job(job_id)
    assert doc["state"] == "succeeded" and doc["attempts"] == 2, doc
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["p/big.bin"]
    body = client.get_object(Bucket=bucket, Key="p/big.bin")["Body"].read()
    assert body == (tmp_path / "src" / "big.bin").read_bytes()

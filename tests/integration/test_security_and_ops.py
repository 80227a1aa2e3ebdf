"""Tokens, the loopback rule, health, metrics, init-db."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import inspect

from dataferry.app import init_db
from dataferry.config import Settings
from dataferry.db import migrate
from dataferry.db.engine import Database
from tests.support.server import Server


def test_tokens_protect_the_api(server_factory: Any, tmp_path: Path) -> None:
    server: Server = server_factory("t", env={"DATAFERRY_TOKENS": '["s3cret", "other"]'})
    api = f"{server.url}/api/v1/jobs"
    assert httpx.get(api).status_code == 401
    assert httpx.get(api).headers["www-authenticate"] == "Bearer"
    assert httpx.get(api, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(api, headers={"Authorization": "Basic s3cret"}).status_code == 401
    assert httpx.get(api, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert httpx.get(api, headers={"Authorization": "Bearer other"}).status_code == 200
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # open
    # the CLI sends the token from DATAFERRY_TOKEN / --token
    result = server.cli("jobs", "--json", check=False)
    assert result.returncode == 1 and "missing bearer token" in result.stderr
    assert server.cli("--token", "s3cret", "jobs", "--json").stdout.strip() == "[]"
    # a secret given to an endpoint never comes back
    server.cli(
        "--token", "s3cret", "endpoint", "add", "e", "https://files.example.org/x",
        "--secret", "username=me", "--secret", "password=hunter2",
    )  # fmt: skip
    shown = server.cli("--token", "s3cret", "endpoint", "show", "e", "--json").stdout
    listed = server.cli("--token", "s3cret", "endpoint", "list").stdout
    assert "hunter2" not in shown + listed and "password" in shown
    assert "hunter2" not in server.log.read_text()
    db = server.home / "dataferry.db"
    if db.exists():
        assert b"hunter2" not in db.read_bytes()


def test_refuses_public_address_without_token(tmp_path: Path) -> None:
    env = {"DATAFERRY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "dataferry", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a token" in result.stderr


def test_health_and_metrics(server: Server, tmp_path: Path) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and health["instance_id"]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "f").write_bytes(b"x" * 5000)
    with server.client() as c:
        c.add_endpoint("m", str(tmp_path / "m"))
        c.add_endpoint("o", str(tmp_path))
        job = c.transfer("m:f", "o:copy")
    server.wait_job(job["job_id"])
    text = httpx.get(f"{server.url}/metrics").text
    assert 'dataferry_jobs{state="succeeded"} 1.0' in text
    assert 'dataferry_jobs{state="failed"} 0.0' in text
    assert "dataferry_bytes_transferred_total 5000.0" in text


def test_openapi_lists_the_api(server: Server) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/transfers",
        "/api/v1/endpoints",
        "/api/v1/jobs/{job_id}/cancel",
        "/healthz",
    ):
        assert path in paths


def test_openapi_documents_the_error_shape_refusals_have(server: Server) -> None:
    """Refusals are ``{"error", "detail"}``; the document said FastAPI's 422 shape
    (``{"detail": [{"loc", "msg", "type"}]}``) and no 401/403/404/409 at all, so a
    client generated from it could not read one (found by schemathesis)."""
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(document)
    error = document["components"]["schemas"]["Error"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path not in ("/healthz", "/metrics"):
                assert "4XX" in operation["responses"], (method, path)
    auth = {"Authorization": "Bearer nope"}
    refusals = [
        httpx.get(f"{server.url}/api/v1/jobs/12345"),  # 404
        httpx.get(f"{server.url}/api/v1/jobs", params={"limit": "many"}),  # 422, parameter
        httpx.post(f"{server.url}/api/v1/transfers", json={}),  # 422, body
        httpx.get(f"{server.url}/api/v1/peer/endpoints/x/stat", headers=auth),  # 403
        httpx.get(f"{server.url}/get_state"),  # 422 on a Pacifica door
    ]
    for response in refusals:
        assert 400 <= response.status_code < 500, response.text
        jsonschema.validate(response.json(), error)
    # /metrics is Prometheus text, not the JSON the document said
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert httpx.get(f"{server.url}/metrics").headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('database_url = "notaurl"', "database_url 'notaurl' is not a database URL"),
        ('database_url = "mysql://x@h/db"', "database_url: mysql is not supported"),
        ('database_url = "postgresql://x@h/db"', "postgresql+psycopg://"),
        ('secret_key = "short"', "secret_key must be a Fernet key"),
        ('home = "/proc/dataferry-nope"', "cannot create the home folder /proc/dataferry-nope"),
        (
            'database_url = "postgresql+psycopg://nobody@127.0.0.1:1/x"',
            "cannot reach the database postgresql+psycopg://nobody@127.0.0.1:1/x",
        ),
    ],
    ids=["not-a-url", "mysql", "psycopg2", "secret-key", "home", "unreachable"],
)
def test_start_up_problems_are_one_clear_line(tmp_path: Path, config: str, message: str) -> None:
    """Before, each was a Python traceback (the URL and key problems only when the
    database was first opened)."""
    cfg = tmp_path / "df.toml"
    cfg.write_text(f'home = "{tmp_path}"\n{config}\n' if "home" not in config else config + "\n")
    env = {"DATAFERRY_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"}
    for command in (["init-db"], ["serve", "--port", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "dataferry", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr, result.stderr
        assert message in " ".join(result.stderr.split()), result.stderr


@pytest.mark.database_agnostic
def test_serve_that_cannot_listen_says_so_before_creating_anything(tmp_path: Path) -> None:
    """Before, serve created the database, started, and exited 3 with uvicorn's log
    ('[Errno -2] Name or service not known', 'address already in use')."""
    home = tmp_path / "home"
    cfg = tmp_path / "df.toml"
    cfg.write_text(f'home = "{home}"\ntokens = ["t"]\n')
    # PYTHONPATH: the code under test where it is not the installed checkout's
    env = {
        "DATAFERRY_CONFIG": str(cfg),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--host", "bad_host_name", "--port", "1"], "cannot listen on bad_host_name:1: "),
            (
                ["--host", "127.0.0.1", "--port", str(port)],
                f"cannot listen on 127.0.0.1:{port}: address already in use",
            ),
        ]
        for args, message in cases:
            result = subprocess.run(
                [sys.executable, "-m", "dataferry", "serve", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, result
            assert result.stderr.startswith(f"error: {message}"), result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert result.stdout == ""
            assert not home.exists()  # no database, no key file


def test_init_db_is_idempotent_and_upgrades(settings: Settings) -> None:
    first = init_db(settings)
    assert init_db(settings) == first  # same instance id, nothing broken
    db = Database(settings.database_url)
    try:
        assert migrate.current_heads(db.engine)
        assert {"jobs", "job_files", "endpoints", "meta"} <= set(
            inspect(db.engine).get_table_names()
        )
        # an older schema (here: the empty one before the first revision) is brought up to date
        from alembic import command

        command.downgrade(migrate.alembic_config(settings.database_url), "base")
        assert "jobs" not in inspect(db.engine).get_table_names()
    finally:
        db.dispose()
    init_db(settings)
    db = Database(settings.database_url)
    try:
        assert "jobs" in set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()

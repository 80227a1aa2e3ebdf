"""Stand-ins shared by the integration tests: a real OpenSSH sshd and moto's S3
server (each started once per test run on a free loopback port), and a partner's
web service for the sink tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.receiver import Receiver
from tests.support.services import unavailable
from tests.support.sshd import SSHServer, sshd_available, start_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[SSHServer]:
    why = sshd_available()
    if why:
        unavailable(why)
    folder = Path(tempfile.mkdtemp(prefix="dataferry-sshd-"))
    srv = start_sshd(folder)
    (folder / "known_hosts").write_text(srv.known_hosts)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def s3_service() -> Iterator[str]:
    """moto's standalone S3 server (``ThreadedMotoServer``) on loopback: the S3 stand-in.
    Yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable(f"moto[server] is not installed: {exc}")
    srv: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A partner's web service on a free loopback port (the sinks' target)."""
    r = Receiver().start()
    yield r
    r.stop()

"""Discovery: two ``serve`` processes on one machine announce themselves over
mDNS/DNS-SD and find each other; neither syncs with the other until added."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import PostgresDatabases
from tests.support.replication import instance_env, own_database
from tests.support.services import unavailable


def multicast_works() -> str:
    """'' if a multicast datagram sent here comes back to us, else why not."""
    group, port = "224.0.0.251", 0
    try:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.bind(("", 0))
        port = rx.getsockname()[1]
        mreq = struct.pack("4sl", socket.inet_aton(group), socket.INADDR_ANY)
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        rx.settimeout(2)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        tx.sendto(b"ping", (group, port))
        rx.recvfrom(16)
        return ""
    except OSError as exc:
        return f"multicast is unavailable on this machine ({exc})"
    finally:
        for s in ("rx", "tx"):
            sock = locals().get(s)
            if sock is not None:
                sock.close()


def test_two_instances_find_each_other(
    server_factory: Any, tmp_path: Path, postgres: PostgresDatabases | None
) -> None:
    reason = multicast_works()
    if reason:
        unavailable(reason)
    env = {"DATAFERRY_RECORDS__DISCOVERY": "true", "DATAFERRY_RECORDS__OWNER": "field team"}
    a = server_factory("a", env=instance_env("a", **env), db=own_database(tmp_path, postgres, "a"))
    b = server_factory("b", env=instance_env("b", **env), db=own_database(tmp_path, postgres, "b"))
    ids = {}
    for srv in (a, b):
        ids[srv] = srv.client().request("GET", "/api/v1/replication/hello")["instance_id"]
    deadline = time.monotonic() + 60
    found: dict[Any, list[dict[str, Any]]] = {}
    while time.monotonic() < deadline:
        found = {srv: srv.cli_json("peer", "list", "--discovered") for srv in (a, b)}
        if all(any(d["instance_id"] == ids[o] for d in found[s]) for s, o in ((a, b), (b, a))):
            break
        time.sleep(1)
    else:
        pytest.fail(f"instances did not find each other: {found}")
    seen_b = next(d for d in found[a] if d["instance_id"] == ids[b])
    assert seen_b["port"] == b.port and seen_b["owner"] == "field team"
    assert seen_b["protocol"] == "2"  # the replication protocol it speaks
    # discovery is a hint: nothing is registered or synced
    assert a.cli_json("peer", "list") == []
    assert a.cli_json("jobs") == []

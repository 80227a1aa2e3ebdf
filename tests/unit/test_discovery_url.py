"""The URL discovery shows for an instance it found: an IPv6 address in brackets,
so that ``peer add`` (``urls.parse_base_url``) takes it as found."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from zeroconf import ServiceInfo, ServiceStateChange

from dataferry.records.discovery import SERVICE_TYPE, Discovery, http_url
from dataferry.urls import parse_base_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("192.0.2.7", 8080, "http://192.0.2.7:8080"),
        ("2001:db8::5", 8443, "http://[2001:db8::5]:8443"),
        ("::1", 80, "http://[::1]:80"),
        ("fe80::1%eth0", 8080, "http://[fe80::1%25eth0]:8080"),  # RFC 6874 zone
        ("peer.example", 8080, "http://peer.example:8080"),
    ],
)
def test_http_url_brackets_ipv6(host: str, port: int, url: str) -> None:
    assert http_url(host, port) == url
    parts = parse_base_url(url)
    assert parts.port == port


class OneService:
    """What discovery asks of zeroconf when a service appears: its resolved record."""

    def __init__(self, info: ServiceInfo) -> None:
        self.info = info

    def get_service_info(self, service_type: str, name: str, timeout: int) -> ServiceInfo:
        return self.info


@pytest.mark.parametrize(
    ("family", "address", "url"),
    [
        (socket.AF_INET6, "2001:db8::5", "http://[2001:db8::5]:8443"),
        (socket.AF_INET, "192.0.2.7", "http://192.0.2.7:8443"),
    ],
)
def test_an_instance_found_over_ipv6_gets_a_url_peer_add_takes(
    family: int, address: str, url: str
) -> None:
    name = f"dataferry-other.{SERVICE_TYPE}"
    info = ServiceInfo(
        SERVICE_TYPE,
        name,
        addresses=[socket.inet_pton(family, address)],
        port=8443,
        properties={"id": "other", "protocol": "2"},
    )
    discovery = Discovery("me", "127.0.0.1", 8080)
    zc: Any = OneService(info)
    discovery._on_change(zc, SERVICE_TYPE, name, ServiceStateChange.Added)
    [found] = discovery.found()
    assert found["addresses"] == [address] and found["url"] == url
    assert parse_base_url(found["url"]).hostname == address


def test_what_an_announcement_says_is_shown_as_printable_text() -> None:
    """Anyone on the network can announce an instance: its owner and contact are
    printed by ``peer list --discovered`` (a terminal escape or a newline was printed
    as sent)."""
    name = f"dataferry-other.{SERVICE_TYPE}"
    info = ServiceInfo(
        SERVICE_TYPE,
        name,
        addresses=[socket.inet_aton("192.0.2.7")],
        port=8443,
        properties={
            "id": "other",
            "protocol": "2",
            "owner": b"Eve\x1b[2J\nroot",
            "contact": "ann@example.org \u2014 bureau".encode(),
        },
    )
    discovery = Discovery("me", "127.0.0.1", 8080)
    zc: Any = OneService(info)
    discovery._on_change(zc, SERVICE_TYPE, name, ServiceStateChange.Added)
    [found] = discovery.found()
    assert found["owner"] == "Eve\ufffd[2J\ufffdroot"
    assert found["contact"] == "ann@example.org \u2014 bureau"

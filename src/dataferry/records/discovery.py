"""Zero-configuration discovery over mDNS/DNS-SD (python-zeroconf).

With ``records.discovery = true``, ``serve`` announces ``_dataferry._tcp.local.``
with its instance id, protocol version, owner and contact in the TXT record,
and browses for other instances. What it finds is only a hint: nothing is
synced with a discovered instance until an operator adds it as a peer with a
token (``dataferry peer add``)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Any

from dataferry.config import OWNER_MAX
from dataferry.db.base import utcnow
from dataferry.records.service import PROTOCOL

log = logging.getLogger(__name__)

SERVICE_TYPE = "_dataferry._tcp.local."


def _text(props: dict[bytes, bytes | None], key: str) -> str:
    """A TXT value as text ``peer list --discovered`` can print: anyone on the network
    can announce one, so it is cut to what a peer's hello may say (``OWNER_MAX``) and
    characters that are not printable (terminal escapes, newlines) are replaced."""
    value = props.get(key.encode())
    if not value:
        return ""
    text = value[: 4 * OWNER_MAX].decode("utf-8", "replace")[:OWNER_MAX]
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` for an address found over mDNS: an IPv6 address goes in
    brackets (its colons are not the port's), with a zone as ``%25ZONE`` (RFC 6874)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"  # a host name
    if isinstance(address, ipaddress.IPv6Address):
        zone = f"%25{address.scope_id}" if address.scope_id else ""
        return f"http://[{str(address).partition('%')[0]}{zone}]:{port}"
    return f"http://{address}:{port}"


def announce_addresses(host: str) -> list[str]:
    """Addresses to announce: the listening address, or the machine's IPv4
    addresses when listening on all of them."""
    if host not in ("", "0.0.0.0", "::"):
        return [socket.gethostbyname(host)] if host != "localhost" else ["127.0.0.1"]
    from zeroconf._utils.net import get_all_addresses

    return [a for a in get_all_addresses() if not a.startswith("127.")] or ["127.0.0.1"]


class Discovery:
    def __init__(
        self, instance_id: str, host: str, port: int, owner: str = "", contact: str = ""
    ) -> None:
        self.instance_id = instance_id
        self.host = host
        self.port = port
        self.owner = owner
        self.contact = contact
        self._found: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._life = threading.Lock()  # one start or stop at a time
        self._zc: Any = None
        self._browser: Any = None
        self._info: Any = None
        self.error = ""

    @property
    def name(self) -> str:
        return f"dataferry-{self.instance_id}.{SERVICE_TYPE}"

    # python-zeroconf's blocking API refuses to run on an event loop thread, and the
    # server starts and stops its background parts from its loop: use a thread.
    def start(self) -> None:
        """Announce and browse (in the background); failures (no multicast) are
        logged, never fatal."""
        threading.Thread(target=self._start, name="discovery-start", daemon=True).start()

    def stop(self) -> None:
        t = threading.Thread(target=self._stop, name="discovery-stop", daemon=True)
        t.start()
        t.join(10)

    def _start(self) -> None:
        with self._life:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._zc is not None:
            return
        try:
            from zeroconf import ServiceBrowser, ServiceInfo, Zeroconf

            addresses = announce_addresses(self.host)
            self._info = ServiceInfo(
                SERVICE_TYPE,
                self.name,
                addresses=[socket.inet_aton(a) for a in addresses],
                port=self.port,
                properties={
                    "id": self.instance_id,
                    "protocol": str(PROTOCOL),
                    "owner": self.owner,
                    "contact": self.contact,
                },
                server=f"dataferry-{self.instance_id[:8]}.local.",
            )
            self._zc = Zeroconf()
            self._zc.register_service(self._info, allow_name_change=True)
            self._browser = ServiceBrowser(self._zc, SERVICE_TYPE, handlers=[self._on_change])
            log.info("discovery: announcing %s on %s:%s", self.name, addresses, self.port)
        except Exception as exc:  # no multicast route, no interface, ...
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("discovery could not start: %s", self.error)
            self._stop_locked()

    def _stop(self) -> None:
        with self._life:
            self._stop_locked()

    def _stop_locked(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            if self._browser is not None:
                self._browser.cancel()
            if self._info is not None:
                zc.unregister_service(self._info)
        except Exception:
            log.debug("discovery: unregister failed", exc_info=True)
        finally:
            zc.close()

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            with self._lock:
                for key, doc in list(self._found.items()):
                    if doc["name"] == name:
                        del self._found[key]
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            return
        props = info.properties or {}
        instance = _text(props, "id")
        if not instance or instance == self.instance_id:
            return
        addresses = info.parsed_addresses()
        host = addresses[0] if addresses else ""
        doc = {
            "instance_id": instance,
            "name": name,
            "url": http_url(host, info.port) if host else "",
            "addresses": addresses,
            "port": info.port,
            "protocol": _text(props, "protocol"),
            "owner": _text(props, "owner"),
            "contact": _text(props, "contact"),
            "seen": utcnow().isoformat(),
        }
        with self._lock:
            self._found[instance] = doc

    def found(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._found.values(), key=lambda d: d["instance_id"])

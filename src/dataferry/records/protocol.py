"""The serving side of the replication protocol (version 2, and 1 for older peers),
shared by REST and JSON-RPC. See ``docs/replication.md`` for the wire format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dataferry
from dataferry.config import RecordSettings
from dataferry.errors import InvalidRequest
from dataferry.records import gcpause
from dataferry.records.model import check_json, check_origin, loads
from dataferry.records.service import (
    MAX_PAGE,
    PROTOCOL,
    PROTOCOLS,
    RecordService,
    render_batch,
)


def _int(body: Mapping[str, Any], key: str, default: int | None = None, low: int = 0) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidRequest(f"{key} must be an integer >= {low}")
    return value


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > 128:
        raise InvalidRequest(f"{key} must be a non-empty string")
    return value


def _check_protocol(body: Mapping[str, Any]) -> int:
    """The protocol version a request speaks (one of ours, or 422)."""
    version = body.get("protocol")
    if type(version) is not int or version not in PROTOCOLS:
        raise InvalidRequest(
            f"replication protocol {version!r} is not supported; this instance speaks "
            f"{', '.join(map(str, PROTOCOLS))}"
        )
    return version


def _check_decoded(changes: Any) -> None:
    """Hold each change's data, decoded by an RPC door (whose parsers read NaN and
    Infinity), to a local write's limits, counted from the data object as a local
    write counts them. The rest of a change is checked by ``parse_changes``."""
    if not isinstance(changes, list):
        return  # parse_changes says what is wrong
    for i, change in enumerate(changes):
        if isinstance(change, Mapping):
            check_json(change.get("data"), f"change {i}: data")


class ProtocolService:
    def __init__(self, records: RecordService, settings: RecordSettings) -> None:
        self.records = records
        self.settings = settings

    def hello(self) -> dict[str, Any]:
        """Who this instance is and which collections it holds."""
        return {
            "protocol": PROTOCOL,
            "protocols": list(PROTOCOLS),
            "version": dataferry.__version__,
            "instance_id": self.records.instance_id,
            "epoch": self.records.epoch,
            "owner": self.settings.owner,
            "contact": self.settings.contact,
            "collections": self.records.collection_names(),
        }

    def pull(self, body: Mapping[str, Any]) -> bytes:
        """The next batch of our feed for the requester (JSON bytes)."""
        if not isinstance(body, Mapping):
            raise InvalidRequest("a pull request must be a JSON object")
        protocol = _check_protocol(body)
        header, changes = self.records.feed_batch(
            _str(body, "collection"),
            _int(body, "since"),
            requester=_str(body, "requester"),
            limit=min(_int(body, "limit", self.settings.batch_records, 1), MAX_PAGE),
            max_bytes=_int(body, "max_bytes", self.settings.batch_bytes, 1),
            protocol=protocol,
        )
        return render_batch(header, changes)

    def fetch(self, body: Mapping[str, Any]) -> bytes:
        """Full states of the given records (for a peer that lost what it once sent)."""
        if not isinstance(body, Mapping):
            raise InvalidRequest("a fetch request must be a JSON object")
        protocol = _check_protocol(body)
        uuids = body.get("uuids")
        if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
            raise InvalidRequest("uuids must be a list of strings")
        states = self.records.states(_str(body, "collection"), uuids, protocol)
        return ('{"changes":[' + ",".join(states) + "]}").encode()

    def checkpoint(self, collection: str, source: str) -> dict[str, Any]:
        return self.records.checkpoint(collection, source)

    def push(self, body: bytes | Mapping[str, Any]) -> dict[str, Any]:
        """Apply a batch of the sender's feed (and move our checkpoint of it)."""
        if isinstance(body, bytes | bytearray):
            try:
                with gcpause.paused():  # a batch is a few MiB of small objects
                    body = loads(body, finite=True)
            except ValueError as exc:
                raise InvalidRequest(f"a push batch must be JSON: {exc}") from None
        elif isinstance(body, Mapping):  # decoded by an RPC door, whose parser reads NaN
            _check_decoded(body.get("changes"))
        if not isinstance(body, Mapping):
            raise InvalidRequest("a push batch must be a JSON object")
        _check_protocol(body)
        source = check_origin(body.get("source"), "source")  # the sender's instance id
        if source == self.records.instance_id:
            raise InvalidRequest("a batch from this instance itself is refused")
        changes = body.get("changes")
        if not isinstance(changes, list):
            raise InvalidRequest("changes must be a list")
        result = self.records.apply(
            _str(body, "collection"),
            changes,
            source=source,
            epoch=str(body.get("epoch", ""))[:64],
            cursor_from=_int(body, "since"),
            cursor_to=_int(body, "cursor"),
        )
        return result.document()

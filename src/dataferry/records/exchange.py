"""Export and import of a collection as CSV, JSON or XML.

Every format carries the same columns: ``uuid, origin, hlc, changed, deleted,
data`` (``data`` is the record's JSON document; in CSV and XML as JSON text).
An import upserts by UUID through the merge rules: a row with ``hlc`` and
``origin`` (an export of some instance) merges as that instance's change; a
row without them is a local write now. XML is parsed with defusedxml, so
entity declarations (billion laughs) and external entities are refused.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import quoteattr

import defusedxml
import defusedxml.ElementTree as DET

from dataferry.db.base import utcnow
from dataferry.errors import InvalidRequest
from dataferry.records import hlc, merge
from dataferry.records.model import (
    Record,
    check_collection,
    check_json,
    check_origin,
    check_uuid,
    dumps,
    loads,
    new_uuid,
)
from dataferry.records.service import RecordService, _row_values, state_of

FORMATS = {"csv": "text/csv", "json": "application/json", "xml": "application/xml"}
COLUMNS = ["uuid", "origin", "hlc", "changed", "deleted", "data"]
MAX_IMPORT_BYTES = 512 * 1024 * 1024


def parse_moment(text: str | None, what: str) -> int | None:
    """An ISO date or date-time (UTC if no zone) as the first HLC stamp at that moment."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            d = date.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(f"{what} {text!r} is not an ISO date or date-time") from None
        moment = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return hlc.from_datetime(moment)


def _row(r: Record) -> dict[str, Any]:
    return {
        "uuid": r.uuid,
        "origin": r.origin,
        "hlc": r.hlc,
        "changed": hlc.to_datetime(r.hlc).isoformat(),
        "deleted": r.deleted,
        "data": r.data,
    }


def export(
    service: RecordService, collection: str, fmt: str, since: str | None, until: str | None
) -> tuple[str, Iterator[bytes]]:
    """(media type, body chunks); checks everything before the first byte."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
    lo, hi = parse_moment(since, "since"), parse_moment(until, "until")
    service.collection(collection)  # 404 before streaming starts
    rows = service.iter_rows(collection, lo, hi)
    writer = {"csv": _csv, "json": _json, "xml": _xml}[fmt]
    return FORMATS[fmt], writer(collection, rows)


def _csv(collection: str, rows: Iterator[Record]) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for i, r in enumerate(rows):
        d = _row(r)
        w.writerow(
            [
                d["uuid"],
                d["origin"],
                d["hlc"],
                d["changed"],
                "true" if d["deleted"] else "false",
                dumps(d["data"]),
            ]
        )
        if i % 500 == 499:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _json(collection: str, rows: Iterator[Record]) -> Iterator[bytes]:
    yield (
        f'{{"collection":{dumps(collection)},"exported":"{utcnow().isoformat()}","records":['
    ).encode()
    first = True
    for r in rows:
        yield (("" if first else ",") + dumps(_row(r))).encode()
        first = False
    yield b"]}\n"


def _xml(collection: str, rows: Iterator[Record]) -> Iterator[bytes]:
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<records collection={quoteattr(collection)}'
        f' exported="{utcnow().isoformat()}">\n'
    ).encode()
    for r in rows:
        el = ET.Element(
            "record",
            uuid=r.uuid,
            origin=r.origin,
            hlc=str(r.hlc),
            changed=hlc.to_datetime(r.hlc).isoformat(),
            deleted="true" if r.deleted else "false",
        )
        ET.SubElement(el, "data").text = dumps(r.data)
        yield ET.tostring(el, encoding="unicode").encode() + b"\n"
    yield b"</records>\n"


# -- import ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: int, uuid: str, reason: str) -> None:
        self.rejections.append({"row": row, "uuid": uuid, "reason": reason})

    def document(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejections),
            "rejections": self.rejections[:1000],
        }


@dataclass
class Row:
    number: int  # 1-based, in file order
    uuid: str
    data: Any
    deleted: bool
    stamp: int | None
    origin: str


def parse(fmt: str, body: bytes) -> list[dict[str, Any]]:
    """The file's rows as dicts of column -> raw value; a malformed file is refused whole."""
    if fmt not in FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
    if len(body) > MAX_IMPORT_BYTES:
        raise InvalidRequest(f"import file larger than {MAX_IMPORT_BYTES} bytes")
    try:
        if fmt == "json":
            doc = loads(body)
            rows = doc.get("records") if isinstance(doc, dict) else doc
            if not isinstance(rows, list):
                raise InvalidRequest('a JSON import is a list of rows or {"records": [...]}')
            return [r if isinstance(r, dict) else {"__bad__": r} for r in rows]
        if fmt == "csv":
            text = body.decode("utf-8-sig")
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if not reader.fieldnames:
                raise InvalidRequest("a CSV import needs a header row")
            return [dict(r) for r in reader]
        root = DET.fromstring(body, forbid_dtd=True)
        if root.tag != "records":
            raise InvalidRequest(
                f"an XML import's root element must be <records>, not <{root.tag}>"
            )
        out = []
        for el in root:
            row: dict[str, Any] = dict(el.attrib)
            data = el.find("data")
            row["data"] = data.text if data is not None else None
            out.append(row)
        return out
    except defusedxml.DefusedXmlException as exc:
        raise InvalidRequest(
            f"XML refused: {type(exc).__name__} (entity and DTD declarations are not accepted)"
        ) from None
    except ET.ParseError as exc:
        raise InvalidRequest(f"malformed XML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the file is not UTF-8: {exc}") from None
    except (ValueError, csv.Error) as exc:
        raise InvalidRequest(f"malformed {fmt.upper()}: {exc}") from None


def _to_row(number: int, raw: dict[str, Any]) -> Row:
    if "__bad__" in raw:
        raise ValueError("a row must be an object")
    if None in raw:  # csv.DictReader's key for values past the header's columns
        raise ValueError("the row has more values than the header has columns")
    uuid = raw.get("uuid") or ""
    uuid = check_uuid(uuid) if uuid else new_uuid()
    if "data" not in raw:  # a plain document (JSON) or plain columns (CSV): a local write
        return Row(number, uuid, {k: v for k, v in raw.items() if k != "uuid"}, False, None, "")
    data = raw.get("data")
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError as exc:
            raise ValueError(f"data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("data must be a JSON object")
    deleted = raw.get("deleted", False)
    if isinstance(deleted, str):
        if deleted.lower() not in ("true", "false", "1", "0", ""):
            raise ValueError(f"deleted must be true or false, not {deleted!r}")
        deleted = deleted.lower() in ("true", "1")
    elif deleted is None:
        deleted = False
    elif not isinstance(deleted, bool):
        raise ValueError(f"deleted must be true or false, not {deleted!r}")
    stamp_raw, origin = raw.get("hlc"), raw.get("origin") or ""
    if origin:  # an instance id, by the rule of a replicated change's origin
        check_origin(origin)
    stamp: int | None = None
    if stamp_raw not in (None, ""):
        if isinstance(stamp_raw, bool | float) or not isinstance(stamp_raw, int | str):
            raise ValueError(f"hlc {stamp_raw!r} is not an integer")
        try:
            stamp = int(stamp_raw)
        except ValueError:
            raise ValueError(f"hlc {stamp_raw!r} is not an integer") from None
        if stamp <= 0 or not origin:
            raise ValueError("a row with hlc needs a positive hlc and an origin")
    return Row(number, uuid, data, deleted, stamp, origin)


def import_(service: RecordService, collection: str, fmt: str, body: bytes) -> ImportReport:
    """Upsert every valid row in one transaction; invalid rows are reported, not applied."""
    check_collection(collection)
    raws = parse(fmt, body)
    report = ImportReport()
    rows: list[Row] = []
    seen: set[str] = set()
    max_drift = int(service.settings.max_drift_seconds * 1000)
    for i, raw in enumerate(raws, start=1):
        try:
            row = _to_row(i, raw)
            check_json(row.data, f"row {i}")  # tombstones too: their fields are kept
            if row.uuid in seen:
                raise ValueError("the same UUID appears earlier in the file")
            if row.stamp is not None:
                hlc.check_drift(row.stamp, service.store.wall(), max_drift)
        except (ValueError, InvalidRequest) as exc:
            report.reject(i, str(raw.get("uuid", "")), getattr(exc, "message", str(exc)))
            continue
        seen.add(row.uuid)
        rows.append(row)
    me = service.instance_id
    notify = 0
    with service.db.session() as s:
        crow = service.store.ensure_collection(s, collection)
        validator = service._validator(crow.schema)
        clock = service.store.lock_clock(s)
        existing = service.store.get_many(s, collection, [r.uuid for r in rows])
        inserts, updates = [], []
        for row in rows:
            if not row.deleted:
                try:
                    service._validate(validator, row.data, f"row {row.number}")
                except InvalidRequest as exc:
                    report.reject(row.number, row.uuid, exc.message)
                    continue
            old = existing.get(row.uuid)
            mine = state_of(old) if old else None
            try:
                new = _apply_row(mine, row, clock, me)
            except InvalidRequest as exc:
                report.reject(row.number, row.uuid, exc.message)
                continue
            if new is None or (mine is not None and new == mine):
                report.unchanged += 1
                continue
            if mine is None and new.deleted:
                pass  # an imported tombstone: kept, so replication carries the delete
            values = _row_values(
                collection,
                row.uuid,
                old.origin if old else (row.origin or me),
                new,
                clock.next_seq(),
                "",
            )
            if old is None:
                inserts.append(values)
                report.created += 1
            else:
                updates.append(values)
                report.updated += 1
        service.store.write(s, inserts, updates)
        service.store.save_clock(s, clock)
        notify = clock.seq if inserts or updates else 0
    if notify:
        service._notify(collection, notify)
    report.rejections.sort(key=lambda r: r["row"])
    return report


def _apply_row(mine: merge.State | None, row: Row, clock: Any, me: str) -> merge.State | None:
    if row.stamp is None:  # a local write now
        if row.deleted:
            return merge.delete(mine, (clock.stamp(), me)) if mine is not None else None
        if mine is None and not row.data:
            raise InvalidRequest("a new record needs at least one field")
        return merge.put(mine, row.data, (clock.stamp(), me))
    clock.seen(row.stamp)

    def differs(key: str, value: Any) -> bool:
        f = mine.fields.get(key) if mine is not None else None
        return f is None or not f.present or f.value != value

    if row.deleted:
        stamp = (row.stamp - 1, row.origin)
        fields = {
            k: merge.Field(stamp, True, v)
            for k, v in row.data.items()
            if mine is None or differs(k, v)
        }
        if mine is not None:
            fields = {}  # a tombstone for a record we hold: only the delete matters
        theirs = merge.State(fields, (row.stamp, row.origin), stamp if fields else None)
    else:
        if not row.data:
            return None
        stamp = (row.stamp, row.origin)
        # Fields whose value we already hold keep their stamps (re-importing an
        # export changes nothing).
        fields = {k: merge.Field(stamp, True, v) for k, v in row.data.items() if differs(k, v)}
        if not fields and mine is not None and not mine.deleted:
            return None
        if not fields:
            fields = {k: merge.Field(stamp, True, v) for k, v in row.data.items()}
        theirs = merge.State(fields)
    return merge.merge(mine, theirs)[0]

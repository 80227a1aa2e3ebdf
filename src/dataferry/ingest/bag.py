"""BagIt bags (RFC 8493) inside a bundle: unpacked into the spool, validated by the
``bagit`` library (manifests, Payload-Oxum), then described as bundle metadata
with ``bag-info.txt`` as key-values."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dataferry.endpoints.paths import clean_relative
from dataferry.errors import InvalidRequest
from dataferry.ingest.bundle import Bundle, MemberReader
from dataferry.ingest.metadata import (
    MAX_FIELD_CHARS,
    TRANSACTION_FIELDS,
    BundleMetadata,
    FileEntry,
    check_key,
    check_unicode,
    check_value,
)
from dataferry.ingest.tasks import LOAD_METADATA, BundleError

# The strongest manifest a bag carries is the one the archive checks.
PREFERRED = ("sha512", "sha256", "sha1", "md5")
CHUNK = 1024 * 1024
BAG_INFO = "bag-info.txt"


def unpack(bundle: Bundle, folder: Path, on_progress: Callable[[int, int], None]) -> None:
    """Write the bag's members (headers already checked by ``open_bundle``) below ``folder``."""
    total = sum(i.size for i in bundle.bag_members.values()) or 1
    done = 0
    for rel, info in bundle.bag_members.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with MemberReader(bundle.tar_path, info) as fin, open(target, "wb") as fout:
            while block := fin.read(CHUNK):
                fout.write(block)
                done += len(block)
                on_progress(done // 2, total)


def load(bundle: Bundle, folder: Path, on_progress: Callable[..., None]) -> BundleMetadata:
    """Unpack and validate the bag; its metadata in the bundle format."""
    import bagit

    unpack(bundle, folder, on_progress)
    try:
        bag = bagit.Bag(str(folder))
        bag.validate(processes=1)
    except bagit.BagValidationError as exc:
        details = "; ".join(str(d) for d in exc.details[:5]) if exc.details else ""
        raise BundleError(
            LOAD_METADATA, f"the BagIt bag is not valid: {exc.message}. {details}".strip()
        ) from None
    except bagit.BagError as exc:
        raise BundleError(LOAD_METADATA, f"the BagIt bag is not valid: {exc}") from None
    except UnicodeDecodeError as exc:  # bagit reads its tag files strictly
        raise BundleError(
            LOAD_METADATA,
            f"the BagIt bag is not valid: a tag file (bag-info.txt, a manifest ...) "
            f"is not {exc.encoding} text: {exc.reason}",
        ) from None
    # Held to the metadata tables' limits as metadata.txt is, before anything is
    # archived: PostgreSQL would refuse them only at the last task.
    check_unicode(bag.info, BAG_INFO)
    fields: dict[str, str] = {}
    key_values: list[tuple[str, str]] = []
    for key, value in sorted(bag.info.items()):
        check_key(key, "", BAG_INFO)
        values = value if isinstance(value, list) else [value]
        for v in values:
            where = f"tag {key[:60]!r}"
            if key.startswith("Transactions.") and key.split(".", 1)[1] in TRANSACTION_FIELDS:
                fields[key.split(".", 1)[1]] = check_value(v, where, MAX_FIELD_CHARS, BAG_INFO)
            else:
                key_values.append((key, check_value(v, where, source=BAG_INFO)))
    files: list[FileEntry] = []
    raw: list[Any] = []
    for payload, hashes in sorted(bag.payload_entries().items()):
        rel = payload.replace("\\", "/")
        if not rel.startswith("data/"):
            raise BundleError(LOAD_METADATA, f"bag payload {payload!r} is not under data/")
        try:
            path = clean_relative(rel[len("data/") :])
        except InvalidRequest as exc:
            raise BundleError(LOAD_METADATA, f"bag payload {payload!r}: {exc.message}") from None
        algo = next(a for a in PREFERRED if a in hashes)
        name = path.rsplit("/", 1)[-1]
        subdir = path[: -len(name)].rstrip("/")
        entry = FileEntry(
            path=path,
            name=name,
            subdir=subdir,
            size=(folder / "data" / path).stat().st_size,
            hashtype=algo,
            hashsum=hashes[algo].lower(),
            mimetype=mimetypes.guess_type(name)[0] or "application/octet-stream",
        )
        files.append(entry)
        raw.append(entry.document())
    on_progress(1, 1)
    raw.extend(
        {"destinationTable": "TransactionKeyValue", "key": k, "value": v} for k, v in key_values
    )
    raw.extend({"destinationTable": f"Transactions.{k}", "value": v} for k, v in fields.items())
    return BundleMetadata(
        submitter=fields.get("submitter"),
        project=fields.get("project"),
        instrument=fields.get("instrument"),
        key_values=tuple(key_values),
        files=tuple(files),
        raw=raw,
    )

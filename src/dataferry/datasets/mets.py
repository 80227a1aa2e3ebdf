"""A dataset as METS XML (via ``metsrw``): one file entry per manifest file, with its
sha256 and size, and the dataset's metadata as a descriptive section."""

from __future__ import annotations

import uuid
from typing import Any


def to_mets(uid: str, meta: dict[str, Any], manifest: list[dict[str, Any]]) -> bytes:
    import metsrw  # imported only when METS is asked for
    from lxml import etree

    doc = metsrw.METSDocument()
    root = metsrw.FSEntry(label=uid, type="Directory")
    folders: dict[str, Any] = {"": root}

    def folder(path: str) -> Any:
        if path in folders:
            return folders[path]
        head, _, name = path.rpartition("/")
        entry = metsrw.FSEntry(label=name, type="Directory")
        folder(head).add_child(entry)
        folders[path] = entry
        return entry

    for f in manifest:
        head, _, name = f["path"].rpartition("/")
        entry = metsrw.FSEntry(
            path=f"{uid}/{f['path']}",
            label=name,
            type="Item",
            use="original",
            checksum=f["sha256"],
            checksumtype="SHA-256",
            file_uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataferry:{uid}/{f['path']}")),
        )
        entry.size = f["size"]
        folder(head).add_child(entry)
    if meta:
        dc = etree.Element(
            "{http://purl.org/dc/elements/1.1/}dataset",
            nsmap={"dc": "http://purl.org/dc/elements/1.1/"},
        )
        for key, value in sorted(meta.items()):
            item = etree.SubElement(dc, "{http://purl.org/dc/elements/1.1/}description")
            item.text = f"{key}={value}"
        root.add_dmdsec(dc, "OTHER", othermdtype="dataferry")
    doc.append_file(root)
    out: bytes = doc.tostring(pretty_print=True)
    return out

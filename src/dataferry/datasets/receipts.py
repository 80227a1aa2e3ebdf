"""Receipt digests: the SHA-256 of a file taken as its bytes arrived over the peer
protocol, kept on the file itself so that the consumer's integrity check need not
read every delivered file back.

Reading a file back right after writing it mostly reads the page cache, so it
proves little that hashing the bytes on their way in does not; what it would catch
is a change made to the file after it arrived. The receipt therefore records the
file's identity and state when it was hashed (inode, size, modification time in
nanoseconds), and it counts only while all three are unchanged: a later write, a
truncation or a replacement by another file makes the check read the file again.
(Someone who rewrites a file in place and then sets its modification time back is
not caught; ``datasets.integrity_reread`` reads every file back regardless.)

The receipt is an extended attribute (``user.dataferry.sha256``) on local endpoints:
it moves with the file when the temporary name is renamed into place and needs no
table of its own. Where a file system has no user extended attributes, or the
endpoint is not local, nothing is recorded and the check reads the file.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from dataferry.endpoints.backends.local import LocalEndpointFS
from dataferry.endpoints.filesystem import EndpointFS

XATTR = "user.dataferry.sha256"
_UNSUPPORTED = (OSError, AttributeError)  # no xattrs here (or no os.setxattr at all)


def _fingerprint(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def kept_on(fs: EndpointFS) -> bool:
    """Whether files written to ``fs`` can carry a receipt (worth hashing for)."""
    return isinstance(fs, LocalEndpointFS)


def record(fs: EndpointFS, fobj: Any, sha256: str) -> None:
    """Remember ``sha256`` (hex) as the digest of the whole file open as ``fobj``,
    which has just been written in full. Best effort: nothing on failure."""
    if not kept_on(fs):
        return
    with contextlib.suppress(*_UNSUPPORTED):
        fd = fobj.fileno()
        value = f"{sha256} {_fingerprint(os.fstat(fd))}"
        os.setxattr(fd, XATTR, value.encode())


def set_mtime_keeping(fs: EndpointFS, full: str, mtime_ns: int) -> None:
    """Give the closed file ``full`` this modification time; a receipt that held
    before still holds after (the time is part of its fingerprint)."""
    digest = recorded(fs, full)
    fs.set_mtime_at(full, mtime_ns)
    if digest is None:
        return
    with contextlib.suppress(*_UNSUPPORTED):
        fd = os.open(full, os.O_RDONLY)
        try:
            value = f"{digest} {_fingerprint(os.fstat(fd))}"
            os.setxattr(fd, XATTR, value.encode())
        finally:
            os.close(fd)


def forget(fs: EndpointFS, fobj: Any) -> None:
    """Drop the receipt of a file about to be written again (an upload resumed)."""
    if not kept_on(fs):
        return
    with contextlib.suppress(*_UNSUPPORTED):
        os.removexattr(fobj.fileno(), XATTR)


def recorded(fs: EndpointFS, full: str) -> str | None:
    """The receipt digest of ``full`` if it has one and the file is unchanged since."""
    if not kept_on(fs):
        return None
    try:
        value = os.getxattr(full, XATTR).decode("ascii")
        st = os.stat(full)
    except (*_UNSUPPORTED, UnicodeDecodeError):
        return None
    digest, _, fingerprint = value.partition(" ")
    if fingerprint != _fingerprint(st) or len(digest) != 64:
        return None
    return digest

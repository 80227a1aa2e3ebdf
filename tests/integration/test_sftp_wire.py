"""The SFTP endpoint against the real OpenSSH sshd, at the level of requests and
packets: no empty SSH_MSG_IGNORE before each packet on ciphers that do not need it,
still one on CBC, asyncssh's packet log intact at its debug level 3
(ssh_packets.py), and reads made of many requests at once that give back every byte
in order (sftp.py's reader)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from dataferry.endpoints.backends import ssh_packets
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.protocols import open_fs
from dataferry.errors import PermanentError
from tests.support.sshd import SSHServer

# The SFTP client against sshd, with no service and no database.
pytestmark = pytest.mark.database_agnostic


def asyncssh_log(
    caplog: pytest.LogCaptureFixture, level: int
) -> Iterator[pytest.LogCaptureFixture]:
    """asyncssh logging at its debug ``level`` into ``caplog``, restored after."""
    before = asyncssh.logging.logger._debug_level
    asyncssh.set_debug_level(level)
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    try:
        yield caplog
    finally:
        asyncssh.set_debug_level(before)


@pytest.fixture
def packet_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """asyncssh logging every packet (its debug level 3) into ``caplog``."""
    yield from asyncssh_log(caplog, 3)


@pytest.fixture
def request_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """asyncssh logging every SFTP request (its debug level 1) into ``caplog``."""
    yield from asyncssh_log(caplog, 1)


def sftp_fs(sshd: SSHServer, folder: Path, **options: str) -> EndpointFS:
    folder.mkdir(parents=True, exist_ok=True)
    return open_fs(
        "remote",
        sshd.url(folder),
        {"known_hosts": sshd.known_hosts, **options},
        {"private_key": (sshd.folder / "user_ed25519").read_text()},
    )


def upload_and_read_back(fs: EndpointFS, data: bytes) -> None:
    with fs.open_write(fs.full("f.bin")) as f:
        f.write(data)
        fs.make_durable(f)
    with fs.open_read(fs.full("f.bin")) as f:
        assert f.read() == data


def sent(caplog: pytest.LogCaptureFixture, name: str) -> int:
    """Packets of type ``name`` asyncssh logged as sent (its lines read
    ``[conn=0, chan=0, pktid=12] Sent MSG_CHANNEL_DATA (94), 32777 bytes``)."""
    return sum(1 for r in caplog.records if f"Sent {name} (" in r.getMessage())


@pytest.mark.parametrize(
    "cipher", ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"]
)
def test_no_empty_ignore_before_packets_without_iv_chaining(
    sshd: SSHServer, tmp_path: Path, packet_log: Any, cipher: str
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several SFTP writes, ~100 SSH packets
    fs = sftp_fs(sshd, tmp_path / "remote", ciphers=cipher)
    try:
        assert fs.fs.client.get_extra_info("send_cipher") == cipher
        packet_log.clear()
        upload_and_read_back(fs, data)
    finally:
        fs.close()
    assert sent(packet_log, "MSG_CHANNEL_DATA") > 50  # the log does see every packet
    assert sent(packet_log, "MSG_IGNORE") == 0


def test_cbc_keeps_the_empty_ignore_before_each_packet(
    sshd: SSHServer, tmp_path: Path, packet_log: Any
) -> None:
    data = os.urandom(1024 * 1024)
    fs = sftp_fs(sshd, tmp_path / "remote", ciphers="aes128-cbc")
    try:
        assert fs.fs.client.get_extra_info("send_cipher") == "aes128-cbc"
        packet_log.clear()
        upload_and_read_back(fs, data)
    finally:
        fs.close()
    data_packets = sent(packet_log, "MSG_CHANNEL_DATA")
    assert data_packets > 10
    assert sent(packet_log, "MSG_IGNORE") >= data_packets


def test_packet_log_only_at_debug_level_3(
    sshd: SSHServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Below level 3 the per-packet formatting is skipped; asyncssh logged no packet
    lines there anyway. Raising the level brings them back in the same process."""
    before = asyncssh.logging.logger._debug_level
    caplog.set_level(logging.DEBUG, logger="asyncssh")
    fs = sftp_fs(sshd, tmp_path / "remote")
    try:
        asyncssh.set_debug_level(2)
        upload_and_read_back(fs, b"x" * 100_000)
        assert sent(caplog, "MSG_CHANNEL_DATA") == 0
        assert any("Sending" in r.getMessage() for r in caplog.records)  # level 2 lines
        asyncssh.set_debug_level(3)
        caplog.clear()
        upload_and_read_back(fs, b"y" * 100_000)
        assert sent(caplog, "MSG_CHANNEL_DATA") > 0
    finally:
        asyncssh.set_debug_level(before)
        fs.close()


@pytest.mark.parametrize(
    ("cipher", "needed"),
    [
        ("aes128-gcm@openssh.com", False),
        ("aes256-gcm@openssh.com", False),
        ("chacha20-poly1305@openssh.com", False),
        ("aes256-ctr", False),
        ("aes128-cbc", True),
        ("3des-cbc", True),
        ("arcfour256", True),  # not known to be safe without: kept
        ("", True),
        (None, True),
    ],
)
def test_which_ciphers_keep_the_ignores(cipher: str | None, needed: bool) -> None:
    assert ssh_packets.ignores_needed(cipher) is needed


PIECE = 255 * 1024  # OpenSSH's largest read: the reader's largest request


def remote_file(sshd: SSHServer, tmp_path: Path, data: bytes) -> tuple[EndpointFS, str]:
    """An SFTP endpoint on ``tmp_path/remote`` holding ``f.bin`` with ``data``, and
    that file's full path."""
    folder = tmp_path / "remote"
    fs = sftp_fs(sshd, folder)
    (folder / "f.bin").write_bytes(data)
    return fs, fs.full("f.bin")


def read_in_blocks(
    fs: EndpointFS, full: str, chunk: int, size: int | None = None
) -> tuple[bytes, bytes]:
    """The file read to its end with ``read(chunk)``, and again with ``readinto`` of a
    ``chunk``-byte buffer (``size``: the listed size given to ``open_read``)."""
    read = bytearray()
    with fs.open_read(full, size) as f:
        while block := f.read(chunk):
            read += block
    read_into = bytearray()
    buf = bytearray(chunk)
    with fs.open_read(full, size) as f:
        while n := f.readinto(buf):
            read_into += buf[:n]
    return bytes(read), bytes(read_into)


@pytest.mark.parametrize(
    "size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 5, 9 * 1024 * 1024 + 3]
)
def test_reads_return_every_byte_in_order(sshd: SSHServer, tmp_path: Path, size: int) -> None:
    """The reader asks for a block as many requests at once and hands on the pieces:
    whole reads, block reads with read-ahead, ``readinto`` of any buffer size and a
    read from the middle all give the file's bytes."""
    data = os.urandom(size)
    fs, full = remote_file(sshd, tmp_path, data)
    try:
        with fs.open_read(full) as f:
            assert f.read() == data
            assert f.read() == b""
        for chunk in (8 * 1024 * 1024, 1024 * 1024 + 7):
            assert read_in_blocks(fs, full, chunk) == (data, data)
        middle = size // 2
        with fs.open_read_at(full, middle) as f:
            assert f.read() == data[middle:]
    finally:
        fs.close()


@pytest.mark.parametrize(
    "size", [0, 1, PIECE - 1, PIECE, PIECE + 1, 1024 * 1024 + 3, 9 * 1024 * 1024 + 3]
)
def test_writes_store_every_byte_in_order(sshd: SSHServer, tmp_path: Path, size: int) -> None:
    """The writer sends a block as requests of the server's largest write at once, and
    the last of them with the fsync and the close without waiting in between: the
    file holds the bytes in order, written in blocks of any size, and appending
    (resume) continues it."""
    folder = tmp_path / "remote"
    data = os.urandom(size)
    fs = sftp_fs(sshd, folder)
    try:
        for name, chunk in (("whole.bin", max(size, 1)), ("blocks.bin", 1024 * 1024 + 7)):
            with fs.open_write(fs.full(name)) as f:
                for at in range(0, size, chunk):
                    f.write(memoryview(data)[at : at + chunk])
                fs.make_durable(f)
            assert (folder / name).read_bytes() == data
        half = size // 2
        with fs.open_write(fs.full("resumed.bin")) as f:
            f.write(data[:half])
        with fs.open_append(fs.full("resumed.bin")) as f:
            f.write(data[half:])
            fs.make_durable(f)
        assert (folder / "resumed.bin").read_bytes() == data
    finally:
        fs.close()


def rounds(caplog: pytest.LogCaptureFixture) -> list[list[str]]:
    """asyncssh's SFTP requests (its debug level 1 lines ``Sending read for ...``),
    grouped by round trip: a group is what was sent before the next answer came.
    The channel's own start (``init``) is left out. asyncssh logs no answer that is
    an error status (the end of a file, a failed mkdir): use where the rounds
    compared end with answers it logs (data, a handle, OK)."""
    groups: list[list[str]] = [[]]
    for record in caplog.records:
        message = record.getMessage().split("] ", 1)[-1]  # after "[conn=0, chan=0] "
        if message.startswith("Sending ") and not message.startswith("Sending init"):
            groups[-1].append(message.split()[1])  # open, read, close, ...
        elif message.startswith("Received") and groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SFTP requests asyncssh sent, in order (answers that are errors are not
    logged, so these cannot be grouped by round trip)."""
    return [request for group in rounds(caplog) for request in group]


@pytest.mark.parametrize("size", [1, 16 * 1024, PIECE, PIECE + 1, 1024 * 1024])
def test_a_listed_small_file_is_read_in_one_round_after_its_open(
    sshd: SSHServer, tmp_path: Path, request_log: pytest.LogCaptureFixture, size: int
) -> None:
    """Given the size a listing found, a file of up to 1 MiB costs two round trips: the
    open, then its reads, one read just past its end and the close, sent together
    (without the size: open, read, the read that meets the end, close)."""
    data = os.urandom(size)
    fs, full = remote_file(sshd, tmp_path, data)
    try:
        request_log.clear()
        with fs.open_read(full, size) as f:
            assert f.read(8 * 1024 * 1024) == data
            assert f.read(8 * 1024 * 1024) == b""
        reads = -(-size // PIECE) + 1
        assert rounds(request_log) == [["open"], ["read"] * reads + ["close"]]
        request_log.clear()
        with fs.open_read(full) as f:  # no size given: one more round
            assert f.read(8 * 1024 * 1024) == data
        assert len(rounds(request_log)) > 2
    finally:
        fs.close()


@pytest.mark.parametrize(
    ("listed", "size"),
    [(100, 300 * 1024), (300 * 1024, 100), (1000, 0), (PIECE, PIECE + 1), (PIECE + 1, PIECE)],
)
def test_a_file_that_changed_size_since_its_listing_is_read_whole(
    sshd: SSHServer, tmp_path: Path, listed: int, size: int
) -> None:
    """The listed size is only a hint: a file that grew or shrank since is read to its
    real end, with one read or with many."""
    data = os.urandom(size)
    fs, full = remote_file(sshd, tmp_path, data)
    try:
        with fs.open_read(full, listed) as f:
            assert f.read() == data
            assert f.read() == b""
        with fs.open_read(full, listed) as f:  # the read just past it: one byte
            assert f.read(listed + 1) == data[: listed + 1]
        for chunk in (8 * 1024 * 1024, 150_001):
            assert read_in_blocks(fs, full, chunk, listed) == (data, data)
    finally:
        fs.close()


def test_downloads_let_the_server_send_16_mib_ahead(
    sshd: SSHServer, tmp_path: Path, packet_log: Any
) -> None:
    """The SSH receive window is 16 MiB, not asyncssh's 2 MiB: over a link with some
    latency the server is not held back between our window adjustments. Seen on the
    wire: a 4 MiB download needs no adjustment (with 2 MiB, one per 1 MiB read)."""
    data = os.urandom(4 * 1024 * 1024)
    fs, full = remote_file(sshd, tmp_path, data)
    try:
        packet_log.clear()
        with fs.open_read(full) as f:
            assert f.read() == data
    finally:
        fs.close()
    received = sum(1 for r in packet_log.records if "Received MSG_CHANNEL_DATA (" in r.getMessage())
    assert received > 100  # the log sees the data packets (32 KiB each)
    assert sent(packet_log, "MSG_CHANNEL_WINDOW_ADJUST") == 0


def test_folders_are_made_from_the_folder_up(
    sshd: SSHServer, tmp_path: Path, request_log: pytest.LogCaptureFixture
) -> None:
    """A new folder whose parent exists costs one request and an existing one two,
    however deep (asyncssh's makedirs walks down from ``/``: a mkdir and a stat per
    level). Missing parents are made too; a file in the way is a clear error."""
    folder = tmp_path / "remote"
    fs = sftp_fs(sshd, folder)
    try:
        fs.makedirs(fs.full("new"))  # the channel's start is not counted below
        request_log.clear()
        fs.makedirs(fs.full("new/one"))
        assert requests(request_log) == ["mkdir"]
        request_log.clear()
        fs.makedirs(fs.full("new/one"))
        assert requests(request_log) == ["mkdir", "stat"]
        request_log.clear()
        fs.makedirs(fs.full("a/b/c"))
        assert requests(request_log) == ["mkdir"] * 5  # c, b: no parent; a, b, c made
        assert (folder / "a" / "b" / "c").is_dir()
        (folder / "file").write_bytes(b"x")
        for where in ("file", "file/below"):
            with pytest.raises(PermanentError, match="a file is in the way"):
                fs.makedirs(fs.full(where))
        assert (folder / "file").read_bytes() == b"x"
    finally:
        fs.close()


def test_a_tree_is_listed_whole_with_the_folders_of_each_depth_at_once(
    sshd: SSHServer, tmp_path: Path, request_log: pytest.LogCaptureFixture
) -> None:
    """``files_below`` lists every file at any depth with its size (unicode names,
    empty folders, a link as it is), sorted; the folders of one depth are asked for
    together, so the listing of depth 2 goes out before any of it has come back."""
    folder = tmp_path / "remote"
    expected: list[tuple[str, int]] = []
    for i in range(12):
        sub = folder / f"d{i:02d}" / "ünïcødé"
        sub.mkdir(parents=True)
        (folder / f"d{i:02d}" / "empty").mkdir()
        for j in range(3):
            (sub / f"f{j}.bin").write_bytes(b"x" * (i * 10 + j))
            expected.append((str(sub / f"f{j}.bin"), i * 10 + j))
    (folder / "top.txt").write_bytes(b"top")
    (folder / "link").symlink_to(folder / "top.txt")
    expected += [(str(folder / "top.txt"), 3), (str(folder / "link"), len(str(folder / "top.txt")))]
    fs = sftp_fs(sshd, folder)
    try:
        request_log.clear()
        assert [f[:2] for f in fs.files_below(fs.root)] == sorted(expected)
        below = str(folder) + "/"
        opened = [
            r.getMessage().split(below, 1)[-1]
            for r in request_log.records
            if "Sending opendir for" in r.getMessage()
        ]
        assert len(opened) == 1 + 12 * 3
        assert all("/" not in rel for rel in opened[1:13])  # d00 .. d11 first
        assert [f[:2] for f in fs.files_below(fs.full("top.txt"))] == [(str(folder / "top.txt"), 3)]
        assert fs.files_below(fs.full("missing")) == []
        assert fs.files_below(fs.full("d03/empty")) == []
    finally:
        fs.close()

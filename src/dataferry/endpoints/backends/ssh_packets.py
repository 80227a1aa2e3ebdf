"""Two per-packet costs of asyncssh that an SFTP transfer does not need.

A 1 GiB upload is some 40,000 SSH packets, and asyncssh spends its Python on each:

- Before every packet it sends, it sends an empty ``SSH_MSG_IGNORE``. That is RFC
  4251 section 9.3.1's countermeasure for CBC mode, whose next IV an attacker can
  predict; AES-GCM, ChaCha20-Poly1305 and CTR modes have no such IV chaining, so on
  them it only doubles the packets to encrypt, send and for the server to decrypt.
  On a connection whose outgoing cipher is one of those, the empty ignores are
  dropped (:func:`drop_empty_ignores`); on any other cipher they are kept.
- It formats a log line for every packet sent and received (names, byte counts)
  before its logger discards it unless asyncssh's debug level is 3. That formatting
  is skipped while the level is below 3 (:func:`skip_packet_log_formatting`); at
  level 3 packets are logged exactly as before.

Both leave the bytes on the wire of every real message unchanged. Measured on the
SFTP benchmark's 1 GiB upload: see docs/benchmarks.md, "remote (SFTP)". Both are
optimisations only: where an asyncssh release no longer has what they wrap they
do nothing (test_sftp_wire.py would then fail, not the transfers).
"""

from __future__ import annotations

import threading
from typing import Any

# Outgoing ciphers without CBC's IV chaining: the empty ignore is not needed.
_NO_IV_CHAINING = ("-gcm@openssh.com", "chacha20-poly1305@openssh.com", "-ctr")
_EMPTY_STRING = b"\0\0\0\0"  # an SSH string of length 0


def ignores_needed(cipher: str | None) -> bool:
    """Whether packets sent with ``cipher`` (as asyncssh names it) still need the
    empty ``SSH_MSG_IGNORE`` before them: yes unless the cipher is known not to chain
    IVs (an unknown or missing name keeps them)."""
    return not (cipher and cipher.endswith(_NO_IV_CHAINING))


def drop_empty_ignores(conn: Any) -> None:
    """Stop ``conn`` (an asyncssh connection) sending the empty ignore before each
    packet while its outgoing cipher does not need it. asyncssh sends that ignore
    through the connection's own ``send_packet``, so wrapping it on this one
    connection catches exactly those; other connections are untouched. The cipher is
    asked at each ignore, so a re-keying to a CBC cipher brings them back."""
    from asyncssh.constants import MSG_IGNORE

    send = getattr(conn, "send_packet", None)
    if send is None or not hasattr(conn, "get_extra_info"):
        return

    def send_packet(pkttype: int, *args: bytes, **kwargs: Any) -> None:
        if (
            pkttype == MSG_IGNORE
            and args == (_EMPTY_STRING,)
            and not ignores_needed(conn.get_extra_info("send_cipher"))
        ):
            return
        send(pkttype, *args, **kwargs)

    conn.send_packet = send_packet


_skipping = False
_skipping_lock = threading.Lock()  # endpoints are opened from several threads


def skip_packet_log_formatting() -> None:
    """Make asyncssh's per-packet log call return at once while its debug level is
    below 3, the level below which its logger drops those lines anyway. Done once
    per process; the level is read at each packet, so raising it later (for
    example ``asyncssh.set_debug_level(3)`` while debugging) logs packets again."""
    global _skipping
    with _skipping_lock:
        if _skipping:
            return
        _skipping = True
        from asyncssh import logging as ssh_logging
        from asyncssh.packet import SSHPacketLogger

        log_packet = getattr(SSHPacketLogger, "_log_packet", None)
        logger_class = getattr(ssh_logging, "SSHLogger", None)
        if log_packet is None or logger_class is None:
            return

        def _log_packet(self: Any, *args: Any, **kwargs: Any) -> None:
            if getattr(logger_class, "_debug_level", 3) < 3:
                return
            log_packet(self, *args, **kwargs)

        SSHPacketLogger._log_packet = _log_packet  # type: ignore[method-assign]

"""``sftp://user@host:port/path`` endpoints through sshfs (asyncssh).

Options: ``known_hosts`` (a file path, or the known_hosts text itself),
``host_key_check`` (``true`` by default; ``false`` accepts any host key, for
throwaway test servers only), ``username`` (when not in the URL),
``timeout`` (seconds to connect, default 30).
Secrets: ``password``; ``private_key`` (the key's text, OpenSSH or PEM, kept only
in memory) with an optional ``passphrase``.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any
from urllib.parse import SplitResult, unquote

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.errors import DataferryError, InvalidRequest, PermanentError, TransientError

DEFAULT_PORT = 22
_FALSE = ("0", "false", "no", "off")


def _parts(url: SplitResult, options: dict[str, Any]) -> tuple[str, int, str, str]:
    if not url.hostname:
        raise InvalidRequest("sftp URL needs a host: sftp://user@host[:port]/path")
    try:
        port = url.port or DEFAULT_PORT
    except ValueError as exc:
        raise InvalidRequest(f"sftp URL has a bad port: {exc}") from None
    user = unquote(url.username or "") or str(options.get("username", ""))
    if not user:
        raise InvalidRequest("sftp URL needs a user: sftp://user@host/path (or option username)")
    if url.password:
        raise InvalidRequest("put the password in a secret (--secret password=...), not the URL")
    path = unquote(url.path) or "/"
    if not path.startswith("/"):
        raise InvalidRequest("sftp URL path must be absolute")
    return url.hostname, port, user, path.rstrip("/") or "/"


def check(url: SplitResult, options: dict[str, Any]) -> None:
    _parts(url, options)
    known = options.get("known_hosts")
    if known is not None and not isinstance(known, str):
        raise InvalidRequest("option known_hosts must be a path or the known_hosts text")
    try:
        float(options.get("timeout", 30))
    except (TypeError, ValueError):
        raise InvalidRequest("option timeout must be a number of seconds") from None


def _known_hosts(options: dict[str, Any]) -> Any:
    import asyncssh

    if str(options.get("host_key_check", "true")).lower() in _FALSE:
        return None
    known = options.get("known_hosts")
    if not known:
        return ()  # asyncssh's default: ~/.ssh/known_hosts
    if "\n" in known.strip() or " " in known.strip():
        return asyncssh.import_known_hosts(known)
    return known  # a file path


def _classify(name: str, exc: BaseException, what: str) -> DataferryError | None:
    import asyncssh

    where = f"endpoint {name!r}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return PermanentError(f"{where}: host key not verifiable ({exc.reason}); see known_hosts")
    if isinstance(exc, (asyncssh.PermissionDenied, PermissionError)):
        return PermanentError(f"{what} on {where}: permission denied")
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{what} on {where}: not found")
    if isinstance(exc, asyncssh.KeyImportError):
        return PermanentError(f"{where}: the private_key secret cannot be read: {exc}")
    if isinstance(exc, socket.gaierror):
        return TransientError(f"{where}: host name lookup failed: {exc.strerror}")
    if isinstance(
        exc,
        (
            asyncssh.ConnectionLost,
            asyncssh.DisconnectError,
            asyncssh.ChannelOpenError,
            ConnectionError,
            TimeoutError,
            OSError,
        ),
    ):
        return TransientError(f"{what} on {where}: {type(exc).__name__}: {exc}")
    if isinstance(exc, asyncssh.SFTPError):
        return PermanentError(f"{what} on {where}: {exc.reason}")
    return None


class SFTPEndpointFS(EndpointFS):
    resumable = True

    def __init__(self, name: str, fs: Any, root: str, options: dict[str, Any], key: str) -> None:
        super().__init__(name, fs, root, options)
        self._key = key

    @property
    def storage_id(self) -> str:
        return f"sftp://{self._key}"

    def open_read(self, full: str) -> Any:
        return self.fs.open(full, "rb", block_size=256 * 1024)

    def open_write(self, full: str) -> Any:
        return self.fs.open(full, "wb")

    def make_durable(self, fobj: Any) -> None:
        try:
            fobj.fsync()  # fsync@openssh.com; other servers may not offer it
        except Exception as exc:
            if type(exc).__name__ != "SFTPOpUnsupported":
                raise

    def rename(self, src: str, dst: str) -> None:
        self.fs.mv(src, dst)  # posix-rename@openssh.com: replaces dst in one step

    def remove_dir(self, full: str) -> None:
        from fsspec.asyn import sync

        sync(self.fs.loop, self.fs._rmdir, full)  # sshfs has no sync rmdir

    def classify(self, exc: BaseException, what: str) -> DataferryError | None:
        return _classify(self.name, exc, what)

    def close(self) -> None:
        from fsspec.asyn import sync

        fs = self.fs

        async def aclose() -> None:
            await fs._pool.close()
            await fs._stack.aclose()

        with contextlib.suppress(Exception):
            sync(fs.loop, aclose, timeout=5)


def open_fs(
    name: str, url: SplitResult, options: dict[str, Any], secrets: dict[str, str]
) -> EndpointFS:
    import asyncssh
    from sshfs import SSHFileSystem

    host, port, user, root = _parts(url, options)
    kwargs: dict[str, Any] = {
        "port": port,
        "username": user,
        "known_hosts": _known_hosts(options),
        "timeout": float(options.get("timeout", 30)),
        "connect_timeout": float(options.get("timeout", 30)),
        "skip_instance_cache": True,
        # Only what the endpoint holds: no agent, no ~/.ssh keys of the service user.
        "agent_path": None,
        "client_keys": None,
        "config": None,
    }
    if secrets.get("password"):
        kwargs["password"] = secrets["password"]
    try:
        if secrets.get("private_key"):
            kwargs["client_keys"] = [
                asyncssh.import_private_key(
                    secrets["private_key"], secrets.get("passphrase") or None
                )
            ]
        fs = SSHFileSystem(host, **kwargs)
    except Exception as exc:
        err = _classify(name, exc, "connecting")
        if err is None:
            raise PermanentError(
                f"endpoint {name!r}: cannot connect: {type(exc).__name__}"
            ) from exc
        raise err from exc
    return SFTPEndpointFS(name, fs, root, options, f"{user}@{host}:{port}")

"""``s3://bucket/prefix`` endpoints through s3fs (any S3-compatible service).

Options: ``endpoint_url`` (for non-AWS services), ``region``, ``anon`` (``true``
for public buckets), ``block_size`` (multipart part size, default 8 MiB).
Secrets: ``access_key_id``, ``secret_access_key``, optional ``session_token``.

Writes follow the temporary-name rule: a file is uploaded (multipart when large)
under a temporary key, its size verified, then copied server-side to its final
key and the temporary deleted, so no half-object is ever visible under the final
key. S3 cannot append, so large files restart rather than resume.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, unquote

from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.options import Check, boolean, flag, text, whole_number, word
from dataferry.errors import DataferryError, InvalidRequest, PermanentError, TransientError

MIN_BLOCK = 5 * 1024 * 1024  # S3's smallest multipart part
MAX_BLOCK = 5 * 1024**3  # and its largest
OPTIONS: dict[str, Check] = {
    "endpoint_url": text,  # and an http(s) URL (check)
    "region": word,
    "anon": boolean,
    "block_size": whole_number(MIN_BLOCK, MAX_BLOCK),
}
SECRETS = frozenset({"access_key_id", "secret_access_key", "session_token"})
_TRANSIENT_NAMES = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "ServerTimeoutError",
}


def _root(url: SplitResult) -> str:
    bucket = url.netloc
    if not bucket:
        raise InvalidRequest("s3 URL needs a bucket: s3://bucket/prefix")
    if "@" in bucket:
        raise InvalidRequest("put S3 keys in secrets (access_key_id, secret_access_key)")
    prefix = unquote(url.path).strip("/")
    return f"{bucket}/{prefix}" if prefix else bucket


def check(url: SplitResult, options: dict[str, Any]) -> None:
    _root(url)
    endpoint = options.get("endpoint_url", "")
    if endpoint and not str(endpoint).startswith(("http://", "https://")):
        raise InvalidRequest("option endpoint_url must be an http(s) URL")


def _classify(name: str, exc: BaseException, what: str) -> DataferryError | None:
    where = f"endpoint {name!r}"
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 5:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(type(c).__name__ in _TRANSIENT_NAMES for c in chain):
        return TransientError(f"{what} on {where}: cannot reach the S3 service")
    if isinstance(exc, PermissionError):
        return PermanentError(f"{what} on {where}: access denied (check the keys and policy)")
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{what} on {where}: not found")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientError(f"{what} on {where}: {type(exc).__name__}")
    return None


class S3EndpointFS(EndpointFS):
    def __init__(
        self, name: str, fs: Any, root: str, options: dict[str, Any], service: str
    ) -> None:
        super().__init__(name, fs, root, options)
        self._service = service
        self._block = int(options.get("block_size", 8 * 1024 * 1024))

    @property
    def storage_id(self) -> str:
        return f"s3:{self._service}"

    def open_write(self, full: str) -> Any:
        return self.fs.open(full, "wb", block_size=self._block)

    def open_read(self, full: str, size: int | None = None) -> Any:
        return self.fs.open(full, "rb", block_size=self._block, cache_type="readahead")

    keeps_folders = False

    def makedirs(self, full: str) -> None:
        """S3 has no folders (and s3fs would create a missing bucket here)."""

    def remove_dir(self, full: str) -> None:
        """No folders on S3 (and s3fs's rmdir removes buckets)."""

    def rename(self, src: str, dst: str) -> None:
        self.fs.copy(src, dst)  # server-side: the final key appears whole
        self.fs.rm(src)

    def classify(self, exc: BaseException, what: str) -> DataferryError | None:
        return _classify(self.name, exc, what)


def open_fs(
    name: str, url: SplitResult, options: dict[str, Any], secrets: dict[str, str]
) -> EndpointFS:
    import s3fs

    root = _root(url)
    bucket = root.split("/", 1)[0]
    client_kwargs: dict[str, Any] = {}
    if options.get("region"):
        client_kwargs["region_name"] = options["region"]
    endpoint = str(options.get("endpoint_url", "")) or None
    anon = flag(options.get("anon", False))
    fs = s3fs.S3FileSystem(
        key=secrets.get("access_key_id") or None,
        secret=secrets.get("secret_access_key") or None,
        token=secrets.get("session_token") or None,
        anon=anon,
        endpoint_url=endpoint,
        client_kwargs=client_kwargs,
        skip_instance_cache=True,
        use_listings_cache=False,
        config_kwargs={"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}},
    )
    efs = S3EndpointFS(name, fs, root, options, endpoint or "aws")
    try:
        fs.call_s3("head_bucket", Bucket=bucket)  # reachable, keys accepted, bucket there
    except FileNotFoundError as exc:
        raise PermanentError(f"endpoint {name!r}: bucket {bucket!r} does not exist") from exc
    except Exception as exc:
        err = _classify(name, exc, "opening")
        if err is None:
            raise TransientError(f"endpoint {name!r}: {type(exc).__name__}: {exc}") from exc
        raise err from exc
    return efs

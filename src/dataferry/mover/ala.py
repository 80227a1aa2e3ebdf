"""The ``ala.occurrences`` job: download a species' occurrence records from the
Atlas of Living Australia biocache (gzipped CSV, unpacked while streaming) and its
metadata from the species service, and write ``<lsid-safe-name>/occurrences.csv``
and ``metadata.json`` to the configured destination, each through a temporary name.

HTTP 5xx, 429 and connection problems are transient (the job engine retries with
backoff); 4xx answers and bodies that are not what they claim (not gzip, not CSV,
not JSON) fail the job with the reason."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx

from dataferry.config import AlaSettings, TransferSettings
from dataferry.endpoints.backends.http import status_error
from dataferry.endpoints.filesystem import EndpointFS
from dataferry.endpoints.paths import join, split_location
from dataferry.endpoints.service import EndpointService
from dataferry.errors import DataferryError, NotFound, PermanentError, TransientError
from dataferry.jobs.context import JobContext
from dataferry.transfers.copy import Written, discard, publish, temporary_name
from dataferry.transfers.request import Checksum
from dataferry.transfers.run import classify

FIELDS = "raw_taxon_name,longitude,latitude"


def safe_name(lsid: str) -> str:
    """A folder name for an LSID (``urn:lsid:...`` or a URL): unsafe characters -> ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", lsid).strip("._") or "species"


def occurrences_url(ala: AlaSettings, lsid: str) -> str:
    query = urlencode(
        {
            "q": f"lsid:{lsid}",
            "fq": "geospatial_kosher:true",
            "fl": FIELDS,
            "pageSize": ala.page_size,
        }
    )
    return urljoin(ala.biocache_url, "ws/webportal/occurrences.gz") + "?" + query


def metadata_url(ala: AlaSettings, lsid: str) -> str:
    return urljoin(ala.bie_url, f"species/{lsid}.json")


class _Out:
    """A file written at a temporary name on the destination, with size and hash."""

    def __init__(self, dst: EndpointFS, final: str, job_id: int) -> None:
        self.dst = dst
        self.final = final
        self.tmp = temporary_name(final, job_id)
        self.size = 0
        self.hasher = Checksum.SHA256.value
        import hashlib

        self._h = hashlib.sha256()
        self.f = dst.open_write(self.tmp)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self.f.write(view)
            view = view[n if n is not None else len(view) :]
        self.size += len(data)
        self._h.update(data)

    def finish(self, chunk: int) -> None:
        self.dst.make_durable(self.f)
        self.f.close()
        item = Written(self.tmp, self.final, self.size, f"sha256:{self._h.hexdigest()}")
        publish(self.dst, item, readback=False, algo=Checksum.SHA256, chunk=chunk)

    def abort(self) -> None:
        try:
            self.f.close()
        finally:
            discard(self.dst, self.tmp)


def _get(client: httpx.Client, url: str, what: str) -> httpx.Response:
    try:
        r = client.get(url)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__} reaching the ALA") from exc
    if r.status_code >= 400:
        raise status_error(r.status_code, what)
    return r


def _download_occurrences(
    ctx: JobContext, client: httpx.Client, url: str, out: _Out, lsid: str
) -> int:
    """Stream the gzipped CSV into ``out`` unpacked; returns the number of records."""
    what = f"occurrences of {lsid}"
    try:
        with client.stream("GET", url) as r:
            if r.status_code >= 400:
                raise status_error(r.status_code, what)
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip only
            header = b""
            lines = 0
            for block in r.iter_raw(1024 * 1024):
                ctx.check()
                try:
                    data = inflate.decompress(block)
                except zlib.error as exc:
                    raise PermanentError(f"{what}: the ALA's answer is not gzip data") from exc
                if not header:
                    header = data.split(b"\n", 1)[0]
                    if data and b"," not in header and b"\n" in data:
                        raise PermanentError(f"{what}: the ALA's answer is not CSV")
                lines += data.count(b"\n")
                out.write(data)
                ctx.progress(task="downloading", bytes_done=out.size)
            tail = inflate.flush()
            out.write(tail)
            lines += tail.count(b"\n")
            if not inflate.eof:
                raise TransientError(f"{what}: the download ended early (truncated gzip)")
            if not header or b"," not in header:
                raise PermanentError(f"{what}: the ALA's answer is not CSV (no header line)")
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__} reaching the ALA") from exc
    return max(0, lines - 1)


def handler(endpoints: EndpointService, ala: AlaSettings, settings: TransferSettings) -> Any:
    def run(ctx: JobContext) -> dict[str, Any]:
        lsid = str(ctx.params["lsid"])
        endpoint, base = split_location(ala.destination)
        try:
            dst = endpoints.open(endpoint)
        except NotFound as exc:
            raise PermanentError(f"ALA destination: {exc}") from exc
        folder = join(base, safe_name(lsid))
        outs: list[_Out] = []
        try:
            dst.makedirs(dst.full(folder))
            ctx.progress(task="downloading", task_percent=0.0, force=True)
            with httpx.Client(
                timeout=ala.timeout, follow_redirects=True, trust_env=False
            ) as client:
                meta = _get(client, metadata_url(ala, lsid), f"metadata of {lsid}")
                try:
                    doc = meta.json()
                except ValueError as exc:
                    raise PermanentError(
                        f"metadata of {lsid}: the ALA's answer is not JSON"
                    ) from exc
                if not isinstance(doc, dict):
                    raise PermanentError(f"metadata of {lsid}: the ALA's answer is not an object")
                csv = _Out(dst, dst.full(join(folder, "occurrences.csv")), ctx.job_id)
                outs.append(csv)
                records = _download_occurrences(ctx, client, occurrences_url(ala, lsid), csv, lsid)
            meta_out = _Out(dst, dst.full(join(folder, "metadata.json")), ctx.job_id)
            outs.append(meta_out)
            meta_out.write(json.dumps(doc, indent=2, ensure_ascii=False).encode())
            csv.finish(settings.chunk_size)
            meta_out.finish(settings.chunk_size)
            outs.clear()
            ctx.progress(task="done", task_percent=100.0, force=True)
            return {"folder": folder, "records": records}
        except DataferryError:
            raise
        except Exception as exc:
            raise classify(exc, f"writing ALA data for {lsid}", dst) from exc
        finally:
            for out in outs:
                out.abort()
            dst.close()

    return run

"""Python client of the REST API (the CLI uses it)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from dataferry.errors import DataferryError

FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# One long-poll request of Client.wait; the server allows up to 60 s.
WAIT_SECONDS = 30.0


def transfer_body(
    source: str,
    destination: str,
    mode: str = "copy",
    checksum: str = "sha256",
    overwrite: str | None = None,
    expected_checksum: str | None = None,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    compare: str | None = None,
    empty_folders: bool = False,
    min_size: int | None = None,
    max_size: int | None = None,
    min_age: float | None = None,
    max_age: float | None = None,
) -> dict[str, Any]:
    """A transfer's JSON body with only the options given (the server's defaults
    apply to the rest)."""
    body: dict[str, Any] = {
        "source": source,
        "destination": destination,
        "mode": mode,
        "checksum": checksum,
    }
    if overwrite is not None:
        body["overwrite"] = overwrite
    if expected_checksum:
        body["expected_checksum"] = expected_checksum
    if include:
        body["include"] = include
    if exclude:
        body["exclude"] = exclude
    if compare:
        body["compare"] = compare
    if empty_folders:
        body["empty_folders"] = True
    limits = {
        "min_size": min_size,
        "max_size": max_size,
        "min_age": min_age,
        "max_age": max_age,
    }
    body.update({k: v for k, v in limits.items() if v is not None})
    return body


class ClientError(DataferryError):
    """The service answered with an error, or could not be reached."""

    def __init__(self, message: str, status_code: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code


def segment(value: str, what: str = "a name") -> str:
    """``value`` as one segment of a URL path: quoted whole, so a name holding ``/``,
    ``?`` or ``#``, or one that is ``.`` or ``..`` (which the HTTP client would
    resolve: ``endpoints/../sinks/s1`` is ``sinks/s1``), names what it says and
    nothing else. An empty one would name the collection itself: refused."""
    if not value:
        raise ClientError(f"{what} must not be empty")
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class Client:
    def __init__(self, url: str, token: str = "", timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; an unreachable server or an error status becomes ClientError."""
        if "json" in kwargs:
            # JSON has no infinity or NaN (``--timeout inf``): say so instead of the
            # encoder's ValueError escaping as a traceback.
            try:
                kwargs["content"] = json.dumps(kwargs.pop("json"), allow_nan=False).encode()
            except ValueError:
                raise ClientError(
                    "a number in the request is infinite or not a number (JSON has neither)"
                ) from None
            kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:  # e.g. a name too long for a URL
            raise ClientError(f"cannot send this request: {exc}") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach dataferry at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                doc = response.json()
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or "detail" not in doc:
                # not our error shape: some other server answers at that address
                raise ClientError(
                    f"{self._not_dataferry()} answered HTTP {response.status_code}: "
                    f"{_glimpse(response.text)}",
                    response.status_code,
                )
            code = response.status_code
            raise ClientError(f"{doc['detail']} (HTTP {code})", code)
        return response

    def _not_dataferry(self) -> str:
        return f"{self.url} does not look like dataferry (is DATAFERRY_URL or --url right?): it"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                f"{self._not_dataferry()} answered with something other than JSON: "
                f"{_glimpse(response.text)}"
            ) from None

    def raw(self, method: str, path: str, **kwargs: Any) -> bytes:
        """Like ``request`` but returns the body's bytes (exports)."""
        return self._send(method, path, **kwargs).content

    # -- health ----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/healthz")
        return result

    # -- endpoints -------------------------------------------------------------
    def endpoints(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/endpoints")["endpoints"]
        return result

    def add_endpoint(
        self,
        name: str,
        url: str,
        options: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "url": url, "options": options or {}, "secrets": secrets or {}}
        result: dict[str, Any] = self.request("POST", "/api/v1/endpoints", json=body)
        return result

    def endpoint(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/endpoints/{segment(name)}")
        return result

    def remove_endpoint(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/endpoints/{segment(name)}")

    def list_files(
        self,
        endpoint: str,
        path: str = "",
        recursive: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> dict[str, Any]:
        """What is at ``endpoint:path``: ``{"type", "entries", "total", "truncated", ...}``."""
        params: dict[str, Any] = {"path": path, "limit": limit, "offset": offset}
        if recursive:
            params["recursive"] = "true"
        result: dict[str, Any] = self.request(
            "GET", f"/api/v1/endpoints/{segment(endpoint)}/files", params=params
        )
        return result

    # -- transfers and jobs ----------------------------------------------------
    def transfer(
        self,
        source: str,
        destination: str,
        mode: str = "copy",
        checksum: str = "sha256",
        overwrite: str | None = None,
        expected_checksum: str | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        dry_run: bool = False,
        compare: str | None = None,
        empty_folders: bool = False,
        min_size: int | None = None,
        max_size: int | None = None,
        min_age: float | None = None,
        max_age: float | None = None,
    ) -> dict[str, Any]:
        """Submit a transfer (the job document), or with ``dry_run`` preview it.
        ``min_size``/``max_size`` are bytes, ``min_age``/``max_age`` seconds."""
        body = transfer_body(
            source,
            destination,
            mode,
            checksum,
            overwrite,
            expected_checksum,
            include,
            exclude,
            compare,
            empty_folders,
            min_size,
            max_size,
            min_age,
            max_age,
        )
        path = "/api/v1/transfers/preview" if dry_run else "/api/v1/transfers"
        result: dict[str, Any] = self.request("POST", path, json=body)
        return result

    # -- schedules ---------------------------------------------------------------
    def schedules(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/schedules")["schedules"]
        return result

    def add_schedule(
        self, name: str, transfer: dict[str, Any], every: float, start: str | None = None
    ) -> dict[str, Any]:
        """``transfer`` as :func:`transfer_body` makes it; ``every`` in seconds;
        ``start`` an ISO 8601 time with its zone (None: now)."""
        body: dict[str, Any] = {"name": name, "transfer": transfer, "every": every}
        if start is not None:
            body["start"] = start
        result: dict[str, Any] = self.request("POST", "/api/v1/schedules", json=body)
        return result

    def schedule(self, name: str, action: str = "") -> dict[str, Any]:
        """The schedule; with ``action`` (pause, resume, run) that done first (run
        answers the job document)."""
        path = f"/api/v1/schedules/{segment(name)}"
        result: dict[str, Any] = (
            self.request("POST", f"{path}/{action}") if action else self.request("GET", path)
        )
        return result

    def remove_schedule(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/schedules/{segment(name)}")

    def job(self, job_id: int, wait: float = 0) -> dict[str, Any]:
        """The job document; with ``wait`` (seconds, at most 60) the server answers
        as soon as the job is finished, or after ``wait`` seconds."""
        result: dict[str, Any] = self.request(
            "GET",
            f"/api/v1/jobs/{job_id}",
            params={"wait": wait} if wait else None,
            timeout=self.timeout + wait,
        )
        return result

    def job_detail(self, job_id: int) -> dict[str, Any]:
        """The job document plus its parameters, result and attempt history."""
        result: dict[str, Any] = self.request("GET", f"/api/v1/jobs/{job_id}/detail")
        return result

    def wait(self, job_id: int) -> dict[str, Any]:
        """The job document once the job is finished (however long that takes)."""
        while (doc := self.job(job_id, wait=WAIT_SECONDS))["state"] not in FINAL_STATES:
            pass
        return doc

    def jobs(
        self, state: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        if kind:
            params["kind"] = kind
        result: dict[str, Any] = self.request("GET", "/api/v1/jobs", params=params)
        return result

    def job_files(self, job_id: int, limit: int = 10000, offset: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", f"/api/v1/jobs/{job_id}/files", params={"limit": limit, "offset": offset}
        )["files"]
        return result

    def cancel(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/jobs/{job_id}/cancel")
        return result

    def retry(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/jobs/{job_id}/retry")
        return result

    def prune_jobs(self, older_than_days: float) -> int:
        body = {"older_than_days": older_than_days}
        deleted: int = self.request("POST", "/api/v1/jobs/prune", json=body)["deleted"]
        return deleted

    # -- ingest ------------------------------------------------------------------
    def upload_bundle(self, body: Iterable[bytes], size: int | None = None) -> dict[str, Any]:
        """Stream a bundle to ``POST /ingest``; returns the Pacifica-shaped state."""
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            response = self._http.post("/ingest", content=body, headers=headers)
        except httpx.InvalidURL as exc:  # e.g. a name too long for a URL
            raise ClientError(f"cannot send this request: {exc}") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach dataferry at {self.url}: {exc}") from exc
        try:
            doc: dict[str, Any] = response.json()
        except ValueError:
            raise ClientError(
                f"{response.text} (HTTP {response.status_code})", response.status_code
            ) from None
        if response.status_code >= 400 and "job_id" not in doc:
            raise ClientError(
                f"{doc.get('detail', response.text)} (HTTP {response.status_code})",
                response.status_code,
            )
        return doc

    def ingest_state(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/get_state", params={"job_id": job_id})
        return result

    def transactions(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", "/api/v1/transactions", params={"limit": limit, "offset": offset}
        )
        return result

    def transaction(self, transaction_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/transactions/{transaction_id}")
        return result

    # -- sites -----------------------------------------------------------------------
    def sites(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/sites")["sites"]
        return result

    def add_site(
        self, name: str, url: str, token: str, role: str = "consumer", inbound: str = ""
    ) -> dict[str, Any]:
        body = {"name": name, "url": url, "token": token, "role": role, "inbound": inbound}
        result: dict[str, Any] = self.request("POST", "/api/v1/sites", json=body)
        return result

    def remove_site(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/sites/{segment(name)}")

    # -- datasets (provider) ---------------------------------------------------------
    def publish(self, uid: str, source: str, meta: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"uid": uid, "source": source, "meta": meta or {}}
        result: dict[str, Any] = self.request("POST", "/api/v1/datasets", json=body)
        return result

    def datasets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/datasets")["datasets"]
        return result

    def dataset(self, uid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/datasets/{segment(uid)}")
        return result

    def broadcast(self, uid: str, site: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/v1/datasets/{segment(uid)}/broadcast", json={"site": site}
        )
        return result

    # -- synced datasets (consumer) --------------------------------------------------
    def synced_datasets(self, state: str | None = None) -> list[dict[str, Any]]:
        params = {"state": state} if state else {}
        result: list[dict[str, Any]] = self.request(
            "GET", "/api/v1/synced-datasets", params=params
        )["datasets"]
        return result

    def synced_dataset(self, uid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/synced-datasets/{segment(uid)}")
        return result

    def dataset_history(self, uid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", f"/api/v1/synced-datasets/{segment(uid)}/history"
        )["history"]
        return result

    def restart_dataset(self, uid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/v1/synced-datasets/{segment(uid)}/restart"
        )
        return result

    def forget_dataset(self, uid: str) -> None:
        self.request("DELETE", f"/api/v1/synced-datasets/{segment(uid)}")

    # -- sinks -----------------------------------------------------------------
    def sinks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/sinks")["sinks"]
        return result

    def add_sink(self, definition: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/v1/sinks", json=definition)
        return result

    def sink(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/sinks/{segment(name)}")
        return result

    def update_sink(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PATCH", f"/api/v1/sinks/{segment(name)}", json=changes
        )
        return result

    def remove_sink(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/sinks/{segment(name)}")

    def pause_sink(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/sinks/{segment(name)}/pause")
        return result

    def resume_sink(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/sinks/{segment(name)}/resume")
        return result

    def poll_sink(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/sinks/{segment(name)}/poll")
        return result

    def sink_failures(self, name: str, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET",
            f"/api/v1/sinks/{segment(name)}/failures",
            params={"limit": limit, "offset": offset},
        )["failures"]
        return result

    def retry_sink(self, name: str, keys: list[str] | None = None) -> int:
        body = {"keys": keys} if keys else None
        result: int = self.request("POST", f"/api/v1/sinks/{segment(name)}/retry", json=body)[
            "requeued"
        ]
        return result


def _glimpse(text: str) -> str:
    """The start of an answer, on one line, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 120 else flat[:117] + "..."

"""One HTTP request per change: POST the JSON document, classify the answer.

Only the configured answers count as delivered (HTTP 200, or any 2xx); a body that
is not JSON still counts (the partner has the document). Redirects are never
followed: the document goes only where the sink was told to send it. Everything
else (other statuses, timeouts, resets, refused connections) is retried.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from dataferry.sinks.model import Outcome

USER_AGENT = "dataferry-sink/1"


def client(concurrency: int, timeout: float) -> httpx.Client:
    """A keep-alive connection pool sized for ``concurrency`` requests at once."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        headers={"User-Agent": USER_AGENT},
    )


def encode(document: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN or Infinity would make the body invalid JSON (ValueError).
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def send(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    accept: str,
) -> Outcome:
    try:
        response = http.post(
            url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    except httpx.TimeoutException as exc:
        return Outcome(False, None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"connection error: {type(exc).__name__}: {exc}")
    code = response.status_code
    if code == 200 or (accept == "2xx" and 200 <= code < 300):
        return Outcome(True, code)
    if 300 <= code < 400:
        where = response.headers.get("location", "?")
        return Outcome(False, code, f"HTTP {code} redirect to {where} not followed")
    text = response.text[:300].strip().replace("\n", " ")
    return Outcome(False, code, f"HTTP {code}: {text}" if text else f"HTTP {code}")

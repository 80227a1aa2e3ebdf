"""The dashboard over plain HTTP as a browser without JavaScript uses it: a client that
keeps the session cookie, and the CSRF token a page carries."""

from __future__ import annotations

import re

import httpx


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)">', html)
    assert m and m.group(1), "page carries a CSRF token"
    return m.group(1)


class Browser(httpx.Client):
    """Keeps the session cookie like a browser on loopback does: httpx's cookie jar
    would not send a ``Secure`` cookie over plain HTTP, Chromium does to 127.0.0.1.
    Event hooks see every request and response, a followed redirect's too, so the
    page a form action redirects to is fetched in the same session."""

    def __init__(self, url: str, follow_redirects: bool = False) -> None:
        super().__init__(
            base_url=url,
            headers={"Accept": "text/html"},
            timeout=30,
            follow_redirects=follow_redirects,
            event_hooks={"request": [self._send_session], "response": [self._keep_session]},
        )
        self.session = ""

    def _send_session(self, request: httpx.Request) -> None:
        if self.session:
            request.headers["Cookie"] = f"dataferry_session={self.session}"

    def _keep_session(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name == "dataferry_session":
                self.session = rest.split(";", 1)[0]
        self.cookies.clear()

"""uvicorn's httptools protocol, handing each received body chunk on as it arrived.

uvicorn gathers a request's body chunks in a bytearray and gives the app a bytes copy
of it: two copies of every byte received, which a peer upload of a gigabyte pays in
CPU. Here a chunk that arrives while none is waiting for the app is kept as the bytes
object it is, and uvicorn's ``receive`` passes it on unchanged (``bytes(b)`` is ``b``);
chunks that pile up are joined by uvicorn as before."""

from __future__ import annotations

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class BodyProtocol(HttpToolsProtocol):
    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            super().on_body(body)
            return
        cycle.body = body  # type: ignore[assignment]  # read by receive() as bytes(body)
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

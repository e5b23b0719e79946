"""`python -m bench.standin --port P --latency-ms 50`: a cheap stand-in for Real Geeks' Incoming
Leads API, so a delivery benchmark measures the portal's cost and not RG's.

It answers every request under /rest/ (and /v2/rest/) after a fixed latency: 201 `{}` to a
create (`POST .../leads`, `POST .../potential-seller-leads`), `[]` to the users list and 200 `{}`
to anything else, as RG does. It never looks at credentials. One process, one asyncio event loop,
HTTP/1.1 with keep-alive, no framework: a request costs a parse of its head, a timer and a
write, tens of microseconds of CPU. The latency is a timer, not a sleeping coroutine or thread,
so thousands of answers can wait at once for next to nothing.

It keeps a record of every request it answered, for the benchmarks to read back over HTTP:

    GET  /__stats                 counts, requests in flight now and at the peak, connections
    GET  /__requests?offset=N     [[arrival, answered, method, lead id], ...] from the N-th on
                                  (wall-clock seconds; the lead id is the JSON body's `id` of a
                                  create, or the path's lead id of an update or activities)
    POST /__reset                 forget every record and count

Standard library only, so the process starts fast and carries no Django.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import parse_qs, urlsplit

MAX_HEAD_BYTES = 64 * 1024
CREATE_PATH = re.compile(rb"/sites/[^/]+/(leads|potential-seller-leads)/?$")
LEAD_IN_PATH = re.compile(rb"/sites/[^/]+/leads/([^/?]+)")
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


@dataclass
class Record:
    arrival: float
    answered: float
    method: bytes
    path: bytes
    body: bytes  # kept raw; parsed only when the records are read, after the measured run

    def lead_id(self) -> Optional[str]:
        match = LEAD_IN_PATH.search(self.path)
        if match:
            return match.group(1).decode("ascii", "replace")
        if self.body:
            try:
                data = json.loads(self.body)
            except ValueError:
                return None
            if isinstance(data, dict) and isinstance(data.get("id"), str):
                return data["id"]
        return None


@dataclass
class Stats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    connections: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    # Sum over answered requests of (answered - arrival): divided by a time window, the mean
    # number in flight over it (Little's law).
    busy_seconds: float = 0.0
    records: list[Record] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "started": self.started,
            "requests": self.requests,
            "connections": self.connections,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "busy_seconds": self.busy_seconds,
            "first_arrival": self.records[0].arrival if self.records else None,
            "last_answered": self.records[-1].answered if self.records else None,
        }


def response(status: int, body: bytes, *, close: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{'Connection: close' if close else 'Keep-Alive: timeout=60'}\r\n\r\n"
    )
    return head.encode("ascii") + body


class Connection(asyncio.Protocol):
    """One client connection: requests are parsed as bytes arrive; each answer is written when
    its timer fires, in request order (a client that pipelines gets them in order too)."""

    def __init__(self, server: StandIn) -> None:
        self.server = server
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.pending: deque[list[object]] = deque()  # [ready, bytes, close] per request, in order
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.stats.connections += 1

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.closing:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._fail(400)
                return
            head = bytes(self.buffer[:end])
            lines = head.split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self._fail(400)
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                self._fail(501)  # no client the benchmarks use sends a chunked body
                return
            length = int(headers.get(b"content-length", b"0") or 0)
            if len(self.buffer) < end + 4 + length:
                if headers.get(b"expect", b"").lower() == b"100-continue" and len(self.buffer) == end + 4:
                    assert self.transport is not None
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            connection = headers.get(b"connection", b"").lower()
            close = connection == b"close" or (version == b"HTTP/1.0" and connection != b"keep-alive")
            self._handle(method, target, body, close)
            if close:
                self.closing = True

    def _handle(self, method: bytes, target: bytes, body: bytes, close: bool) -> None:
        path = target.split(b"?", 1)[0]
        if path.startswith(b"/__"):
            status, payload = self.server.control(method, target)
            self._queue(status, payload, close, delay=0.0, record=None)
            return
        if not (path.startswith(b"/rest/") or path.startswith(b"/v2/rest/")):
            self._queue(404, b'{"error": "Not found."}', close, delay=0.0, record=None)
            return
        if method == b"POST" and CREATE_PATH.search(path):
            status, payload = 201, b"{}"
        elif method == b"GET" and path.rstrip(b"/").endswith(b"/users"):
            status, payload = 200, b"[]"
        else:
            status, payload = 200, b"{}"
        stats = self.server.stats
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        record = Record(time.time(), 0.0, method, path, body if method == b"POST" else b"")
        self._queue(status, payload, close, delay=self.server.latency, record=record)

    def _queue(self, status: int, payload: bytes, close: bool, *, delay: float, record: Optional[Record]) -> None:
        entry: list[object] = [False, response(status, payload, close=close), close]
        self.pending.append(entry)
        loop = asyncio.get_running_loop()
        if delay > 0:
            loop.call_later(delay, self._ready, entry, record)
        else:
            self._ready(entry, record)

    def _ready(self, entry: list[object], record: Optional[Record]) -> None:
        entry[0] = True
        if record is not None:
            stats = self.server.stats
            record.answered = time.time()
            stats.in_flight -= 1
            stats.requests += 1
            stats.busy_seconds += record.answered - record.arrival
            stats.records.append(record)
        while self.pending and self.pending[0][0]:
            _, data, close = self.pending.popleft()
            if self.transport is None:
                continue  # the client went away; the answer is still counted as given
            assert isinstance(data, bytes)
            self.transport.write(data)
            if close:
                self.transport.close()

    def _fail(self, status: int) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.write(response(status, b'{"error": "Bad request."}', close=True))
            self.transport.close()


class StandIn:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.stats = Stats()

    def control(self, method: bytes, target: bytes) -> tuple[int, bytes]:
        """The /__ endpoints: the benchmarks reading what arrived, and starting afresh."""
        parts = urlsplit(target.decode("ascii", "replace"))
        if parts.path == "/__stats":
            return 200, json.dumps(self.stats.as_json()).encode()
        if parts.path == "/__requests":
            offset = int(parse_qs(parts.query).get("offset", ["0"])[0])
            rows = [
                [r.arrival, r.answered, r.method.decode("ascii", "replace"), r.lead_id()]
                for r in self.stats.records[offset:]
            ]
            return 200, json.dumps(rows).encode()
        if parts.path == "/__reset" and method == b"POST":
            in_flight = self.stats.in_flight
            self.stats = Stats(in_flight=in_flight)
            return 200, b"{}"
        return 404, b'{"error": "Not found."}'


async def serve(host: str, port: int, latency: float) -> None:
    standin = StandIn(latency)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(standin), host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"standin: answering on http://{host}:{port}/rest after {latency * 1000:g} ms", flush=True)
    async with server:
        await stop.wait()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.latency_ms / 1000))


if __name__ == "__main__":
    main()

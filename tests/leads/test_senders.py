"""Both senders (asyncio over aiohttp, threads over requests) against a real HTTP server on
loopback: what each answer means, timeouts, refused connections, many calls in flight at once,
and a keep-alive connection the server closed under a request, retried once at once."""

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from leads import realgeeks
from tests.integration.servers import free_port

CREDS_PASSWORD = "rg-secret-pw"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as RG's servers

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        server: RgServer = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests_here = getattr(self, "requests_here", 0) + 1
        if server.drop_reused and self.requests_here > 1:
            # The keep-alive race: the server gave up on the idle connection as the request came.
            self.close_connection = True
            return
        with server.lock:
            server.received.append((self.path, dict(self.headers), body))
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        time.sleep(server.delay)
        with server.lock:
            server.in_flight -= 1
        status, headers, text = server.answer
        payload = text.encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_PATCH = do_POST


class RgServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 would make many callers wait a SYN retry

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), Handler)
        self.lock = threading.Lock()
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.answer: tuple[int, dict[str, str], str] = (201, {"Content-Type": "application/json"}, "{}")
        self.delay = 0.0
        self.drop_reused = False
        self.in_flight = self.most_in_flight = 0

    def call(self, path: str = "/rest/sites/s/leads", body: bytes = b'{"id": "1"}') -> realgeeks.Call:
        creds = realgeeks.Credentials(f"http://127.0.0.1:{self.server_address[1]}/rest", "acme", CREDS_PASSWORD)
        return realgeeks.Call(creds, realgeeks.Endpoint("POST", creds.base_url + path[len("/rest") :]), body)


@pytest.fixture
def server() -> Iterator[RgServer]:
    rg = RgServer()
    thread = threading.Thread(target=rg.serve_forever, daemon=True)
    thread.start()
    yield rg
    rg.shutdown()
    rg.server_close()


@pytest.fixture(params=["asyncio", "threads"])
def sender(request, settings) -> Iterator[Any]:
    settings.REALGEEKS_READ_TIMEOUT = 0.5
    made = realgeeks.sender_new(request.param, 64)
    yield made
    made.close()


def send(sender: Any, call: realgeeks.Call) -> realgeeks.Outcome:
    return sender.submit(call).result(timeout=10)


def test_a_2xx_is_a_reply_and_the_request_is_sent_as_stored(server, sender):
    outcome = send(sender, server.call(body=b'{"id": "1", "email": "jack@gmail.com"}'))

    assert outcome.error is None and outcome.reply == realgeeks.Reply(201, "{}")
    path, headers, body = server.received[0]
    assert (path, body) == ("/rest/sites/s/leads", b'{"id": "1", "email": "jack@gmail.com"}')
    assert headers["Content-Type"] == realgeeks.JSON_CONTENT_TYPE
    assert headers["Authorization"] == "Basic " + base64.b64encode(f"acme:{CREDS_PASSWORD}".encode()).decode()
    assert headers["User-Agent"] == realgeeks.USER_AGENT


def test_an_html_503_is_a_retryable_error_with_its_title(server, sender):
    server.answer = (503, {"Content-Type": "text/html"}, "<html><title>Down for maintenance</title></html>")

    error = send(sender, server.call()).error

    assert error is not None and (error.status, error.permanent) == (503, False)
    assert error.message == "Real Geeks answered 503: Down for maintenance"


def test_a_422_is_permanent_and_keeps_rgs_message(server, sender):
    server.answer = (422, {}, json.dumps({"error": "Field 'email' is not valid."}))

    error = send(sender, server.call()).error

    assert error is not None and (error.status, error.permanent) == (422, True)
    assert error.message == "Real Geeks answered 422: Field 'email' is not valid."


def test_a_429_carries_its_retry_after(server, sender):
    server.answer = (429, {"Retry-After": "7"}, "{}")

    error = send(sender, server.call()).error

    assert error is not None and (error.status, error.retry_after) == (429, 7.0)


def test_no_answer_within_the_read_timeout_is_a_timeout(server, sender):
    server.delay = 1.5

    outcome = send(sender, server.call())

    assert outcome.error is not None and outcome.error.message == "Real Geeks did not answer within 0.5 s"
    assert outcome.error.status is None and not outcome.error.permanent


def test_a_refused_connection_says_so_without_the_url_or_password(sender):
    port = free_port()  # nothing listens there
    creds = realgeeks.Credentials(f"http://127.0.0.1:{port}/rest", "acme", CREDS_PASSWORD)
    call = realgeeks.Call(creds, realgeeks.Endpoint("POST", f"http://127.0.0.1:{port}/rest/sites/s/leads"), b"{}")

    error = send(sender, call).error

    assert error is not None and error.message.startswith("Could not reach Real Geeks (")
    assert str(port) not in error.message and CREDS_PASSWORD not in error.message


def test_a_keep_alive_connection_closed_under_a_request_is_retried_at_once(server, sender):
    assert send(sender, server.call()).error is None  # leaves a pooled connection
    server.drop_reused = True

    outcome = send(sender, server.call(body=b'{"id": "2"}'))

    assert outcome.error is None and outcome.reply is not None and outcome.reply.status == 201
    assert [body for _, _, body in server.received] == [b'{"id": "1"}', b'{"id": "2"}']


def test_many_calls_are_in_flight_at_once(server, sender, settings):
    settings.REALGEEKS_READ_TIMEOUT = 10  # a slow machine must not turn this into a timeout test
    server.delay = 0.3

    futures = [sender.submit(server.call(body=json.dumps({"id": str(n)}).encode())) for n in range(40)]
    outcomes = [future.result(timeout=20) for future in futures]

    assert all(outcome.error is None for outcome in outcomes)
    assert server.most_in_flight >= 20

"""Partner-chosen URLs cannot reach the portal's own network in production, and what goes out
carries no credentials. Real sockets on 127.0.0.1: the check is made on the connected socket."""

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from alerts import outbound, sending
from alerts.incidents import incidents_evaluate
from alerts.models import Channel, Incident, NotificationAttempt
from grants.models import Site
from tests.alerts.conftest import channel, later


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records each request; answers with the class's `status` (and a Location for redirects)."""

    status = 200
    requests: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append((dict(self.headers), body))
        self.send_response(self.status)
        if 300 <= self.status < 400:
            self.send_header("Location", "http://10.0.0.5/internal")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"requests": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def production_rules(settings):
    settings.ALERTS_ALLOW_LOCAL_URLS = False


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://hooks.example.com/x", "Use https"),
        ("https://user:password@hooks.example.com/x", "Leave user names and passwords out"),
        ("https://127.0.0.1/x", "is not a public address"),
        ("https://10.0.0.5/x", "is not a public address"),
        ("https://[::1]/x", "is not a public address"),
        ("https://[::ffff:192.168.1.1]/x", "is not a public address"),
        ("https://169.254.169.254/latest/meta-data", "is not a public address"),
        ("https://localhost/x", "names a local or internal host"),
        ("https://db.internal/x", "names a local or internal host"),
        ("https://hooks.example.com:0/x", "port"),
        ("https://hooks.example.com/a b", "plain ASCII"),
        ("ftp://hooks.example.com/x", "starting with https://"),
    ],
)
def test_production_refuses_urls_that_could_reach_inside(production_rules, url, problem):
    assert problem in (outbound.url_refusal(url) or "")


def test_production_accepts_a_public_https_url(production_rules):
    assert outbound.url_refusal("https://hooks.slack.com/services/T000/B000/XXXX") is None
    assert outbound.url_refusal("https://93.184.216.34:8443/hook") is None


def test_development_allows_http_to_loopback_for_local_receivers():
    assert outbound.url_refusal("http://127.0.0.1:8999/hook") is None


def test_a_name_that_resolves_to_a_private_address_is_refused_when_it_connects(production_rules, receiver, monkeypatch):
    port, handler = receiver
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):  # a public-looking name whose DNS answers 127.0.0.1
        return real_getaddrinfo("127.0.0.1" if host == "hooks.example.com" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(outbound.AddressRefused, match=r"127\.0\.0\.1 is not a public address"):
        outbound.post(f"https://hooks.example.com:{port}/hook", body=b"{}", headers={})
    assert handler.requests == []


def test_a_refused_connection_is_a_failed_attempt_saying_why(production_rules, receiver, site, monkeypatch):
    port, handler = receiver
    # Written before the rules tightened (or straight into the database): refused at send time.
    Channel.objects.create(partner=site.partner, kind="slack", name="old", target=f"http://127.0.0.1:{port}/hook")
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=later(0))
    incidents_evaluate(rules=[Incident.Rule.CIRCUIT_OPEN], now=later(0))
    sending.notifications_send(now=later(0))
    assert NotificationAttempt.objects.get().error.startswith("URL refused: Use https")
    assert handler.requests == []


def test_notices_carry_no_credentials_and_redirects_are_not_followed(receiver, site):
    port, handler = receiver
    handler.status = 302
    channel(site.partner, Channel.Kind.WEBHOOK, f"http://127.0.0.1:{port}/hook")
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=later(0))
    incidents_evaluate(rules=[Incident.Rule.CIRCUIT_OPEN], now=later(0))
    sending.notifications_send(now=later(0))
    ((headers, body),) = handler.requests  # the redirect to 10.0.0.5 was not followed
    assert not {name.lower() for name in headers} & {"authorization", "cookie", "proxy-authorization"}
    assert "rg-password-acme" not in body.decode() + str(headers)
    assert headers["User-Agent"] == outbound.USER_AGENT
    attempt = NotificationAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("failed", 302, "HTTP 302")

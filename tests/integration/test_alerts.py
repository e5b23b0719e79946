"""Alerts for real: gunicorn, a Celery worker and beat, PostgreSQL, Redis, the sandbox as RG, and
three channels of a partner: email, a Slack-style receiver and a signed-webhook receiver, the two
receivers being small HTTP servers here on 127.0.0.1.

The worker sends the email, in another process than this test's, so Django's test outbox cannot
see it: the stack's EMAIL_BACKEND is Django's file-based one, and the test reads the files it
writes (one per message sent)."""

import email
import http.server
import json
import threading
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
import standardwebhooks

from tests.integration.servers import PortalStack, wait_for
from tests.integration.test_pipeline import FAST, RG_PASSWORD, SITE, Pipeline, new_lead

pytestmark = pytest.mark.integration

ALERTS = {
    **FAST,
    "DELIVERY_CIRCUIT_FAILURES": "3",
    "DELIVERY_CIRCUIT_COOLDOWN_SECONDS": "2",
    "ALERTS_EVALUATE_SECONDS": "1",
    "ALERTS_RATE_LIMIT_MINUTES": "10",
    "ALERTS_NOTIFY_RETRY_SECONDS": "1",
    "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
}


# One manage.py process instead of seven (each costs seconds to start): the partner, its key,
# its sandbox account and granted site, as Pipeline makes them, then its three channels.
SETUP = """
import io
from django.core.management import call_command

def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().split()

slug = run("add_partner", "--name", "Alerts", "--rg-username", "alerts", "--rg-password", "{password}",
           "--webhook-secret", "whsec-alerts")[-1]
key = run("add_api_key", slug)[-1]
run("sandbox_account", "--username", "alerts", "--password", "{password}", "--site", "{site}")
run("grant_site", slug, "{site}")
run("add_alert_channel", slug, "--name", "Ops email", "--kind", "email", "--target", "ops@alerts.example")
run("add_alert_channel", slug, "--name", "Ops Slack", "--kind", "slack", "--target", "{slack}")
secret = run("add_alert_channel", slug, "--name", "Ops hook", "--kind", "webhook", "--target", "{webhook}")[-1]
print(slug, key, secret)
"""


class AlertsPipeline(Pipeline):
    """Pipeline's partner, key and granted site, plus an email, a Slack and a signed-webhook channel."""

    def __init__(self, stack: PortalStack, *, slack_url: str, webhook_url: str) -> None:
        self.stack = stack
        script = SETUP.format(password=RG_PASSWORD, site=SITE, slack=slack_url, webhook=webhook_url)
        self.slug, key, self.webhook_secret = stack.manage("shell", "-c", script).split()[-3:]
        self.key_id, self.secret = key.split(":", 1)


class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST (headers, body) and answers 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.calls]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    slack, webhook = Receiver(), Receiver()
    yield slack, webhook
    for server in (slack, webhook):
        server.shutdown()
        server.server_close()


def emails(folder: Path) -> list[Message]:
    """Every message the file-based backend wrote, oldest first (it separates them with dashes)."""
    messages = []
    for path in sorted(folder.glob("*.log")):
        for part in path.read_text().split("-" * 79):
            if part.strip():
                messages.append(email.message_from_string(part.strip()))
    return messages


def test_an_outage_notifies_each_channel_once_recovery_once_and_a_second_outage_within_the_limit_not_at_all(
    portal_stack, receivers, tmp_path
):
    slack, webhook = receivers
    mail_folder = tmp_path / "mail"
    stack = portal_stack(beat=True, env={**ALERTS, "EMAIL_FILE_PATH": str(mail_folder)}, concurrency=3)
    pipeline = AlertsPipeline(stack, slack_url=slack.url, webhook_url=webhook.url)
    secret = pipeline.webhook_secret

    def counts() -> tuple[int, int, int]:
        return len(emails(mail_folder)), len(slack.calls), len(webhook.calls)

    def outage() -> None:
        pipeline.faults("--outage", "--forever")
        for _ in range(4):  # one at a time, so the first failures open the circuit
            assert pipeline.push(f"/rest/sites/{SITE}/leads", new_lead()).status_code == 201

    def incidents() -> list[tuple[bool, bool]]:
        """(resolved, announced) of each circuit incident, oldest first."""
        return stack.sql(
            "SELECT resolved_at IS NOT NULL, announced FROM alerts_incident WHERE rule = 'circuit_open' ORDER BY id"
        )

    outage()
    wait_for(lambda: counts() == (1, 1, 1), timeout=30, what="one notice per channel for the opened circuit")
    (opened,) = emails(mail_folder)
    assert opened["To"] == "ops@alerts.example"
    assert "circuit is open" in opened["Subject"]
    assert "circuit is open" in slack.bodies()[0]["text"]
    headers, body = webhook.calls[0]
    payload = standardwebhooks.Webhook(secret).verify(body, headers)
    assert payload["type"] == "incident.opened"
    assert (payload["data"]["partner"], payload["data"]["subject"]) == (pipeline.slug, SITE)

    pipeline.faults()  # RG recovers: a probe closes the circuit
    wait_for(lambda: counts() == (2, 2, 2), timeout=30, what="one recovery notice per channel")
    assert emails(mail_folder)[1]["Subject"].startswith("[Partner Portal] Resolved: ")
    assert slack.bodies()[1]["text"].startswith("Resolved after ")
    headers, body = webhook.calls[1]
    assert standardwebhooks.Webhook(secret).verify(body, headers)["type"] == "incident.recovered"
    assert incidents() == [(True, True)]

    outage()  # again, well within ALERTS_RATE_LIMIT_MINUTES of the recovery notice
    wait_for(lambda: len(incidents()) == 2, timeout=30, what="the second outage's incident")
    pipeline.faults()
    wait_for(lambda: incidents()[1][0], timeout=30, what="the second incident to resolve")
    time.sleep(3)  # a few more evaluations and sends: nothing may go out about the second incident
    assert counts() == (2, 2, 2)
    assert stack.sql("SELECT count(*) FROM alerts_notification") == [(6,)]
    assert incidents() == [(True, True), (True, False)]

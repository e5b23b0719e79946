"""A create's X-ROUTER-DESTINATIONS goes to RG with the delivery: from the stored row, through the
claim's prepared call, out of both senders. RG is mocked at the HTTP edge only: `responses` for
the pump (thread sender), a real loopback server for each sender."""

import json
import uuid

import pytest

from leads import delivery as outbox
from leads import engine, realgeeks
from leads.models import Delivery
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID, run_tasks_inline
from tests.leads.test_senders import RgServer, send, sender, server  # noqa: F401 (fixtures)

HEADER = "X-ROUTER-DESTINATIONS"


@pytest.fixture
def queued_not_sent(monkeypatch):
    """Pushes only queue their deliveries here; each test runs the claim or the pump itself."""
    monkeypatch.setattr("leads.queue.pump_hint", lambda **kwargs: False)
    run_tasks_inline(False)
    yield
    run_tasks_inline(True)


def create(partner, email: str, router_destinations: str = "") -> Delivery:
    delivery = lead_submit(
        partner=partner, site_uuid=SITE_UUID, operation="create_lead", data={"source": "Zillow", "email": email}
    )
    # Set on the row as the push path stores it, so these tests need only the stored field.
    Delivery.objects.filter(pk=delivery.pk).update(router_destinations=router_destinations)
    return delivery


def test_both_senders_send_a_calls_own_headers_beside_theirs(server, sender):  # noqa: F811
    plain = server.call(body=b'{"id": "1"}')
    headers = realgeeks.delivery_headers(router_destinations="a,b")
    call = realgeeks.Call(plain.creds, plain.endpoint, plain.body, headers)

    outcome = send(sender, call)

    assert outcome.error is None
    _, headers, body = server.received[0]
    assert headers[HEADER] == "a,b"
    assert body == b'{"id": "1"}'
    assert headers["Content-Type"] == realgeeks.JSON_CONTENT_TYPE
    assert headers["Authorization"].startswith("Basic ")


def test_a_call_without_destinations_sends_no_such_header(server, sender):  # noqa: F811
    assert send(sender, server.call()).error is None

    _, headers, _ = server.received[0]
    assert HEADER.lower() not in {name.lower() for name in headers}


@pytest.mark.django_db
def test_a_claim_prepares_the_call_with_the_stored_destinations(partner, site, queued_not_sent):
    with_them = create(partner, "jack@gmail.com", "buyers-team,crm")
    without = create(partner, "kai@example.com")

    claimed = outbox.deliveries_claim(slots=8, token=uuid.uuid4(), credentials_for=engine.Pump().credentials_for)

    headers = {c.delivery_id: c.call.headers for c in claimed}
    assert headers == {with_them.pk: ((HEADER, "buyers-team,crm"),), without.pk: ()}


@pytest.mark.django_db
def test_a_pump_forwards_the_destinations_to_rg_only_for_the_delivery_that_has_them(partner, site, rg, queued_not_sent):
    with_them = create(partner, "jack@gmail.com", "buyers-team,crm")
    without = create(partner, "kai@example.com")

    result = engine.pump_run(budget_seconds=10, idle_seconds=0)

    assert result.statuses == {"delivered": 2}
    sent = {json.loads(call.request.body)["id"]: call.request.headers.get(HEADER) for call in rg.mock.calls}
    assert sent == {str(with_them.lead.lead_id): "buyers-team,crm", str(without.lead.lead_id): None}

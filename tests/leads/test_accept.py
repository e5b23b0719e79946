"""The lean accept path: few statements per push, idempotent repeats, bounded leads, and the
lead's sequence counter and summary kept right without reading its deliveries."""

import json
import uuid

import pytest
from django.test import Client

from grants.models import Site
from leads.models import Delivery, Lead, Operation
from leads.services import lead_push
from tests.leads.conftest import SITE_UUID, run_tasks_inline

pytestmark = pytest.mark.django_db

LEAD_ID = "7d0c6a52-3f1e-4b8a-9c2d-5e6f7a8b9c0d"
JACK = {"id": LEAD_ID, "source": "Zillow", "email": "jack@gmail.com", "first_name": "Jack", "last_name": "Johnson"}
CREATE = f"/rest/sites/{SITE_UUID}/leads"
UPDATE = f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}"
ACTIVITIES = f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}/activities"


def send(client: Client, path: str, body: object, method: str = "post", **headers: str):
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def queued(settings):
    """Deliveries stay queued (no inline pump), so a push's own statements are all that run."""
    run_tasks_inline(False)
    settings.CELERY_TASK_ALWAYS_EAGER = False


# Statement budgets on SQLite inside the test's transaction: the read, then the lead's and the
# delivery's statements between a SAVEPOINT and its RELEASE. On PostgreSQL the write is one
# statement and no transaction (tests/integration/test_accept_postgresql.py pins 2).
SQLITE_PUSH_STATEMENTS = 5


def test_a_create_runs_a_fixed_few_statements_once_the_key_is_known(push, site, queued, django_assert_max_num_queries):
    send(push, CREATE, {**JACK, "id": str(uuid.uuid4())})  # the key is read and cached

    with django_assert_max_num_queries(SQLITE_PUSH_STATEMENTS):
        assert send(push, CREATE, JACK).status_code == 201


def test_an_update_and_an_activities_push_run_the_same_few_statements(
    push, site, queued, django_assert_max_num_queries
):
    send(push, CREATE, JACK)

    with django_assert_max_num_queries(SQLITE_PUSH_STATEMENTS):
        assert send(push, UPDATE, {"notes": "Call at 5"}, "patch").status_code == 200
    with django_assert_max_num_queries(SQLITE_PUSH_STATEMENTS):
        assert send(push, ACTIVITIES, [{"type": "visited"}]).status_code == 200


def test_the_same_create_again_is_answered_alike_and_makes_no_second_delivery(push, site, queued):
    first = send(push, CREATE, JACK)
    again = send(push, CREATE, JACK)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert Delivery.objects.count() == 1


def test_a_changed_body_is_a_new_delivery(push, site, queued):
    send(push, CREATE, JACK)
    changed = send(push, CREATE, {**JACK, "phone": "808-555-0199"})

    assert changed.status_code == 201 and "Idempotent-Replayed" not in changed
    assert list(Delivery.objects.values_list("sequence", flat=True)) == [1, 2]
    assert Lead.objects.get().phone == "808-555-0199"


def test_a_repeat_after_the_window_is_a_new_delivery(push, site, queued, settings):
    settings.PUSH_IDEMPOTENCY_SECONDS = 0
    send(push, CREATE, JACK)
    send(push, CREATE, JACK)

    assert Delivery.objects.count() == 2


def test_an_idempotency_key_makes_one_delivery_even_for_leads_without_an_id(push, site, queued):
    body = {"source": "Zillow", "email": "noid@example.com"}

    first = send(push, CREATE, body, HTTP_IDEMPOTENCY_KEY="order-17")
    again = send(push, CREATE, body, HTTP_IDEMPOTENCY_KEY="order-17")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert (Delivery.objects.count(), Lead.objects.count()) == (1, 1)


def test_an_idempotency_key_reused_for_another_request_is_refused(push, site, queued):
    send(push, CREATE, JACK, HTTP_IDEMPOTENCY_KEY="k1")

    reused = send(push, UPDATE, {"notes": "different"}, "patch", HTTP_IDEMPOTENCY_KEY="k1")

    assert reused.status_code == 422
    assert "Idempotency-Key 'k1' was already used" in reused.json()["error"]
    assert Delivery.objects.count() == 1


def test_idempotency_keys_belong_to_their_api_key(push, site, queued, partner):
    from grants.services import api_key_issue
    from tests.leads.conftest import basic

    other_key, secret = api_key_issue(partner=partner, label="second product")
    other = Client(HTTP_AUTHORIZATION=basic(other_key.key_id, secret))

    send(push, CREATE, {"source": "A", "email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="same")
    send(other, CREATE, {"source": "B", "email": "b@example.com"}, HTTP_IDEMPOTENCY_KEY="same")

    assert Delivery.objects.count() == 2


@pytest.mark.parametrize("value", ["x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_idempotency_key_is_a_clear_400(push, site, queued, value):
    response = send(push, CREATE, JACK, HTTP_IDEMPOTENCY_KEY=value)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]
    assert not Delivery.objects.exists()


def test_a_request_over_the_activity_cap_is_refused_naming_the_limit(push, site, queued, settings):
    settings.PUSH_MAX_ACTIVITIES = 3
    send(push, CREATE, JACK)

    response = send(push, ACTIVITIES, [{"type": "visited"}] * 4)

    assert response.status_code == 422
    assert "at most 3 activities (PUSH_MAX_ACTIVITIES)" in response.json()["error"]
    assert Delivery.objects.count() == 1


def test_a_lead_over_its_lifetime_activity_cap_is_refused_and_nothing_is_stored(push, site, queued, settings):
    settings.LEAD_MAX_ACTIVITIES = 5
    send(push, CREATE, {**JACK, "activities": [{"type": "visited", "description": "1"}] * 3})
    send(push, ACTIVITIES, [{"type": "visited", "description": "2"}] * 2)

    refused = send(push, ACTIVITIES, [{"type": "visited", "description": "3"}])

    assert refused.status_code == 422
    assert "at most 5 activities (LEAD_MAX_ACTIVITIES)" in refused.json()["error"]
    lead = Lead.objects.get()
    assert (lead.activity_count, lead.last_sequence, Delivery.objects.count()) == (5, 2, 2)


def test_the_lead_keeps_its_latest_activities_and_every_one_stays_in_its_delivery(push, site, queued, settings):
    settings.LEAD_KEEP_ACTIVITIES = 2
    send(push, CREATE, {**JACK, "activities": [{"type": "note", "description": "first"}]})
    for text in ("second", "third"):
        send(push, ACTIVITIES, [{"type": "note", "description": text}])

    lead = Lead.objects.get()
    assert [a["description"] for a in lead.data["activities"]] == ["second", "third"]
    assert lead.activity_count == 3
    payloads = [d.payload for d in Delivery.objects.order_by("sequence")]
    sent = [a["description"] for p in payloads for a in (p if isinstance(p, list) else p["activities"])]
    assert sent == ["first", "second", "third"]


def test_the_sequence_counter_numbers_every_delivery_and_a_resend_continues_it(push, site, queued):
    from leads.services import lead_resend

    send(push, CREATE, JACK)
    send(push, UPDATE, {"notes": "one"}, "patch")
    lead_resend(lead=Lead.objects.get())
    send(push, ACTIVITIES, [{"type": "visited"}])

    assert list(Delivery.objects.order_by("sequence").values_list("sequence", flat=True)) == [1, 2, 3, 4]
    assert Lead.objects.get().last_sequence == 4


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Lead.Status.DELIVERED, Lead.Status.PENDING),
        (Lead.Status.CANCELLED, Lead.Status.PENDING),
        (Lead.Status.FAILED, Lead.Status.FAILED),
        (Lead.Status.HELD, Lead.Status.HELD),
        (Lead.Status.RETRYING, Lead.Status.RETRYING),
    ],
)
def test_a_new_delivery_sets_the_summary_the_deliveries_would_give(push, site, queued, before, after):
    send(push, CREATE, JACK)
    status = {
        Lead.Status.DELIVERED: Delivery.Status.DELIVERED,
        Lead.Status.CANCELLED: Delivery.Status.CANCELLED,
        Lead.Status.FAILED: Delivery.Status.FAILED,
        Lead.Status.HELD: Delivery.Status.HELD,
        Lead.Status.RETRYING: Delivery.Status.RETRYING,
    }[before]
    Delivery.objects.update(status=status, last_status_code=422 if before == Lead.Status.FAILED else None)
    lead = Lead.objects.get()
    lead.refresh_status()
    assert lead.status == before

    send(push, UPDATE, {"notes": "more"}, "patch")

    lead.refresh_from_db()
    summary = (lead.status, lead.last_status_code, lead.last_error)
    lead.refresh_status()  # what reading every delivery gives
    assert summary == (lead.status, lead.last_status_code, lead.last_error)
    assert lead.status == after


def test_a_push_that_lost_a_race_reads_again_and_keeps_both_changes(partner, site, queued, monkeypatch):
    """The write applies only if the lead's sequence is still the one read; a concurrent push
    in between makes it miss, and the second round merges onto the other push's state."""
    from leads import accept

    lead_push(partner=partner, site_uuid=SITE_UUID, operation=Operation.CREATE_LEAD, data=JACK)
    real_known = accept.known
    raced: list[bool] = []

    def known_then_raced(**kwargs):
        result = real_known(**kwargs)
        if not raced:
            raced.append(True)
            lead_push(
                partner=partner,
                site_uuid=SITE_UUID,
                operation=Operation.UPDATE_LEAD,
                data={"notes": "from the other push"},
                lead_id=uuid.UUID(LEAD_ID),
            )
        return result

    monkeypatch.setattr(accept, "known", known_then_raced)
    lead_push(
        partner=partner,
        site_uuid=SITE_UUID,
        operation=Operation.UPDATE_LEAD,
        data={"phone": "808-555-0100"},
        lead_id=uuid.UUID(LEAD_ID),
    )

    lead = Lead.objects.get()
    assert (lead.data["notes"], lead.data["phone"], lead.last_sequence) == ("from the other push", "808-555-0100", 3)
    assert sorted(Delivery.objects.values_list("sequence", flat=True)) == [1, 2, 3]


def test_an_unknown_site_is_created_pending_and_its_lead_held_as_before(push, partner, queued):
    other = uuid.uuid4()

    assert send(push, f"/rest/sites/{other}/leads", JACK).status_code == 201

    site = Site.objects.get(site_uuid=other)
    assert (site.status, site.source) == (Site.Status.PENDING, Site.Source.API)
    assert Lead.objects.get().site == site

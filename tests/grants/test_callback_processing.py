"""What processing a stored callback does: grants, revocations, inbound leads and agents."""

import uuid

import pytest

from grants import callbacks, destination, tasks
from grants.callbacks import (
    webhook_event_reprocess,
    webhook_events_hint,
    webhook_events_process,
    webhook_events_requeue,
)
from grants.destination import CallbackProblem
from grants.models import InboundLead, Site, SiteAgent, WebhookEvent
from grants.services import site_grant, site_mark_doubtful
from tests.grants.conftest import LEAD_ID, SITE_UUID, stored

T0 = "2026-11-03T17:59:59+00:00"
T1 = "2026-11-03T18:00:00.000000001Z"
T2 = "2026-11-03T18:00:00.000000002Z"  # one nanosecond later: RG's resolution, finer than ours
T3 = "2026-11-03T18:05:00Z"


def test_integration_enabled_grants_the_site_keeping_partner_id_domain_and_evidence(rg, partner, granted_sites):
    rg.send("integration_enabled", site_uuid=str(SITE_UUID), partner_id="acme-partner-id", site_domain="aloha.example")
    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    assert (site.status, site.source) == (Site.Status.ACTIVE, Site.Source.CALLBACK)
    assert (site.rg_partner_id, site.domain) == ("acme-partner-id", "aloha.example")
    change = site.status_changes.get()
    assert change.webhook_event == WebhookEvent.objects.get()
    assert change.to_status == Site.Status.ACTIVE
    assert [s.site_uuid for s in granted_sites] == [SITE_UUID]


def test_a_partner_id_that_differs_from_the_partners_still_grants_and_says_so(rg, partner):
    rg.send("integration_enabled", site_uuid=str(SITE_UUID), partner_id="someone-else")
    assert Site.objects.get(site_uuid=SITE_UUID).status == Site.Status.ACTIVE
    assert "someone-else" in WebhookEvent.objects.get().error


def test_integration_enabled_makes_a_doubtful_site_active_again(rg, partner, granted_sites):
    site = site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    site_mark_doubtful(site=site, note="RG answered 401")
    granted_sites.clear()
    rg.send("integration_enabled", site_uuid=str(SITE_UUID))
    site.refresh_from_db()
    assert site.status == Site.Status.ACTIVE
    assert len(granted_sites) == 1


def test_integration_disabled_revokes_the_site_with_its_evidence(rg, partner):
    rg.send("integration_enabled", timestamp=T1, site_uuid=str(SITE_UUID))
    rg.send("integration_disabled", timestamp=T2, site_uuid=str(SITE_UUID))
    site = Site.objects.get(site_uuid=SITE_UUID)
    assert site.status == Site.Status.REVOKED
    revoked = site.status_changes.first()
    assert revoked is not None and revoked.webhook_event is not None
    assert revoked.webhook_event.action == "integration_disabled"


def test_an_older_integration_enabled_arriving_late_does_not_undo_a_newer_revocation(rg, partner, granted_sites):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    granted_sites.clear()
    rg.send("integration_disabled", timestamp=T2, site_uuid=str(SITE_UUID))
    rg.send("integration_enabled", timestamp=T1, site_uuid=str(SITE_UUID))
    assert Site.objects.get(site_uuid=SITE_UUID).status == Site.Status.REVOKED
    late = WebhookEvent.objects.get(action="integration_enabled")
    assert late.state == WebhookEvent.State.IGNORED
    assert granted_sites == []


def test_integration_disabled_for_an_unknown_site_changes_nothing(rg):
    rg.send("integration_disabled", site_uuid=str(SITE_UUID))
    assert not Site.objects.exists()
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED


def test_integration_enabled_without_a_site_uuid_fails_and_says_why(rg):
    rg.send("integration_enabled", site_uuid="not-a-uuid")
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts) == (WebhookEvent.State.FAILED, 1)
    assert event.error == "integration_enabled without a valid site_uuid."
    assert not Site.objects.exists()


def test_lead_events_build_the_latest_state_of_the_lead(rg, partner):
    lead = str(LEAD_ID).replace("-", "")  # RG may drop the dashes
    rg.send(
        "created",
        timestamp=T1,
        id=lead,
        site_uuid=str(SITE_UUID),
        partner_id="acme-partner-id",
        first_name="Jack",
        email="jack@example.com",
        notes="Wants a lanai",
        activities=[{"type": "visited", "created": "2026-11-03T17:59:00Z"}],
    )
    rg.send("updated", timestamp=T2, id=lead, site_uuid=str(SITE_UUID), phone="808-123-1234", notes="")
    rg.send(
        "activity_added",
        timestamp=T3,
        id=lead,
        site_uuid=str(SITE_UUID),
        activities=[{"type": "note", "description": "Called", "created": "2026-11-03T18:04:00Z"}],
    )
    inbound = InboundLead.objects.get(partner=partner, site_uuid=SITE_UUID, lead_id=LEAD_ID)
    assert inbound.details == {
        "first_name": "Jack",
        "email": "jack@example.com",
        "phone": "808-123-1234",
    }
    assert [a["type"] for a in inbound.activities] == ["visited", "note"]
    assert inbound.last_event == WebhookEvent.objects.get(action="activity_added")


def test_an_older_update_arriving_late_never_overwrites_a_newer_one(rg, partner):
    common = {"id": str(LEAD_ID), "site_uuid": str(SITE_UUID)}
    rg.send("updated", timestamp=T2, phone="808-555-0002", **common)
    rg.send("created", timestamp=T1, phone="808-555-0001", first_name="Jack", email="old@example.com", **common)
    rg.send("updated", timestamp=T0, email="", **common)  # an older unset: the create's email stays
    inbound = InboundLead.objects.get(lead_id=LEAD_ID)
    assert inbound.details["phone"] == "808-555-0002"
    assert inbound.details["first_name"] == "Jack"
    assert inbound.details["email"] == "old@example.com"
    assert inbound.last_event is not None and inbound.last_event.timestamp_raw == T2


def test_activities_are_kept_once_and_in_time_order_whatever_order_they_arrive_in(rg):
    common = {"id": str(LEAD_ID), "site_uuid": str(SITE_UUID)}
    late = {"type": "note", "description": "second", "created": "2026-11-03T18:10:00Z"}
    early = {"type": "note", "description": "first", "created": "2026-11-03T18:01:00Z"}
    rg.send("activity_added", timestamp=T3, activities=[late], **common)
    rg.send("activity_added", timestamp=T1, activities=[early], **common)
    rg.send("activity_added", timestamp=T2, activities=[early, late], **common)  # RG resending both
    assert [a["description"] for a in InboundLead.objects.get().activities] == ["first", "second"]


@pytest.mark.parametrize("action", sorted(destination.POTENTIAL_SELLER_ACTIONS))
def test_a_potential_seller_is_kept_as_an_inbound_lead_marked_as_such(rg, action):
    activity = {"type": "property_viewed", "property": {"street_address": "123 Keolu Dr"}}
    rg.send(action, id=str(LEAD_ID), site_uuid=str(SITE_UUID), activities=[activity])
    inbound = InboundLead.objects.get()
    assert inbound.is_potential_seller
    assert inbound.activities == [activity]


def test_agents_are_kept_from_user_updated_and_marked_by_user_deleted(rg, partner):
    user = {"id": "14187", "role": "Agent", "name": "Kalani Akana", "email": "kalani@example.com"}
    rg.send("user_updated", timestamp=T1, site_uuid=str(SITE_UUID), **user)
    rg.send("user_updated", timestamp=T1, site_uuid=str(SITE_UUID), user={**user, "id": "14188", "name": "Mele"})
    agent = SiteAgent.objects.get(partner=partner, site_uuid=SITE_UUID, user_id="14187")
    assert (agent.name, agent.email, agent.role, agent.is_deleted) == (
        "Kalani Akana",
        "kalani@example.com",
        "Agent",
        False,
    )
    assert SiteAgent.objects.get(user_id="14188").name == "Mele"

    rg.send("user_deleted", timestamp=T3, site_uuid=str(SITE_UUID), id="14187")
    rg.send("user_updated", timestamp=T2, site_uuid=str(SITE_UUID), **{**user, "name": "Stale Name"})
    agent.refresh_from_db()
    assert agent.is_deleted
    assert agent.name == "Kalani Akana"


def test_a_user_event_without_a_user_id_fails_and_says_why(rg):
    rg.send("user_deleted", site_uuid=str(SITE_UUID))
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == (WebhookEvent.State.FAILED, "user_deleted without a user id.")


def test_a_stored_callback_is_processed_once_however_often_processing_runs(rg):
    rg.send("created", id=str(LEAD_ID), site_uuid=str(SITE_UUID), first_name="Jack")
    event = WebhookEvent.objects.get()
    assert webhook_events_process() == 0
    event.refresh_from_db()
    assert event.attempts == 1


def test_an_ignored_callback_is_processed_by_reprocess_once_its_action_is_known(rg, monkeypatch):
    rg.send("seller_lead_created", id=str(LEAD_ID), site_uuid=str(SITE_UUID), activities=[{"type": "visited"}])
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.IGNORED

    # RG names its potential-seller action: the one list of such names grows.
    monkeypatch.setattr(destination, "POTENTIAL_SELLER_ACTIONS", frozenset({"seller_lead_created"}))
    monkeypatch.setattr(destination, "LEAD_ACTIONS", destination.LEAD_ACTIONS | {"seller_lead_created"})
    with rg.capture(execute=True):
        webhook_event_reprocess(event=event)
    event.refresh_from_db()
    assert (event.state, event.attempts, event.error) == (WebhookEvent.State.PROCESSED, 2, "")
    assert InboundLead.objects.get().is_potential_seller


def test_an_invalid_callback_cannot_be_reprocessed(rg):
    rg.post(b"not json", action="created")
    with pytest.raises(CallbackProblem, match="not a JSON object"):
        webhook_event_reprocess(event=WebhookEvent.objects.get())


def test_a_callback_whose_body_was_pruned_cannot_be_reprocessed(rg):
    from django.utils import timezone

    rg.send("integration_enabled", site_uuid=str(uuid.uuid4()))
    WebhookEvent.objects.update(body=b"(pruned after 90 days)", body_pruned_at=timezone.now())
    with pytest.raises(CallbackProblem, match="pruned"):
        webhook_event_reprocess(event=WebhookEvent.objects.get())


def test_a_claim_left_by_a_dead_worker_is_released_and_processed_again(rg, client):
    from datetime import UTC, datetime

    rg.send("integration_enabled", site_uuid=str(uuid.uuid4()))
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=event.pk).update(
        state=WebhookEvent.State.PROCESSING, claimed_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    with rg.capture(execute=True):
        assert webhook_events_requeue() == 1
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 2)


def test_processing_runs_through_every_received_callback_a_batch_at_a_time(partner, monkeypatch):
    monkeypatch.setattr(callbacks, "PROCESS_BATCH", 7)
    for _ in range(20):
        stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))

    assert webhook_events_process() == 20

    assert set(WebhookEvent.objects.values_list("state", "attempts")) == {(WebhookEvent.State.PROCESSED, 1)}


def test_a_run_out_of_time_leaves_the_rest_to_the_run_it_asks_for(partner, published, monkeypatch):
    monkeypatch.setattr(callbacks, "PROCESS_BATCH", 5)
    for _ in range(12):
        stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))

    assert webhook_events_process(budget_seconds=0) == 5

    assert published == ["webhook_events_process"]
    assert WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).count() == 7


def test_a_run_never_takes_events_another_run_has_claimed(partner):
    first = stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))
    WebhookEvent.objects.filter(pk=first).update(state=WebhookEvent.State.PROCESSING)  # another run's claim
    second = stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))

    assert webhook_events_process() == 1

    assert dict(WebhookEvent.objects.values_list("pk", "attempts")) == {first: 0, second: 1}


class LingeringClock:
    """The processing module's clock; while the run sleeps, another callback is stored, as one
    whose hint was throttled by the hint that started the run would be."""

    def __init__(self, partner) -> None:
        self.partner, self.now, self.slept = partner, 0.0, 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        stored(self.partner, "integration_disabled", site_uuid=str(uuid.uuid4()))
        self.now += seconds
        self.slept += seconds


def test_a_run_looks_once_more_a_hint_interval_after_it_started(partner, published, monkeypatch):
    monkeypatch.setattr(callbacks, "HINT_INTERVAL", 0.1)
    clock = LingeringClock(partner)
    monkeypatch.setattr(callbacks, "time", clock)
    stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))

    assert webhook_events_process() == 2

    assert clock.slept == pytest.approx(0.1)
    assert not WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).exists()


def test_a_web_process_asks_for_processing_at_most_once_per_hint_interval(published, monkeypatch):
    monkeypatch.setattr(callbacks, "HINT_INTERVAL", 60.0)

    assert webhook_events_hint() is True
    assert webhook_events_hint() is False  # the run the first hint starts will find this one's callback
    assert webhook_events_hint(force=True) is True
    assert published == ["webhook_events_process"] * 2


def test_a_hint_the_broker_refused_does_not_hold_back_the_next_one(published, monkeypatch):
    monkeypatch.setattr(callbacks, "HINT_INTERVAL", 60.0)
    refusals = iter([ConnectionRefusedError("broker down")])

    def delay() -> None:
        if next(refusals, None) is not None:
            raise ConnectionRefusedError("broker down")
        published.append("webhook_events_process")

    monkeypatch.setattr(tasks.webhook_events_process, "delay", delay)

    assert webhook_events_hint() is False  # refused: the callback waits for the next hint or the requeue
    assert webhook_events_hint() is True  # the broker is back: asked at once, not a minute later
    assert published == ["webhook_events_process"]


def test_a_task_message_from_before_batches_still_gets_its_event_processed(partner):
    event_id = stored(partner, "integration_disabled", site_uuid=str(uuid.uuid4()))

    tasks.webhook_event_process.delay(event_id)

    assert WebhookEvent.objects.get(pk=event_id).state == WebhookEvent.State.PROCESSED

"""Replays and unsigned headers (issue 11, item 1): the signature covers the body alone, so
the unsigned X-Lead-Router-Action and X-Lead-Router-Timestamp must never change what a signed
body means or let it shadow the events that follow."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from grants import destination
from grants.callbacks import webhook_event_reprocess
from grants.destination import CallbackProblem
from grants.models import Site, WebhookEvent
from grants.services import site_grant
from tests.grants.conftest import SITE_UUID, body_bytes

FUTURE = "2099-01-01T00:00:00Z"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def minutes_ago(minutes: float) -> str:
    return rfc3339(timezone.now() - timedelta(minutes=minutes))


def site_status() -> str:
    return Site.objects.get(site_uuid=SITE_UUID).status


def test_a_replayed_grant_under_a_revoking_header_and_a_far_future_timestamp_changes_nothing(rg, partner):
    enabled = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))
    assert rg.post(enabled, action="integration_enabled", timestamp=minutes_ago(3)).status_code == 200
    assert site_status() == Site.Status.ACTIVE

    replay = rg.post(enabled, action="integration_disabled", timestamp=FUTURE)

    assert replay.status_code == 200  # acknowledged, as any replay: RG would retry anything else
    assert site_status() == Site.Status.ACTIVE
    assert list(WebhookEvent.objects.values_list("action", flat=True)) == ["integration_enabled"]

    # The genuine callbacks that follow are applied, not "older than one already applied".
    disabled = body_bytes("integration_disabled", site_uuid=str(SITE_UUID))
    assert rg.post(disabled, action="integration_disabled", timestamp=minutes_ago(2)).status_code == 200
    assert site_status() == Site.Status.REVOKED
    again = body_bytes("integration_enabled", site_uuid=str(SITE_UUID), n=2)
    assert rg.post(again, action="integration_enabled", timestamp=minutes_ago(1)).status_code == 200
    assert site_status() == Site.Status.ACTIVE
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {WebhookEvent.State.PROCESSED}


def test_a_first_delivery_under_a_disagreeing_action_header_does_what_its_body_says_and_is_flagged(rg, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    body = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))

    assert rg.post(body, action="integration_disabled").status_code == 200

    assert site_status() == Site.Status.ACTIVE
    event = WebhookEvent.objects.get()
    assert (event.action, event.state) == ("integration_enabled", WebhookEvent.State.PROCESSED)
    assert event.warning == (
        "X-Lead-Router-Action said 'integration_disabled'; the signed body says 'integration_enabled', "
        "which was followed."
    )


def test_an_agreeing_action_header_leaves_no_warning(rg):
    rg.send("integration_enabled", site_uuid=str(SITE_UUID))
    assert WebhookEvent.objects.get().warning == ""


def test_a_body_without_an_action_takes_the_header_action(rg):
    body = json.dumps({"site_uuid": str(SITE_UUID)}).encode()
    rg.post(body, action="integration_enabled")
    event = WebhookEvent.objects.get()
    assert (event.action, event.warning) == ("integration_enabled", "")
    assert site_status() == Site.Status.ACTIVE


def test_the_same_body_under_another_action_header_is_the_same_request(rg):
    body = json.dumps({"site_uuid": str(SITE_UUID)}).encode()  # no action of its own: the header names it
    rg.post(body, action="integration_enabled")
    assert rg.post(body, action="integration_disabled").status_code == 200
    assert list(WebhookEvent.objects.values_list("action", flat=True)) == ["integration_enabled"]
    assert site_status() == Site.Status.ACTIVE


def test_a_far_future_header_timestamp_is_clamped_to_the_arrival(rg):
    rg.send("created", timestamp=FUTURE, id="3b5d5c3711a24f6e9d4c8a7b6c5d4e3f", site_uuid=str(SITE_UUID))
    event = WebhookEvent.objects.get()
    assert event.timestamp_raw == FUTURE
    assert event.timestamp is not None
    assert event.received_at <= event.timestamp <= event.received_at + destination.MAX_CLOCK_SKEW
    assert event.order_key() == event.timestamp_ns
    assert "X-Lead-Router-Timestamp 2099-01-01T00:00:00Z is later than the request arrived" in event.warning


def test_a_header_a_little_ahead_of_our_clock_is_believed_to_the_nanosecond_and_one_further_ahead_is_capped():
    arrived = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ahead = "2026-11-30T12:00:04.999999999Z"
    believed, warning = destination.event_time(action="created", header_raw=ahead, body={}, arrived=arrived)
    assert (believed, warning) == (destination.parse_timestamp(ahead), "")

    capped, warning = destination.event_time(
        action="created", header_raw="2026-11-30T12:00:06Z", body={}, arrived=arrived
    )
    assert capped is not None and capped.at == arrived + destination.MAX_CLOCK_SKEW == arrived + timedelta(seconds=5)
    assert warning.startswith("X-Lead-Router-Timestamp 2026-11-30T12:00:06Z is later than the request arrived")


def test_a_future_timestamp_on_a_first_delivery_cannot_shadow_a_later_genuine_callback(rg, partner, monkeypatch):
    # No skew allowance, so that "later" needs no sleeping: the genuine callback is stamped after
    # the first one arrived (the allowance is a few seconds; see the test above for its bound).
    monkeypatch.setattr(destination, "MAX_CLOCK_SKEW", timedelta(0))
    disabled = body_bytes("integration_disabled", site_uuid=str(SITE_UUID))
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    assert rg.post(disabled, action="integration_disabled", timestamp=FUTURE).status_code == 200
    assert site_status() == Site.Status.REVOKED  # what the signed body says, ordered as of its arrival

    later = rfc3339(timezone.now())
    rg.post(body_bytes("integration_enabled", site_uuid=str(SITE_UUID)), action="integration_enabled", timestamp=later)

    assert site_status() == Site.Status.ACTIVE
    assert WebhookEvent.objects.get(action="integration_enabled").state == WebhookEvent.State.PROCESSED


def test_an_integration_callback_is_ordered_by_its_bodys_signed_created_time_whatever_the_header_says(rg):
    enabled = body_bytes("integration_enabled", site_uuid=str(SITE_UUID), created=minutes_ago(2))
    rg.post(enabled, action="integration_enabled", timestamp=FUTURE)
    disabled = body_bytes("integration_disabled", site_uuid=str(SITE_UUID), created=minutes_ago(1))
    rg.post(disabled, action="integration_disabled", timestamp="2000-01-01T00:00:00Z")

    assert site_status() == Site.Status.REVOKED
    assert "2099-01-01T00:00:00Z is later than the request arrived; ordered by the body's created." in (
        WebhookEvent.objects.get(action="integration_enabled").warning
    )
    event = WebhookEvent.objects.get(action="integration_disabled")
    assert (event.state, event.warning) == (WebhookEvent.State.PROCESSED, "")
    created = destination.parse_timestamp(json.loads(disabled)["created"])
    assert created is not None and event.timestamp == created.at


def test_a_lead_callback_stamped_before_its_bodys_created_time_is_ordered_from_that_time(rg):
    created = "2026-11-03T18:00:00Z"
    rg.send("created", timestamp="2001-01-01T00:00:00Z", id="3b5d5c3711a24f6e9d4c8a7b6c5d4e3f", created=created)
    event = WebhookEvent.objects.get()
    assert event.timestamp == datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
    assert "earlier than the body's created" in event.warning


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59.999999999Z", "0001-01-01T00:00:00Z", "1969-07-20T20:17:40Z"])
def test_a_timestamp_out_of_any_sane_range_is_stored_within_it(rg, stamp):
    assert rg.send("created", timestamp=stamp, id="3b5d5c3711a24f6e9d4c8a7b6c5d4e3f").status_code == 200
    event = WebhookEvent.objects.get()
    assert event.timestamp is not None
    assert destination.EARLIEST <= event.timestamp <= event.received_at + destination.MAX_CLOCK_SKEW
    assert event.timestamp_raw == stamp


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_first_event_of_a_body_stored_twice_and_sets_the_other_aside():
    before, after = [("grants", "0003_site_circuit")], [("grants", "0004_webhook_event_signed_meaning")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    partner = old.get_model("grants", "Partner").objects.create(
        name="Acme Leads", slug="acme-leads", rg_username="acme", rg_password="rg-password-acme"
    )
    events = old.get_model("grants", "WebhookEvent").objects
    body = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))
    digest = hashlib.sha256(body).hexdigest()
    arrived = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
    common = {"partner": partner, "body": body, "body_sha256": digest}
    genuine = events.create(action="integration_enabled", received_at=arrived, state="processed", **common)
    replay = events.create(
        action="integration_disabled",
        received_at=arrived + timedelta(minutes=1),
        timestamp=datetime(2099, 1, 1, tzinfo=UTC),
        timestamp_ns=4070908800 * 1_000_000_000,
        state="failed",
        **common,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("grants", "WebhookEvent").objects
    kept, set_aside = new.get(pk=genuine.pk), new.get(pk=replay.pk)

    assert (kept.body_sha256, kept.state, kept.warning) == (digest, "processed", "")
    assert set_aside.body_sha256 == f"{digest[:32]}+{replay.pk}"
    assert set_aside.state == "ignored"
    assert f"Repeats the signed body of callback {genuine.public_id}" in set_aside.warning
    assert "'integration_disabled'" in set_aside.error
    assert set_aside.timestamp == set_aside.received_at  # 2099 no longer orders it after everything
    assert set_aside.timestamp_ns == int(set_aside.received_at.timestamp()) * 1_000_000_000

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    with pytest.raises(CallbackProblem, match="repeats the signed body of an earlier one"):
        webhook_event_reprocess(event=WebhookEvent.objects.get(pk=replay.pk))
    assert Site.objects.count() == 0

"""The Destination webhook: what it refuses, what it keeps, and what it answers."""

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from kombu.exceptions import OperationalError

from grants import process_cache, tasks, webhooks
from grants.callbacks import webhook_events_requeue
from grants.models import Partner, WebhookEvent, WebhookRejection
from grants.services import partner_create
from grants.signing import sign
from tests.clock import ManualClock
from tests.grants.conftest import LEAD_ID, SITE_UUID, body_bytes
from tests.grants.signature_contract import SignedEndpoint, SignedEndpointContract


class TestDestinationWebhookSignatures(SignedEndpointContract):
    @pytest.fixture
    def endpoint(self, rg, partner: Partner) -> SignedEndpoint:
        return SignedEndpoint(
            post=lambda body, signature: rg.post(body, signature=signature),
            partner=partner,
            accepted_status=200,
            stored=lambda: WebhookEvent.objects.count(),
        )

    def test_each_rejection_is_counted_for_staff_with_its_reason(self, endpoint: SignedEndpoint):
        endpoint.post(b'{"action": "created"}', None)
        endpoint.post(b'{"action": "created"}', "f" * 64)
        rejection = WebhookRejection.objects.get(partner=endpoint.partner)
        assert rejection.count == 2
        assert rejection.last_reason == "Invalid X-Lead-Router-Signature."
        assert rejection.last_at is not None


def test_a_valid_callback_is_stored_as_received_with_credentials_redacted(rg, partner):
    body = (
        b'{"action":"created","id":"3b5d5c3711a24f6e9d4c8a7b6c5d4e3f","site_uuid":"' + str(SITE_UUID).encode() + b'"}'
    )
    response = rg.post(
        body,
        action="created",
        timestamp="2016-12-24T01:58:52.789337607Z",
        Authorization="Basic c2VjcmV0OnNlY3JldA==",
        Cookie="sessionid=abc",
    )
    assert response.status_code == 200
    assert response.json() == {}
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    event = WebhookEvent.objects.get()
    assert bytes(event.body) == body
    assert event.body_sha256 == hashlib.sha256(body).hexdigest()
    assert event.partner == partner
    assert event.action == "created"
    assert event.site_uuid == SITE_UUID
    assert event.lead_id == LEAD_ID
    assert event.timestamp_raw == "2016-12-24T01:58:52.789337607Z"
    assert event.timestamp == datetime(2016, 12, 24, 1, 58, 52, 789337, tzinfo=UTC)
    assert event.timestamp_ns is not None and event.timestamp_ns % 1_000_000_000 == 789337607
    assert event.headers["Authorization"] == "[redacted]"
    assert event.headers["Cookie"] == "[redacted]"
    assert event.headers["X-Lead-Router-Signature"] == sign(body, "whsec-acme")
    assert "c2VjcmV0" not in json.dumps(event.headers)


def test_the_body_action_wins_over_a_disagreeing_header_which_is_kept_as_a_warning(rg):
    rg.post(body_bytes("updated", site_uuid=str(SITE_UUID), id=str(LEAD_ID)), action="activity_added")
    event = WebhookEvent.objects.get()
    assert event.action == "updated"
    assert "X-Lead-Router-Action said 'activity_added'" in event.warning
    assert event.headers["X-Lead-Router-Action"] == "activity_added"  # kept as sent


def test_without_an_action_header_the_body_action_is_used(rg):
    rg.post(body_bytes("integration_disabled", site_uuid=str(SITE_UUID)))
    assert WebhookEvent.objects.get().action == "integration_disabled"


def test_the_same_request_twice_is_stored_once_and_acknowledged_both_times(rg):
    body = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))
    first = rg.post(body, action="integration_enabled")
    second = rg.post(body, action="integration_enabled", timestamp="2026-11-03T18:30:00Z")
    assert (first.status_code, second.status_code) == (200, 200)
    event = WebhookEvent.objects.get()
    assert event.attempts == 1
    assert event.state == WebhookEvent.State.PROCESSED


def test_the_same_body_under_another_action_header_is_stored_once_as_its_body_says(rg):
    body = body_bytes("created", site_uuid=str(SITE_UUID), id=str(LEAD_ID))
    rg.post(body, action="created")
    assert rg.post(body, action="updated").status_code == 200
    assert list(WebhookEvent.objects.values_list("action", flat=True)) == ["created"]


def test_a_replayed_request_whose_processing_failed_is_processed_again(rg):
    body = body_bytes("created", site_uuid=str(SITE_UUID))  # no lead id: processing fails
    rg.post(body, action="created")
    event = WebhookEvent.objects.get()
    assert (event.state, event.attempts) == (WebhookEvent.State.FAILED, 1)
    assert "lead id" in event.error

    assert rg.post(body, action="created").status_code == 200
    event.refresh_from_db()
    assert WebhookEvent.objects.count() == 1
    assert (event.state, event.attempts) == (WebhookEvent.State.FAILED, 2)


def test_a_signed_body_that_is_not_json_gets_400_and_is_kept_as_invalid(rg):
    response = rg.post(b"action=created&id=1", action="created")
    assert response.status_code == 400
    assert response.json() == {"error": "Body is not a JSON object."}
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    event = WebhookEvent.objects.get()
    assert (event.is_valid, event.state, event.attempts) == (False, WebhookEvent.State.INVALID, 0)
    assert bytes(event.body) == b"action=created&id=1"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"created"', b"\xff\xfe{}", b"{"])
def test_json_that_is_not_an_object_is_invalid_too(rg, body):
    assert rg.post(body, action="created").status_code == 400
    assert WebhookEvent.objects.get().state == WebhookEvent.State.INVALID


def test_an_unknown_action_is_kept_and_acknowledged(rg):
    response = rg.send("lead_teleported", site_uuid=str(SITE_UUID))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.IGNORED
    assert "lead_teleported" in event.error


def test_a_body_over_one_mib_is_refused_with_413_and_not_stored(rg, partner):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = rg.post(body, action="created")
    assert response.status_code == 413
    assert "error" in response.json()
    assert WebhookEvent.objects.count() == 0


def test_a_body_of_exactly_one_mib_is_accepted(rg):
    body = b'{"pad": "' + b"x" * (1024 * 1024 - 11) + b'"}'
    assert len(body) == 1024 * 1024
    assert rg.post(body, action="created").status_code == 200


def answers(client, slug: str, body: bytes, signature: str | None) -> tuple[int, dict]:
    headers = {"X-Lead-Router-Signature": signature} if signature is not None else {}
    response = client.post(f"/webhooks/realgeeks/{slug}/", body, content_type="application/json", headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize("signature", [None, "", "0" * 64, sign(body_bytes("created"), "whsec-acme")])
def test_an_unknown_or_inactive_slug_is_answered_exactly_as_a_bad_signature(client, partner, other_partner, signature):
    body = body_bytes("created")
    # other_partner's secret is not whsec-acme: for it, even the last signature is a bad one.
    bad_signature = answers(client, other_partner.slug, body, signature)
    unknown = answers(client, "nobody", body, signature)
    Partner.objects.filter(pk=partner.pk).update(is_active=False)
    webhooks.partners_forget()  # deactivated as another process would: no signal reaches this one
    inactive = answers(client, partner.slug, body, signature)

    assert bad_signature[0] == 401
    assert unknown == inactive == bad_signature
    assert WebhookEvent.objects.count() == 0


def test_an_oversized_body_gets_the_same_413_whether_the_slug_is_known_or_not(client, partner):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert answers(client, "nobody", body, "0" * 64) == answers(client, partner.slug, body, "0" * 64)
    assert answers(client, "nobody", body, "0" * 64)[0] == 413


def test_an_unknown_slug_still_checks_the_signature_against_a_secret_nobody_holds(client, partner, monkeypatch):
    checked: list[tuple[bytes, tuple[str, ...]]] = []
    real = webhooks.signature_matches

    def spy(body: bytes, signature: str, secrets) -> bool:
        checked.append((body, tuple(secrets)))
        return real(body, signature, secrets)

    monkeypatch.setattr(webhooks, "signature_matches", spy)
    body = body_bytes("created")
    answers(client, "nobody", body, sign(body, "whsec-acme"))
    answers(client, partner.slug, body, "0" * 64)

    (unknown_body, dummy), (known_body, secrets) = checked
    assert unknown_body == known_body == body
    assert len(dummy) == len(secrets) == 1
    assert dummy != secrets and "whsec-acme" not in dummy


def test_unknown_slugs_are_logged_once_per_burst_without_body_or_signature(client, db, caplog):
    body = body_bytes("created", first_name="Jack")
    signature = sign(body, "whsec-acme")
    with caplog.at_level(logging.INFO, logger="grants.webhooks"):
        for _ in range(3):
            answers(client, "nobody", body, signature)
        answers(client, "somebody-else", body, signature)

    lines = [r.getMessage() for r in caplog.records if r.name == "grants.webhooks"]
    assert len(lines) == 2
    assert "'nobody'" in lines[0] and "'somebody-else'" in lines[1]
    assert not any(signature in line or "Jack" in line for line in lines)


def test_anything_but_post_gets_405(client, partner):
    response = client.get(f"/webhooks/realgeeks/{partner.slug}/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_an_unparseable_timestamp_is_kept_as_text(rg):
    rg.send("integration_enabled", timestamp="yesterday", site_uuid=str(SITE_UUID))
    event = WebhookEvent.objects.get()
    assert (event.timestamp_raw, event.timestamp, event.timestamp_ns) == ("yesterday", None, None)


def test_a_callback_whose_task_message_was_lost_is_processed_by_the_requeue(rg, client):
    body = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))
    headers = {"X-Lead-Router-Signature": sign(body, "whsec-acme")}
    # Posted without running on-commit work: the task message never reaches a worker.
    response = client.post(rg.url, body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.RECEIVED

    with rg.capture(execute=True):
        assert webhook_events_requeue() == 0  # too fresh to call lost
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=datetime(2026, 1, 1, tzinfo=UTC))
    with rg.capture(execute=True):
        assert webhook_events_requeue() == 1
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 1)


def test_a_broker_outage_still_answers_200_and_keeps_the_callback(rg, published, monkeypatch):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    # The broker edge: publishing fails the way kombu fails when Redis is down.
    monkeypatch.setattr(tasks.webhook_events_process, "delay", broker_down)
    response = rg.send("integration_enabled", site_uuid=str(SITE_UUID))
    assert response.status_code == 200
    assert WebhookEvent.objects.get().state == WebhookEvent.State.RECEIVED


def test_two_partners_never_see_each_others_callbacks(rg, other_partner, client, django_capture_on_commit_callbacks):
    body = body_bytes("integration_enabled", site_uuid=str(uuid.uuid4()))
    rg.post(body, action="integration_enabled")
    headers = {"X-Lead-Router-Signature": sign(body, "whsec-acme"), "X-Lead-Router-Action": "integration_enabled"}
    response = client.post(
        f"/webhooks/realgeeks/{other_partner.slug}/", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 401  # signed with the first partner's secret
    assert list(WebhookEvent.objects.values_list("partner__slug", flat=True)) == ["acme-leads"]


def test_a_stored_callback_costs_one_sql_statement_once_its_partner_is_known(
    rg, published, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):  # the partner's row, then the callback's INSERT
        assert rg.send("created", id=str(LEAD_ID), site_uuid=str(SITE_UUID), first_name="Jack").status_code == 200
    with django_assert_max_num_queries(1) as captured:
        assert rg.send("updated", id=str(LEAD_ID), site_uuid=str(SITE_UUID), phone="808").status_code == 200

    assert captured.captured_queries[0]["sql"].startswith('INSERT INTO "grants_webhookevent"')
    assert published == ["webhook_events_process"] * 2  # the hint: a broker message, no SQL
    assert WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).count() == 2


def test_a_replay_is_caught_by_the_unique_key_in_two_statements_without_reading_first(
    rg, published, django_assert_max_num_queries
):
    body = body_bytes("created", id=str(LEAD_ID), site_uuid=str(SITE_UUID))
    rg.post(body, action="created")

    with django_assert_max_num_queries(2) as captured:
        assert rg.post(body, action="created").status_code == 200

    insert, replay = (query["sql"] for query in captured.captured_queries)
    assert insert.startswith("INSERT") and "ON CONFLICT" in insert
    assert replay.startswith("UPDATE")  # only a failed event goes round again
    assert WebhookEvent.objects.count() == 1
    assert published == ["webhook_events_process"]  # nothing failed: nothing to ask for again


@pytest.fixture
def clock(monkeypatch, settings) -> ManualClock:
    settings.PARTNER_CACHE_SECONDS = 5
    clock = ManualClock()
    monkeypatch.setattr(process_cache.time, "monotonic", clock)
    return clock


def test_a_partner_deactivated_by_another_process_is_refused_once_the_cache_bound_has_passed(rg, partner, clock):
    assert rg.send("created", id=str(LEAD_ID), n=1).status_code == 200
    # As another process would: a plain UPDATE sends no signal to this one.
    Partner.objects.filter(pk=partner.pk).update(is_active=False)

    clock.now += 4.9
    assert rg.send("created", id=str(LEAD_ID), n=2).status_code == 200
    clock.now += 0.2
    assert rg.send("created", id=str(LEAD_ID), n=3).status_code == 401
    assert WebhookEvent.objects.count() == 2


def test_a_secret_rotated_by_another_process_takes_effect_once_the_cache_bound_has_passed(rg, partner, clock):
    assert rg.send("created", id=str(LEAD_ID), n=1).status_code == 200
    Partner.objects.filter(pk=partner.pk).update(webhook_secrets_encrypted=json.dumps(["whsec-acme-2027"]))

    clock.now += 4.9
    assert rg.send("created", id=str(LEAD_ID), n=2).status_code == 200
    clock.now += 0.2
    old = body_bytes("created", id=str(LEAD_ID), n=3)
    assert rg.post(old, action="created").status_code == 401
    assert rg.post(old, action="created", signature=sign(old, "whsec-acme-2027")).status_code == 200


def test_a_partner_changed_in_this_process_takes_effect_at_once(rg, partner, clock):
    assert rg.send("created", id=str(LEAD_ID), n=1).status_code == 200
    partner.is_active = False
    partner.save()
    assert rg.send("created", id=str(LEAD_ID), n=2).status_code == 401


def test_a_partner_created_after_its_slug_was_probed_is_found_at_once(db, client, clock):
    body = body_bytes("integration_enabled", site_uuid=str(SITE_UUID))
    headers = {"X-Lead-Router-Signature": sign(body, "whsec-late")}
    url = "/webhooks/realgeeks/late-co/"
    assert client.post(url, body, content_type="application/json", headers=headers).status_code == 401

    partner_create(name="Late Co", rg_username="late", rg_password="rg-password-late", webhook_secret="whsec-late")

    assert client.post(url, body, content_type="application/json", headers=headers).status_code == 200

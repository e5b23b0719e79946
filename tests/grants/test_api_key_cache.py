"""API-key authentication on the hot path: keys kept per process for a bounded time, revocation
felt at once here and within the bound elsewhere, failed attempts throttled per address."""

import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from grants import authentication
from grants.models import ApiKey
from grants.services import api_key_issue
from tests.clock import ManualClock
from tests.leads.conftest import SITE_UUID, basic

pytestmark = pytest.mark.django_db

PUSH_PATH = f"/rest/sites/{SITE_UUID}/leads"  # any push path: auth runs before the body is read


@pytest.fixture
def clock(monkeypatch) -> ManualClock:
    fake = ManualClock()
    monkeypatch.setattr(authentication.time, "monotonic", fake)
    return fake


@pytest.fixture
def key(partner) -> tuple[ApiKey, str]:
    issued, secret = api_key_issue(partner=partner, label="product")
    # Touched recently, so a request never writes last_used_at in these tests.
    ApiKey.objects.filter(pk=issued.pk).update(last_used_at=timezone.now())
    return issued, secret


def attempt(secret_client: Client):
    return secret_client.post(PUSH_PATH, data="not json", content_type="application/json")


def test_a_known_key_is_checked_without_a_query(key, clock, django_assert_num_queries):
    issued, secret = key
    client = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))
    assert attempt(client).status_code == 400  # authenticated; the body is refused

    with django_assert_num_queries(0):
        assert attempt(client).status_code == 400


def test_the_secret_is_still_checked_on_every_request(key, clock):
    issued, secret = key
    assert attempt(Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))).status_code == 400

    wrong = attempt(Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret + "x")))

    assert wrong.status_code == 401


def test_a_key_revoked_in_this_process_stops_at_once(key, clock):
    issued, secret = key
    client = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))
    attempt(client)

    issued.revoked_at = timezone.now()
    issued.save()

    assert attempt(client).status_code == 401


def test_a_key_revoked_elsewhere_stops_within_the_cache_bound(key, clock, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    issued, secret = key
    client = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))
    attempt(client)
    # Another process revoked it: no signal reaches this one.
    ApiKey.objects.filter(pk=issued.pk).update(revoked_at=timezone.now())

    clock.now += 4.9
    still = attempt(client).status_code
    clock.now += 0.2
    after = attempt(client).status_code

    assert (still, after) == (400, 401)


def test_a_deactivated_partner_stops_at_once(key, clock, partner):
    issued, secret = key
    client = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))
    attempt(client)

    partner.is_active = False
    partner.save()

    assert attempt(client).status_code == 401


def test_failures_past_the_rate_get_429_even_for_the_right_secret_and_log_once(key, clock, settings, caplog):
    settings.API_KEY_FAILURES_PER_MINUTE = 5
    issued, secret = key
    guesser = Client(HTTP_AUTHORIZATION=basic(issued.key_id, "guess"), REMOTE_ADDR="203.0.113.9")
    elsewhere = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret), REMOTE_ADDR="198.51.100.7")

    with caplog.at_level(logging.WARNING, logger="grants.authentication"):
        codes = [attempt(guesser).status_code for _ in range(8)]
        right = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret), REMOTE_ADDR="203.0.113.9")
        blocked = attempt(right)

    assert codes == [401] * 5 + [429] * 3
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert "Too many failed API key attempts" in blocked.json()["error"]
    assert attempt(elsewhere).status_code == 400  # another address is not blocked
    assert len([r for r in caplog.records if "API key failures from 203.0.113.9" in r.getMessage()]) == 1


def test_a_block_ends_after_its_wait(key, clock, settings):
    settings.API_KEY_FAILURES_PER_MINUTE = 2
    issued, secret = key
    guesser = Client(HTTP_AUTHORIZATION=basic(issued.key_id, "guess"), REMOTE_ADDR="203.0.113.10")
    for _ in range(3):
        attempt(guesser)

    right = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret), REMOTE_ADDR="203.0.113.10")
    during = attempt(right).status_code
    clock.now += 61
    after = attempt(right).status_code

    assert (during, after) == (429, 400)


def test_unknown_key_ids_are_not_kept(partner, clock):
    for n in range(50):
        attempt(Client(HTTP_AUTHORIZATION=basic(f"pk_made_up_{n}", "x"), REMOTE_ADDR=f"192.0.2.{n}"))

    assert len(authentication.keys) == 0


def test_an_expired_entry_is_read_again(key, clock, settings, django_assert_num_queries):
    settings.API_KEY_CACHE_SECONDS = 1
    issued, secret = key
    client = Client(HTTP_AUTHORIZATION=basic(issued.key_id, secret))
    attempt(client)
    clock.now += 2

    with django_assert_num_queries(1):
        assert attempt(client).status_code == 400
    last_used = ApiKey.objects.get(pk=issued.pk).last_used_at
    assert last_used is not None and timedelta(0) <= timezone.now() - last_used < timedelta(minutes=5)

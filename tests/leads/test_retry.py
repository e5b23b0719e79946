import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from leads import realgeeks, retry

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def schedule(settings):
    settings.DELIVERY_MAX_ATTEMPTS = 8
    settings.DELIVERY_RETRY_BASE_SECONDS = 60.0
    settings.DELIVERY_RETRY_FACTOR = 3.0
    settings.DELIVERY_RETRY_MAX_SECONDS = 12 * 3600.0
    settings.DELIVERY_RETRY_JITTER = 0.2


def transient(**kwargs) -> realgeeks.RealGeeksError:
    return realgeeks.RealGeeksError("Real Geeks answered 503: down", status=503, **kwargs)


def test_the_default_schedule_spreads_eight_attempts_over_most_of_a_day():
    rng = random.Random(7)
    delays = [retry.backoff_seconds(n, rng=rng) for n in range(1, 8)]

    assert all(later > earlier for earlier, later in itertools.pairwise(delays))
    assert timedelta(hours=12) < timedelta(seconds=sum(delays)) < timedelta(hours=26)


def test_jitter_keeps_each_delay_within_its_band_and_the_cap_holds():
    rng = random.Random(1)
    for n in range(1, 12):
        nominal = min(60.0 * 3.0 ** (n - 1), 12 * 3600.0 / 0.8)
        delay = retry.backoff_seconds(n, rng=rng)
        assert 0.8 * nominal <= delay <= min(1.2 * nominal, 12 * 3600.0)


def test_a_transient_failure_schedules_the_next_attempt_in_the_database():
    verdict = retry.verdict_for_error(transient(), attempt_count=1, now=NOW)

    assert (verdict.status, verdict.outcome) == ("retrying", "retry")
    assert verdict.next_attempt_at is not None
    assert NOW + timedelta(seconds=48) <= verdict.next_attempt_at <= NOW + timedelta(seconds=72)


def test_the_last_allowed_attempt_failing_makes_the_delivery_dead():
    verdict = retry.verdict_for_error(transient(), attempt_count=8, now=NOW)
    assert (verdict.status, verdict.outcome, verdict.next_attempt_at) == ("dead", "dead", None)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_client_errors_fail_for_a_human_without_a_retry(status):
    error = realgeeks.RealGeeksError("no", status=status, permanent=True)
    verdict = retry.verdict_for_error(error, attempt_count=1, now=NOW)
    assert (verdict.status, verdict.next_attempt_at, verdict.site_doubtful) == ("failed", None, False)


def test_a_401_fails_and_casts_doubt_on_the_sites_grant():
    error = realgeeks.RealGeeksError("no", status=401, permanent=True)
    verdict = retry.verdict_for_error(error, attempt_count=1, now=NOW)
    assert (verdict.status, verdict.site_doubtful) == ("failed", True)


def test_a_429_waits_as_long_as_retry_after_asks():
    verdict = retry.verdict_for_error(transient(retry_after=900.0), attempt_count=1, now=NOW)
    assert verdict.next_attempt_at == NOW + timedelta(seconds=900)


def test_held_deliveries_expire_after_the_configured_age(settings):
    settings.DELIVERY_HELD_MAX_AGE_HOURS = 72
    assert retry.held_too_long_before(NOW) == NOW - timedelta(hours=72)
    assert "3 days" in retry.held_too_long_reason()

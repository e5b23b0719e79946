"""The overview's numbers, checked against literal attempts at literal times."""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from grants.models import Partner, Site, WebhookEvent
from grants.services import site_grant
from leads import stats
from leads.models import Delivery, DeliveryAttempt, Lead

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)  # the 24 h window is 2025-03-03 13:00 to 2025-03-04 13:00
ACME_SITE = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
OTHER_SITE = uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")
E422 = "Real Geeks answered 422: Field 'email' is not valid."
E503 = "Real Geeks answered 503: Service Unavailable"
E401 = "Real Geeks answered 401: These credentials may not send to this site."


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


class Seed:
    """Attempts on one delivery of one lead of a partner's site, written as the worker would."""

    def __init__(self, partner: Partner, site_uuid: uuid.UUID) -> None:
        site = site_grant(partner=partner, site_uuid=site_uuid, source=Site.Source.MANUAL, name=f"Site of {partner}")
        lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4())
        self.delivery = Delivery.objects.create(lead=lead, sequence=1, operation="create_lead", payload={})
        self.count = 0

    def attempt(
        self,
        started: datetime,
        outcome: str,
        duration_ms: int | None = 100,
        status: int | None = None,
        error: str = "",
    ) -> DeliveryAttempt:
        self.count += 1
        return DeliveryAttempt.objects.create(
            delivery=self.delivery,
            number=self.count,
            trigger="automatic",
            started=started,
            duration_ms=duration_ms,
            request_method="POST",
            request_url="http://127.0.0.1/sandbox/rest/sites/x/leads",
            response_status=status,
            error=error,
            outcome=outcome,
        )


@pytest.fixture
def acme(partner: Partner) -> Seed:
    return Seed(partner, ACME_SITE)


@pytest.fixture
def other(other_partner: Partner) -> Seed:
    return Seed(other_partner, OTHER_SITE)


def window(key: str = "24h") -> stats.Window:
    return stats.window_ending(key, NOW)


def only(partner: Partner):
    return Partner.objects.filter(pk=partner.pk)


def test_the_window_is_whole_hours_ending_with_the_current_one():
    day, week, unknown = window("24h"), window("7d"), window("1y")

    assert (day.start, day.end, len(day.hours())) == (at(3, 13), at(4, 13), 24)
    assert (week.start, len(week.hours())) == (at(3, 13) - timedelta(days=6), 168)
    assert unknown.key == "24h"


def test_attempts_are_counted_per_hour_and_outcome_inside_the_window_only(acme):
    acme.attempt(at(3, 12, 59, 59), "delivered")  # a second before the window
    acme.attempt(at(3, 13), "delivered")  # its first instant
    for _ in range(3):
        acme.attempt(at(4, 10, 15), "delivered")
    acme.attempt(at(4, 10, 45), "retry", status=503, error=E503)
    acme.attempt(at(4, 11, 5), "failed", status=422, error=E422)
    acme.attempt(at(4, 11, 6), "failed", status=422, error=E422)
    acme.attempt(at(4, 12, 29), "dead", status=503, error=E503)

    hours = stats.attempts_by_hour(stats.attempts_in(window(), partners=None), window())

    counts = {hour.start: hour.counts for hour in hours if hour.counts}
    assert counts == {
        at(3, 13): {"delivered": 1},
        at(4, 10): {"delivered": 3, "retry": 1},
        at(4, 11): {"failed": 2},
        at(4, 12): {"dead": 1},
    }
    assert [hour.start for hour in hours][:2] == [at(3, 13), at(3, 14)]
    assert sum(hour.total for hour in hours) == 8


def test_the_success_rate_is_delivered_attempts_over_finished_ones(acme):
    for minute in range(6):
        acme.attempt(at(4, 9, minute), "delivered")
    acme.attempt(at(4, 9, 10), "retry", status=503, error=E503)
    acme.attempt(at(4, 9, 11), "failed", status=422, error=E422)
    acme.attempt(at(4, 12, 29), "started", duration_ms=None)  # in flight: not finished yet

    rate = stats.success_rate(stats.attempts_by_hour(stats.attempts_in(window(), partners=None), window()))

    assert (rate.delivered, rate.finished, rate.percent) == (6, 8, 75.0)


def test_no_attempts_give_no_rate_and_no_latency_rather_than_zero(acme):
    attempts = stats.attempts_in(window(), partners=None)

    assert stats.success_rate(stats.attempts_by_hour(attempts, window())).percent is None
    assert stats.latency(attempts) == stats.Latency(count=0, median_ms=None, p95_ms=None)


def test_latency_median_and_95th_percentile_are_nearest_rank_of_the_known_durations(acme):
    for n, duration in enumerate([120, 80, 400, 95, 2500, 130, 110, 100, 90, 105]):
        acme.attempt(at(4, 8, n), "delivered", duration_ms=duration)
    acme.attempt(at(4, 8, 30), "started", duration_ms=None)  # no duration yet: not counted
    acme.attempt(at(3, 12), "delivered", duration_ms=99_999)  # outside the window

    latency = stats.latency(stats.attempts_in(window(), partners=None))

    # Sorted: 80 90 95 100 105 110 120 130 400 2500; rank ceil(0.5*10)=5 and ceil(0.95*10)=10.
    assert latency == stats.Latency(count=10, median_ms=105, p95_ms=2500)


def test_latency_of_twenty_attempts(acme):
    for n in range(20):
        acme.attempt(at(4, 7, n), "delivered", duration_ms=(n + 1) * 100)

    latency = stats.latency(stats.attempts_in(window(), partners=None))

    assert (latency.median_ms, latency.p95_ms) == (1000, 1900)


def test_top_failure_reasons_are_grouped_by_status_and_message_most_frequent_first(acme):
    for minute in range(3):
        acme.attempt(at(4, 6, minute), "retry", status=503, error=E503)
    acme.attempt(at(4, 6, 10), "dead", status=503, error=E503)
    acme.attempt(at(4, 7, 0), "failed", status=422, error=E422)
    acme.attempt(at(4, 7, 1), "failed", status=422, error=E422)
    acme.attempt(at(4, 11, 0), "failed", status=401, error=E401)
    acme.attempt(at(4, 11, 1), "retry", status=None, error="Real Geeks did not answer within 20 s")
    acme.attempt(at(4, 11, 2), "delivered", status=201)
    acme.attempt(at(3, 12), "failed", status=422, error=E422)  # outside the window

    reasons = stats.failure_reasons(stats.attempts_in(window(), partners=None), limit=3)

    assert [(r.status, r.error, r.count) for r in reasons] == [
        (503, E503, 4),
        (422, E422, 2),
        # Ties go to the most recent: the timeout (11:01) before the 401 (11:00).
        (None, "Real Geeks did not answer within 20 s", 1),
    ]
    assert reasons[0].last_seen == at(4, 6, 10)


def test_one_partners_numbers_never_include_anothers(partner, other_partner, acme, other):
    acme.attempt(at(4, 10), "delivered", duration_ms=100)
    acme.attempt(at(4, 10, 1), "failed", status=422, error=E422, duration_ms=200)
    other.attempt(at(4, 10, 2), "failed", status=401, error=E401, duration_ms=9000)
    other.attempt(at(4, 10, 3), "failed", status=401, error=E401, duration_ms=9000)

    attempts = stats.attempts_in(window(), partners=only(partner))
    hours = stats.attempts_by_hour(attempts, window())

    assert [hour.counts for hour in hours if hour.counts] == [{"delivered": 1, "failed": 1}]
    assert stats.latency(attempts) == stats.Latency(count=2, median_ms=100, p95_ms=200)
    assert [r.error for r in stats.failure_reasons(attempts)] == [E422]
    everyone = stats.attempts_in(window(), partners=None)
    assert stats.latency(everyone).p95_ms == 9000


def test_held_deliveries_are_counted_per_site_most_first_and_per_partner(partner, other_partner, acme, other):
    quiet = Seed(partner, uuid.UUID("11111111-2222-4333-8444-555555555555"))
    for seed, held in ((acme, 3), (quiet, 1), (other, 2)):
        lead = seed.delivery.lead
        for n in range(held):
            Delivery.objects.create(lead=lead, sequence=10 + n, operation="update_lead", payload={}, status="held")
    Delivery.objects.filter(pk=acme.delivery.pk).update(status="failed")

    rows = stats.held_by_site(partners=only(partner))

    assert [(row.site.site_uuid, row.count) for row in rows] == [
        (ACME_SITE, 3),
        (quiet.delivery.lead.site.site_uuid, 1),
    ]
    assert stats.held_total(partners=only(partner)) == 4
    assert stats.held_total(partners=None) == 6
    assert stats.held_counts_by_site(partner=other_partner) == {other.delivery.lead.site_id: 2}
    assert stats.needing_a_human(partners=only(partner)) == 1
    assert stats.needing_a_human(partners=only(other_partner)) == 0


def test_recent_callbacks_are_the_partners_newest_first(partner, other_partner):
    def event(owner: Partner, action: str, minute: int) -> WebhookEvent:
        body = f'{{"action": "{action}", "n": {minute}}}'.encode()
        return WebhookEvent.objects.create(
            partner=owner,
            action=action,
            body=body,
            body_sha256=hashlib.sha256(body).hexdigest(),
            received_at=at(4, 9, minute),
        )

    event(partner, "integration_enabled", 1)
    event(partner, "lead_updated", 3)
    event(other_partner, "integration_disabled", 2)

    assert [e.action for e in stats.recent_callbacks(partners=only(partner))] == [
        "lead_updated",
        "integration_enabled",
    ]
    assert [e.action for e in stats.recent_callbacks(partners=None, limit=2)] == [
        "lead_updated",
        "integration_disabled",
    ]


def lead_at(seed: Seed, created: datetime, status: str, **fields) -> Lead:
    """Another lead on the seed's site, accepted at `created`, with its status now."""
    site = seed.delivery.lead.site
    return Lead.objects.create(
        partner=site.partner, site=site, lead_id=uuid.uuid4(), created=created, status=status, **fields
    )


def test_the_eventual_rate_is_delivered_leads_of_those_accepted_in_the_window(partner, acme, other):
    Lead.objects.filter(pk=acme.delivery.lead.pk).update(created=at(3, 12, 59))  # before the window
    for status in ("delivered", "delivered", "delivered", "retrying", "failed", "held"):
        lead_at(acme, at(4, 9), status)
    lead_at(other, at(4, 9), "failed")

    mine = stats.lead_outcomes(stats.lead_outcomes_by_site(stats.leads_in(window(), partners=only(partner))))
    everyone = stats.lead_outcomes(stats.lead_outcomes_by_site(stats.leads_in(window(), partners=None)))

    assert (mine.delivered, mine.total, mine.percent) == (3, 6, 50.0)
    assert (mine.in_progress, mine.held, mine.failed, mine.cancelled) == (1, 1, 1, 0)
    # The other partner's seed lead (pending, accepted now) is outside this 2025 window.
    assert (everyone.delivered, everyone.total) == (3, 7)
    assert stats.LeadOutcomes().percent is None


def test_a_recovered_503_blip_is_all_delivered_though_half_the_attempts_failed(acme):
    Lead.objects.filter(pk=acme.delivery.lead.pk).update(created=at(4, 9), status="delivered")
    acme.attempt(at(4, 9, 0), "retry", status=503, error=E503)
    acme.attempt(at(4, 9, 1), "delivered", status=201)

    outcomes = stats.lead_outcomes(stats.lead_outcomes_by_site(stats.leads_in(window(), partners=None)))
    attempts = stats.success_rate(stats.attempts_by_hour(stats.attempts_in(window(), partners=None), window()))

    assert outcomes.percent == 100.0
    assert attempts.percent == 50.0


def test_failure_reasons_know_which_deliveries_still_wait_for_a_person(partner, other_partner, acme, other):
    acme.attempt(at(4, 6, 0), "retry", status=503, error=E503)  # retried by the engine
    acme.attempt(at(4, 6, 1), "failed", status=422, error=E422)
    Delivery.objects.filter(pk=acme.delivery.pk).update(status="failed", last_status_code=422)
    other.attempt(at(4, 6, 2), "failed", status=422, error=E422)  # since retried by hand: delivered
    Delivery.objects.filter(pk=other.delivery.pk).update(status="delivered")

    attempts = stats.attempts_in(window(), partners=None)
    reasons = stats.failure_reasons(attempts)
    retryable = stats.retryable_by_reason(attempts, reasons)

    by_status = {r.status: r for r in reasons}
    assert (by_status[503].final, by_status[503].retried_automatically) == (0, True)
    assert (by_status[422].count, by_status[422].final) == (2, 2)
    assert retryable == {(422, E422): {partner.pk: 1}}


def test_the_leads_behind_a_failure_reason_are_those_with_such_an_attempt_in_the_window(acme, other):
    acme.attempt(at(4, 6, 1), "failed", status=422, error=E422)
    other.attempt(at(4, 6, 2), "failed", status=422, error="Real Geeks answered 422: Field 'phone' is not valid.")
    late = Seed(acme.delivery.lead.partner, uuid.UUID("22222222-3333-4444-8555-666666666666"))
    late.attempt(at(3, 12), "failed", status=422, error=E422)  # before the window
    timeout = Seed(acme.delivery.lead.partner, uuid.UUID("33333333-4444-4555-8666-777777777777"))
    timeout.attempt(at(4, 7), "retry", status=None, error="Real Geeks did not answer within 20 s")

    def leads(**kwargs) -> set[int]:
        ids = stats.lead_ids_with_failed_attempts(start=window().start, end=window().end, **kwargs)
        return set(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True))

    assert leads(status=422, error=E422) == {acme.delivery.lead_id}
    assert leads(status=422, error=None) == {acme.delivery.lead_id, other.delivery.lead_id}
    assert leads(status=0, error=None) == {timeout.delivery.lead_id}


def test_the_backlog_is_due_deliveries_and_how_long_the_oldest_has_waited(partner, acme, other):
    now = at(4, 12, 30)
    lead = acme.delivery.lead
    Delivery.objects.filter(pk=acme.delivery.pk).update(status="retrying", next_attempt_at=at(4, 12, 20))
    Delivery.objects.create(lead=lead, sequence=2, operation="update_lead", payload={}, next_attempt_at=at(4, 12, 29))
    Delivery.objects.create(
        lead=lead, sequence=3, operation="update_lead", payload={}, status="retrying", next_attempt_at=at(4, 13)
    )  # not due yet
    Delivery.objects.filter(pk=other.delivery.pk).update(status="pending", next_attempt_at=at(4, 11))

    mine = stats.backlog(partners=only(partner), now=now)
    everyone = stats.backlog(partners=None, now=now)

    assert (mine.due, mine.capped, mine.oldest_seconds(now)) == (2, False, 600)
    assert (everyone.due, everyone.oldest_seconds(now)) == (3, 5400)
    assert stats.backlog(partners=None, now=at(4, 10)).oldest_seconds(at(4, 10)) is None


def test_site_health_ranks_open_circuits_then_the_lowest_rate_and_is_bounded(partner, acme):
    good = acme
    bad = Seed(partner, uuid.UUID("44444444-5555-4666-8777-888888888888"))
    tripped = Seed(partner, uuid.UUID("55555555-6666-4777-8888-999999999999"))
    for status in ("delivered", "delivered"):
        lead_at(good, at(4, 9), status)
    lead_at(bad, at(4, 9), "delivered")
    lead_at(bad, at(4, 9, 5), "failed", last_status_code=422, last_error=E422)
    Site.objects.filter(pk=tripped.delivery.lead.site_id).update(
        circuit_failures=5, circuit_opened_at=at(4, 12), circuit_open_until=at(4, 12, 45), circuit_last_error=E503
    )
    by_site = stats.lead_outcomes_by_site(stats.leads_in(window(), partners=only(partner)))

    rows, ranked = stats.site_health(window(), partners=only(partner), by_site=by_site, now=NOW)
    top, _ = stats.site_health(window(), partners=only(partner), by_site=by_site, now=NOW, limit=2)

    assert [(r.site.pk, r.outcomes.percent, r.circuit["state"], r.last_error) for r in rows] == [
        (tripped.delivery.lead.site_id, None, "open", E503),
        (bad.delivery.lead.site_id, 50.0, "closed", E422),
        (good.delivery.lead.site_id, 100.0, "closed", ""),
    ]
    assert ranked == 3
    assert len(top) == 2

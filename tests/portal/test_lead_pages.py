"""The leads list and a lead's page, through Django's test client: scoping, filters and search,
keyset pages, query counts, the timeline, and no secret on any page. Real Geeks is mocked at the
HTTP edge, and deliveries run through the real pipeline."""

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
import responses
from django.conf import settings
from django.test import Client
from django.urls import reverse

from grants.models import Partner, Site
from grants.services import site_grant
from leads.engine import pump_run
from leads.models import Delivery, Lead
from leads.services import lead_submit
from portal.views.leads import cursor_for, cursor_parse
from tests.leads.conftest import FakeRealGeeks
from tests.leads.long_history import REQUEST_BODY, long_history

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
SECOND_SITE_UUID = uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")
OTHER_SITE_UUID = uuid.UUID("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")
SECRETS = ["rg-password-acme", "whsec-acme", "rg-password-other", "whsec-other"]


@pytest.fixture(autouse=True)
def inline_tasks(settings: Any) -> None:
    # Celery reads the CELERY_-prefixed Django setting, so this (not app.conf) makes tasks eager.
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def rg() -> Iterator[FakeRealGeeks]:
    """Real Geeks at the HTTP edge (requests' transport), answering as tests.leads.conftest's does."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeRealGeeks(mock)
        base = re.escape(settings.REALGEEKS_API_URL.rsplit("/rest", 1)[0])
        for method in ("GET", "POST", "PATCH"):
            mock.add_callback(method, re.compile(base + r"/.*"), callback=fake.handle)
        yield fake


@pytest.fixture
def site(partner: Partner) -> Site:
    return site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")


@pytest.fixture
def send(django_capture_on_commit_callbacks: Any):
    """send(partner, email, **fields): a lead accepted as by the push API and delivered at once."""

    def submit(partner: Partner, email: str, site_uuid: uuid.UUID = SITE_UUID, **fields: Any) -> Lead:
        with django_capture_on_commit_callbacks(execute=True):
            delivery = lead_submit(
                partner=partner,
                site_uuid=site_uuid,
                operation="create_lead",
                data={"source": "Zillow", "email": email, **fields},
            )
        return Lead.objects.get(pk=delivery.lead_id)

    return submit


def lead_url(lead: Lead) -> str:
    return reverse("portal:lead_detail", args=[lead.partner.slug, lead.lead_id])


def listed(client: Any, query: str = "") -> list[str]:
    """The emails of the listed leads, in page order (read from each row's lead link)."""
    response = client.get(reverse("portal:lead_list") + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return [lead.email for lead in response.context["leads"]]


def test_staff_see_only_their_partners_leads_and_superusers_see_every_partner(
    acme_client, superuser, partner, other_partner, site, send, rg
):
    root_client = Client()
    root_client.force_login(superuser)
    send(partner, "kai@example.com")
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    send(other_partner, "theirs@example.com", site_uuid=OTHER_SITE_UUID)

    assert listed(acme_client) == ["kai@example.com"]
    assert listed(root_client) == ["theirs@example.com", "kai@example.com"]
    assert listed(acme_client, f"partner={other_partner.slug}") == []  # not one of kim's choices
    page = acme_client.get(reverse("portal:lead_list")).content.decode()
    assert "theirs@example.com" not in page and "Other Co" not in page


def test_a_row_shows_status_http_status_and_error_from_the_leads_summary(acme_client, partner, site, send, rg):
    rg.answer((422, '{"error": "Property field \'full_baths\' is not a valid integer."}'))
    send(partner, "bad@example.com", first_name="Keoni")
    send(partner, "good@example.com", first_name="Kai")

    response = acme_client.get(reverse("portal:lead_list"))
    rows = {lead.email: lead for lead in response.context["leads"]}
    page = unescape(response.content.decode())

    assert (rows["bad@example.com"].status, rows["bad@example.com"].last_status_code) == ("failed", 422)
    assert (rows["good@example.com"].status, rows["good@example.com"].last_status_code) == ("delivered", 201)
    assert "Real Geeks answered 422: Property field 'full_baths' is not a valid integer." in page
    assert 'class="http client">422<' in page and 'class="http ok">201<' in page


@pytest.fixture
def many(partner, other_partner, site, send, rg):
    """Leads that differ in one way each, to tell the filters apart."""
    site_grant(partner=partner, site_uuid=SECOND_SITE_UUID, source=Site.Source.MANUAL, name="Mauka Realty")
    leads = {
        "kai": send(partner, "Kai.Akana@Example.com", first_name="Kai", last_name="Akana", phone="808-123-1234"),
        "mele": send(partner, "mele@example.com", first_name="Mele", phone="(808) 555-0110"),
        "second": send(partner, "second@example.com", site_uuid=SECOND_SITE_UUID, first_name="Noe"),
    }
    rg.answer((422, '{"error": "Field \'email\' is not a valid email address."}'))
    leads["failed"] = send(partner, "failed@example.com", first_name="Lani")
    rg.answer((503, "<html><title>503 Service Unavailable</title></html>"))
    leads["retrying"] = send(partner, "retrying@example.com")
    Lead.objects.filter(pk=leads["kai"].pk).update(created=datetime(2026, 3, 1, 12, tzinfo=UTC))
    with_update = leads["mele"]
    lead_submit(
        partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"notes": "x"}, lead_id=with_update.lead_id
    )
    return leads


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", ["failed@example.com"]),
        ("status=retrying", ["retrying@example.com"]),
        ("http_status=422", ["failed@example.com"]),
        ("http_status=503", ["retrying@example.com"]),
        (f"site={SECOND_SITE_UUID}", ["second@example.com"]),
        ("operation=update_lead", ["mele@example.com"]),
        ("created_from=2026-03-01&created_to=2026-03-01", ["Kai.Akana@Example.com"]),
        ("created_to=2026-03-02", ["Kai.Akana@Example.com"]),
        ("q=kai.akana@example.com", ["Kai.Akana@Example.com"]),  # a whole address, any case
        ("q=MELE", ["mele@example.com"]),  # name or email, any case
        ("q=Akana", ["Kai.Akana@Example.com"]),  # last name
        ("q=555-0110", ["mele@example.com"]),  # phone
        (f"q={SECOND_SITE_UUID}", ["second@example.com"]),  # site UUID
        ("q=nobody-here", []),
        ("status=failed&q=kai", []),  # filters combine
    ],
)
def test_each_filter_and_search_narrows_the_list(acme_client, many, query, expected):
    assert listed(acme_client, query) == expected


def test_search_by_lead_id_finds_that_lead(acme_client, many):
    lead = many["mele"]
    assert listed(acme_client, f"q={lead.lead_id}") == ["mele@example.com"]
    assert listed(acme_client, f"q={str(lead.lead_id).upper()}") == ["mele@example.com"]


def test_a_partner_filter_narrows_a_superusers_list(root_client, many, other_partner, send):
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    send(other_partner, "theirs@example.com", site_uuid=OTHER_SITE_UUID)

    assert listed(root_client, f"partner={other_partner.slug}") == ["theirs@example.com"]
    assert len(listed(root_client, f"partner={many['kai'].partner.slug}")) == 5


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("site=6f1d2c3b-4a5e-4f60-8a7b", "site", "That is not a site UUID."),
        ("site=not-a-uuid", "site", "That is not a site UUID."),
        ("http_status=abc", "http_status", "Enter an HTTP status code such as 422."),
        ("http_status=42", "http_status", "greater than or equal to 100"),
        ("created_from=2026-03-05&created_to=2026-03-01", "created_to", "The end date is before the start date."),
        ("created_from=2026-02-30", "created_from", "Enter a valid date."),
    ],
)
def test_bad_filters_are_refused_clearly_and_kept_in_the_form(acme_client, many, query, field, message):
    response = acme_client.get(reverse("portal:lead_list") + f"?{query}")

    assert response.status_code == 200
    assert response.context["leads"] == []
    assert any(message in error for error in response.context["form"].errors[field])
    typed = query.split("&")[-1 if field == "created_to" else 0].split("=", 1)[1]
    assert f'value="{typed}"' in response.content.decode()


def test_keyset_pages_walk_every_lead_once_in_order_and_back(acme_client, partner, site, send, rg, monkeypatch):
    monkeypatch.setattr("portal.views.leads.PAGE_SIZE", 3)
    made = [send(partner, f"p{n}@example.com") for n in range(8)]
    # Three leads share one timestamp: the id breaks the tie, so none is skipped or repeated.
    same = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    Lead.objects.filter(pk__in=[made[2].pk, made[3].pk, made[4].pk]).update(created=same)
    expected = [lead.email for lead in Lead.objects.order_by("-created", "-id")]

    pages, url = [], reverse("portal:lead_list") + "?status=delivered"
    for _ in range(10):
        response = acme_client.get(url)
        pages.append([lead.email for lead in response.context["leads"]])
        if not response.context["older_url"]:
            break
        url = reverse("portal:lead_list") + response.context["older_url"]
        assert "status=delivered" in url  # the filters travel with the cursor
    assert [email for page in pages for email in page] == expected
    assert [len(page) for page in pages] == [3, 3, 2]

    back = []
    for _ in range(10):
        if not response.context["newer_url"]:
            break
        response = acme_client.get(reverse("portal:lead_list") + response.context["newer_url"])
        back.append([lead.email for lead in response.context["leads"]])
    assert back == [pages[1], pages[0]]


def test_a_broken_cursor_shows_the_first_page(acme_client, partner, site, send, rg):
    send(partner, "kai@example.com")
    assert listed(acme_client, "after=12345678901234567890123.4") == ["kai@example.com"]
    assert listed(acme_client, "before=garbage") == ["kai@example.com"]


def test_a_list_cursor_is_the_leads_time_in_microseconds_and_its_id_and_reads_back():
    lead = Lead(pk=42, created=datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=UTC))

    assert cursor_for(lead) == "1777627800123456.42"  # links made before keep working
    assert cursor_parse("1777627800123456.42") == (lead.created, 42)
    # The last two: past the calendar's end, and Arabic-Indic digits int() would read.
    for broken in ("", "42", "1.2.3", "-1.2", "1.-2", " 1.2", "1.2\n", "999999999999999999.1", "\u0661.\u0662"):
        assert cursor_parse(broken) is None, broken


def test_the_list_runs_the_same_few_queries_for_a_page_of_any_length(
    acme_client, partner, site, send, rg, django_assert_max_num_queries
):
    send(partner, "one@example.com")
    with django_assert_max_num_queries(6) as few:
        acme_client.get(reverse("portal:lead_list"))
    for n in range(12):
        send(partner, f"more{n}@example.com", first_name=f"More{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = acme_client.get(reverse("portal:lead_list") + "?q=example")
    assert len(response.context["leads"]) == 13


def test_the_lead_page_shows_its_data_and_every_delivery_and_attempt(acme_client, acme_staff, partner, site, send, rg):
    rg.answer((503, '{"error": "Service Unavailable"}'))
    lead = send(partner, "kai@example.com", first_name="Kai", phone="808-123-1234")
    delivery = lead.deliveries.get()
    acme_client.post(reverse("portal:delivery_retry", args=[partner.slug, lead.lead_id, delivery.public_id]))
    pump_run(budget_seconds=5, idle_seconds=0)  # the retry's pump, as a worker runs it

    page = unescape(acme_client.get(lead_url(lead)).content.decode())

    assert "Kai" in page and "808-123-1234" in page and str(lead.lead_id) in page
    assert f"POST {settings.REALGEEKS_API_URL}/sites/{SITE_UUID}/leads" in page
    assert '"email": "kai@example.com"' in page  # the request body
    assert "Real Geeks answered 503: Service Unavailable" in page
    assert '"error": "Service Unavailable"' in page  # the response body
    assert "Automatic (on acceptance)" in page and "Manual retry" in page
    assert "by <strong>kim</strong>" in page  # who asked for the retry
    assert page.count("ms</td>") == 2  # each attempt's timing
    assert "delivery.retry" in page  # the staff action, in the lead's audit section


def test_the_lead_page_runs_the_same_few_queries_however_long_its_history(
    acme_client, partner, site, send, rg, django_assert_max_num_queries
):
    lead = send(partner, "kai@example.com")
    with django_assert_max_num_queries(10) as few:
        acme_client.get(lead_url(lead))
    for n in range(5):
        lead_submit(
            partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"notes": f"n{n}"}, lead_id=lead.lead_id
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = acme_client.get(lead_url(lead))
    assert len(response.context["timeline"]) == 6


def test_another_partners_lead_is_a_404_however_its_url_is_guessed(acme_client, partner, other_partner, site, send, rg):
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    theirs = send(other_partner, "theirs@example.com", site_uuid=OTHER_SITE_UUID)
    mine = send(partner, "mine@example.com")

    for slug, lead_id in [
        (other_partner.slug, theirs.lead_id),  # their slug and their lead
        (partner.slug, theirs.lead_id),  # my slug, their lead
        (other_partner.slug, mine.lead_id),  # their slug, my lead
        (partner.slug, uuid.uuid4()),  # no such lead
    ]:
        for name in ("lead_detail", "lead_edit", "lead_patch", "lead_activity", "lead_assign"):
            response = acme_client.get(reverse(f"portal:{name}", args=[slug, lead_id]))
            assert response.status_code == 404, (name, slug, lead_id)
            assert "theirs@example.com" not in response.content.decode()


def test_the_leads_pages_need_a_staff_login(client, django_user_model, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    for url in (reverse("portal:lead_list"), lead_url(lead), delivery_url(lead, lead.deliveries.get())):
        assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(django_user_model.objects.create_user("visitor", password="pw-visitor-123"))
    assert client.get(reverse("portal:lead_list")).status_code == 403


def test_no_secret_appears_on_any_leads_page(root_client, partner, other_partner, site, send, rg):
    rg.answer((401, '{"error": "Invalid credentials."}'))
    lead = send(partner, "kai@example.com")
    pages = [
        reverse("portal:lead_list"),
        lead_url(lead),
        delivery_url(lead, lead.deliveries.get()),
        reverse("portal:lead_edit", args=[partner.slug, lead.lead_id]),
        reverse("portal:lead_patch", args=[partner.slug, lead.lead_id]),
        reverse("portal:lead_activity", args=[partner.slug, lead.lead_id]),
        reverse("portal:lead_assign", args=[partner.slug, lead.lead_id]),
    ]
    for url in pages:
        response = root_client.get(url)
        assert response.status_code == 200, url
        for secret in SECRETS:
            assert secret not in response.content.decode(), (url, secret)


def test_the_main_navigation_links_to_the_leads(acme_client):
    page = acme_client.get(reverse("portal:lead_list")).content.decode()
    assert f'<a href="{reverse("portal:lead_list")}" class="current" aria-current="page">Leads</a>' in page


def test_dates_filter_whole_utc_days(acme_client, partner, site, send, rg):
    late = send(partner, "late@example.com")
    Lead.objects.filter(pk=late.pk).update(created=datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))
    early = send(partner, "early@example.com")
    Lead.objects.filter(pk=early.pk).update(created=datetime(2026, 3, 2, tzinfo=UTC))

    assert listed(acme_client, "created_to=2026-03-01") == ["late@example.com"]
    assert listed(acme_client, "created_from=2026-03-02") == ["early@example.com"]


def delivery_url(lead: Lead, delivery: Delivery) -> str:
    return reverse("portal:delivery_detail", args=[lead.partner.slug, lead.lead_id, delivery.public_id])


def walk(client: Any, url: str, link: str, listed: Any) -> list[list[Any]]:
    """What `listed(response)` gives on each page from `url` on, following the context's `link`."""
    pages = []
    for _ in range(20):
        response = client.get(url)
        assert response.status_code == 200
        pages.append(listed(response))
        if not response.context[link]:
            return pages
        url = response.context[link]
    raise AssertionError(f"{link} never ran out")


def sequences(response: Any) -> list[int]:
    return [item["delivery"].sequence for item in response.context["timeline"]]


def numbers(response: Any) -> list[int]:
    return [row["attempt"].number for row in response.context["item"]["attempts"]]


def test_the_lead_page_shows_its_latest_deliveries_and_pages_through_the_rest(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    long_history(lead, deliveries=300, attempts=60)

    response = acme_client.get(lead_url(lead))
    page = unescape(response.content.decode())
    pages = walk(acme_client, lead_url(lead), "older_url", sequences)

    assert sequences(response) == list(range(300, 250, -1))
    assert "deliveries #251 to #300 of 300" in page
    assert 'rel="next">Older deliveries' in page and "Newer deliveries" not in page
    assert [len(p) for p in pages] == [50] * 6
    assert [n for p in pages for n in p] == list(range(300, 0, -1))


def test_newer_links_walk_back_to_the_newest_deliveries(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    long_history(lead, deliveries=120, attempts=1)
    oldest = acme_client.get(lead_url(lead) + "?before=21")

    back = walk(acme_client, lead_url(lead) + "?before=21", "newer_url", sequences)

    assert sequences(oldest) == list(range(20, 0, -1)) and oldest.context["older_url"] is None
    assert back == [list(range(20, 0, -1)), list(range(70, 20, -1)), list(range(120, 70, -1))]
    assert acme_client.get(lead_url(lead) + "?after=70").context["newest_url"] is None


def test_a_delivery_shows_its_latest_attempts_and_its_own_page_has_the_rest(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    newest = long_history(lead, deliveries=2, attempts=60)

    response = acme_client.get(lead_url(lead))
    (item, _) = response.context["timeline"]
    page = unescape(response.content.decode())
    pages = walk(acme_client, item["older_attempts_url"], "older_url", numbers)
    own = acme_client.get(delivery_url(lead, newest))

    assert [row["attempt"].number for row in item["attempts"]] == list(range(60, 50, -1))
    assert item["older_attempts_url"] == delivery_url(lead, newest) + "?before=51"
    assert "The latest 10 of 60 attempts." in page
    assert [n for p in pages for n in p] == list(range(50, 0, -1))
    assert numbers(own) == list(range(60, 50, -1))
    assert "#51 to #60 of 60" in unescape(own.content.decode())
    assert "#2 Update lead" in unescape(own.content.decode())


def test_an_attempts_request_body_is_shown_cut_like_its_response_body(acme_client, partner, site, send, rg, settings):
    lead = send(partner, "kai@example.com")
    long_history(lead, deliveries=2, attempts=1)

    page = unescape(acme_client.get(lead_url(lead)).content.decode())

    assert REQUEST_BODY[: settings.ATTEMPT_BODY_MAX_CHARS] in page
    assert REQUEST_BODY[: settings.ATTEMPT_BODY_MAX_CHARS + 1] not in page


def test_the_lead_and_delivery_pages_run_the_same_few_queries_however_long_the_history(
    acme_client, partner, site, send, rg, django_assert_max_num_queries
):
    short = send(partner, "short@example.com")
    short_delivery_url = delivery_url(short, short.deliveries.get())
    with django_assert_max_num_queries(9) as few_on_the_lead:
        acme_client.get(lead_url(short))
    with django_assert_max_num_queries(6) as few_on_the_delivery:
        acme_client.get(short_delivery_url)
    lead = send(partner, "kai@example.com")
    newest = long_history(lead, deliveries=300, attempts=60)
    urls = (lead_url(lead) + "?before=200", delivery_url(lead, newest) + "?before=30")

    with django_assert_max_num_queries(len(few_on_the_lead.captured_queries)):
        response = acme_client.get(urls[0])
    with django_assert_max_num_queries(len(few_on_the_delivery.captured_queries)):
        acme_client.get(urls[1])
    assert len(response.context["timeline"]) == 50


def test_a_broken_delivery_or_attempt_cursor_shows_the_newest(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    newest = long_history(lead, deliveries=60, attempts=12)

    for query in ("before=garbage", "after=-3", "before=99999999999999999999"):
        assert sequences(acme_client.get(f"{lead_url(lead)}?{query}"))[0] == 60, query
        assert numbers(acme_client.get(f"{delivery_url(lead, newest)}?{query}"))[0] == 12, query


def test_a_delivery_page_is_a_404_for_another_partners_or_another_leads_delivery(
    acme_client, partner, other_partner, site, send, rg
):
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    theirs = send(other_partner, "theirs@example.com", site_uuid=OTHER_SITE_UUID)
    mine = send(partner, "mine@example.com")
    also_mine = send(partner, "also@example.com")

    for slug, lead, delivery in [
        (other_partner.slug, theirs, theirs.deliveries.get()),
        (partner.slug, theirs, theirs.deliveries.get()),
        (partner.slug, mine, theirs.deliveries.get()),
        (partner.slug, mine, also_mine.deliveries.get()),  # my delivery, but of another lead
    ]:
        url = reverse("portal:delivery_detail", args=[slug, lead.lead_id, delivery.public_id])
        assert acme_client.get(url).status_code == 404, url
    assert acme_client.get(delivery_url(mine, mine.deliveries.get())).status_code == 200

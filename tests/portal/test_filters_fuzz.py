"""Whatever a query string holds, a dashboard list answers with a page (its form saying what is
wrong), never a 500: for every list, each of its parameters and their combinations, as a
superuser and as a partner's staff."""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audit import audit_record
from grants.models import GrantEmail, Partner, Site, WebhookEvent
from leads.models import Delivery, DeliveryAttempt, Lead, Operation

pytestmark = pytest.mark.django_db

SITE = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
LEAD = uuid.UUID("0b6f3c52-3f0e-4d8e-9a57-1c2d3e4f5a6b")

# Values near the edges of what each kind of field reads: dates at the ends of the calendar,
# numbers past 64 bits, digits Python's int() reads but str.isdigit() disagrees about, NUL.
DATES = ["9999-12-31", "9999-12-30", "0001-01-01", "10000-01-01", "2026-02-30", "2026-13-01", "1/2/3"]
NUMBERS = ["99999999999999999999", "9223372036854775808", "9" * 5000, "-1", "0", "1.5", "1e999", "²", "١٢٣"]
CURSORS = ["999999999999999999.999999999999999999", "1.2", "0.0", str(uuid.UUID(int=0)), *NUMBERS]
WORDS = ["", "\x00", "acme-leads", "other-co", "none", str(SITE), SITE.hex.upper(), "open", "7d", "24h"]
WORDS += ["delivered", "needs_review", "create_lead", "site.grant", "failed", "GET", "POST"]
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def values_for(param: str) -> st.SearchStrategy[str]:
    """Values for one parameter: the edges of its kind, other words the pages know, any text."""
    kind = (
        DATES
        if param.startswith("created_")
        else CURSORS
        if param in ("after", "before", "older_than", "since_id")
        else NUMBERS
        if param in ("http_status", "status", "limit")
        else WORDS
    )
    return st.sampled_from(kind) | st.sampled_from(WORDS) | text


def lead_url(slug: str) -> str:
    return reverse("portal:lead_detail", args=[slug, LEAD])


# (name, path for a partner's slug, its parameters, method)
LISTS: list[tuple[str, Callable[[str], str], tuple[str, ...], str]] = [
    ("overview", lambda slug: reverse("home"), ("partner", "window"), "GET"),
    (
        "leads",
        lambda slug: reverse("portal:lead_list"),
        ("q", "partner", "site", "status", "operation", "http_status", "created_from", "created_to", "after", "before"),
        "GET",
    ),
    *(
        (
            f"bulk {method}",
            lambda slug: reverse("portal:bulk_retry"),
            ("partner", "status", "site", "operation", "created_from", "created_to", "http_status"),
            method,
        )
        for method in ("GET", "POST")
    ),
    ("audit", lambda slug: reverse("portal:audit_list"), ("partner", "action", "before"), "GET"),
    (
        "callbacks",
        lambda slug: reverse("portal:callback_list"),
        ("partner", "action", "state", "site", "older_than"),
        "GET",
    ),
    ("grant emails", lambda slug: reverse("portal:grant_email_list"), ("partner", "status", "older_than"), "GET"),
    ("sites", lambda slug: reverse("portal:site_list", args=[slug]), ("status", "circuit"), "GET"),
    ("lead", lead_url, ("before", "after"), "GET"),
    (
        "sandbox log",
        lambda slug: "/sandbox/requests.json",
        ("site", "lead_id", "method", "status", "since_id", "limit"),
        "GET",
    ),
]


@contextmanager
def postgresql_text_rules() -> Iterator[None]:
    """Refuse what PostgreSQL refuses and SQLite takes: NUL in a text parameter, an integer
    beyond 64 bits. The tests run on SQLite; production does not."""

    def execute(run: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        for param in params or ():
            if isinstance(param, str) and "\x00" in param:
                raise ValueError("PostgreSQL text cannot contain NUL")
            if isinstance(param, int) and not -(2**63) <= param < 2**63:
                raise OverflowError("beyond bigint")
        return run(sql, params, many, context)

    with connection.execute_wrapper(execute):
        yield


@pytest.fixture
def clients(partner: Partner, other_partner: Partner, django_user_model: Any) -> list[Client]:
    """Signed in as a superuser and as Acme's staff, over one lead, callback, grant email and
    audit entry of Acme's. The users have no password: hashing one costs more than a request."""
    root = django_user_model.objects.create_user("root", is_staff=True, is_superuser=True)
    staff = django_user_model.objects.create_user("kim", is_staff=True)
    partner.staff.add(staff)
    site = Site.objects.create(partner=partner, site_uuid=SITE, name="Main", source=Site.Source.MANUAL)
    lead = Lead.objects.create(partner=partner, site=site, lead_id=LEAD, email="kai@example.com")
    delivery = Delivery.objects.create(
        lead=lead, sequence=1, operation=Operation.CREATE_LEAD, payload={}, status=Delivery.Status.FAILED
    )
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, trigger="automatic", request_method="POST", request_url="https://rg.invalid/"
    )
    WebhookEvent.objects.create(partner=partner, action="created", body=b"{}", body_sha256="a" * 64, site_uuid=SITE)
    GrantEmail.objects.create(
        partner=partner, source=GrantEmail.Source.PASTE, dedupe_key="k", status=GrantEmail.Status.NEEDS_REVIEW
    )
    audit_record(actor=root, action="site.grant", obj=site, partner=partner)
    signed_in = []
    for user in (root, staff):
        client = Client()
        client.force_login(user)
        signed_in.append(client)
    return signed_in


CASES = [(name, path, param, params, method) for name, path, params, method in LISTS for param in params]


@pytest.mark.parametrize(
    ("name", "path", "param", "params", "method"), CASES, ids=[f"{case[0]}-{case[2]}" for case in CASES]
)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.data())
def test_no_value_of_a_filter_makes_a_list_fail(clients, partner, name, path, param, params, method, query):
    # The parameter under test, maybe with others: a form with one error never reaches the code
    # the other values would, so some examples give it just this one. The bulk form wants a partner first.
    others = query.draw(st.lists(st.sampled_from(params), unique=True, max_size=2), label="others")
    chosen = {"partner": partner.slug, **{other: query.draw(values_for(other), label=other) for other in others}}
    chosen[param] = query.draw(values_for(param), label=param)
    url = path(partner.slug)
    for client in clients:
        with postgresql_text_rules():
            response = client.post(url, chosen) if method == "POST" else client.get(url, chosen)
        assert response.status_code in (200, 302, 404), (name, chosen, response.status_code)


@pytest.mark.parametrize("path", ["/leads/", "/bulk/"])
def test_a_date_at_the_end_of_the_calendar_is_a_form_error_not_a_server_error(root_client, partner, path):
    query = {"partner": partner.slug, "created_from": "9999-12-31", "created_to": "9999-12-31"}
    for response in (root_client.get(path, query), root_client.post(path, query)):
        if response.status_code == 405:
            continue  # the leads list is GET only
        assert response.status_code == 200
        assert response.context["form"].errors["created_to"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/audit/", {"before": "²"}),  # a digit to str.isdigit(), not to int()
        ("/audit/", {"before": "9" * 30}),  # beyond SQLite's integers
        ("/audit/", {"partner": "\x00", "action": "\x00"}),
        ("/", {"partner": "\x00"}),
        ("/leads/", {"after": "999999999999999999.999999999999999999"}),
    ],
)
def test_values_at_the_edges_answer_a_page(clients, path, query):
    for client in clients:
        with postgresql_text_rules():
            assert client.get(path, query).status_code in (200, 404)


def test_an_audit_filter_naming_a_partner_the_user_cannot_see_is_a_form_error(clients, other_partner):
    _, staff = clients
    response = staff.get("/audit/", {"partner": other_partner.slug})
    assert response.status_code == 200
    assert response.context["form"].errors["partner"]
    assert list(response.context["entries"]) == []

"""A lead id is unique per partner only: two partners' products may push leads with the same id.
A caller who sees both (a superuser) must say which one they mean; a product's key only ever
finds its own partner's lead."""

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from grants.models import Partner
from grants.services import api_key_issue
from leads.models import Delivery, Lead
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID, basic

pytestmark = pytest.mark.django_db

SHARED_ID = uuid.UUID("5e0c1a7b-93d4-4c2e-8f6a-1b2c3d4e5f60")


def shared_lead(partner: Partner, email: str) -> Lead:
    delivery = lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="create_lead",
        data={"id": str(SHARED_ID), "source": "Zillow", "email": email},
    )
    return delivery.lead


@pytest.fixture
def both(partner: Partner, other_partner: Partner) -> tuple[Lead, Lead]:
    return shared_lead(partner, "acme@example.com"), shared_lead(other_partner, "other@example.com")


@pytest.fixture
def root(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def ambiguous(partner: Partner, other_partner: Partner) -> dict[str, str]:
    slugs = ", ".join(sorted([partner.slug, other_partner.slug]))
    return {
        "error": f"Lead {SHARED_ID} belongs to more than one partner ({slugs}): "
        "add ?partner=<slug> to say which one you mean."
    }


def test_a_superuser_asking_for_a_lead_id_two_partners_hold_gets_409_naming_both(root, both, partner, other_partner):
    for path in (f"/api/leads/{SHARED_ID}/", f"/api/leads/{SHARED_ID}/deliveries/"):
        response = root.get(path)

        assert response.status_code == 409, path
        assert response.json() == ambiguous(partner, other_partner)


def test_the_partner_parameter_chooses_which_partners_lead(root, both, partner, other_partner):
    acme = root.get(f"/api/leads/{SHARED_ID}/?partner={partner.slug}").json()
    other = root.get(f"/api/leads/{SHARED_ID}/?partner={other_partner.slug}").json()
    deliveries = root.get(f"/api/leads/{SHARED_ID}/deliveries/?partner={other_partner.slug}").json()

    assert (acme["partner"], acme["email"]) == (partner.slug, "acme@example.com")
    assert (other["partner"], other["email"]) == (other_partner.slug, "other@example.com")
    assert [d["id"] for d in deliveries["results"]] == [str(both[1].deliveries.get().public_id)]


def test_resending_an_ambiguous_lead_is_refused_and_sends_nothing(root, both, partner, other_partner):
    response = root.post(f"/api/leads/{SHARED_ID}/resend")

    assert response.status_code == 409
    assert response.json() == ambiguous(partner, other_partner)
    assert Delivery.objects.count() == 2


def test_resend_with_the_partner_parameter_resends_that_partners_lead_only(root, both, other_partner):
    response = root.post(f"/api/leads/{SHARED_ID}/resend?partner={other_partner.slug}")

    assert response.status_code == 202
    assert both[0].deliveries.count() == 1
    assert both[1].deliveries.count() == 2


def test_a_partner_that_lacks_the_lead_or_does_not_exist_is_a_404(root, both):
    lonely = Partner.objects.create(name="Lonely", slug="lonely", rg_username="l", rg_password="p")

    assert root.get(f"/api/leads/{SHARED_ID}/?partner={lonely.slug}").status_code == 404
    assert root.get(f"/api/leads/{SHARED_ID}/?partner=no-such-partner").status_code == 404


def test_a_key_only_ever_finds_its_own_partners_lead(both, partner, other_partner):
    key, secret = api_key_issue(partner=other_partner)
    product = Client(HTTP_AUTHORIZATION=basic(key.key_id, secret))

    mine = product.get(f"/api/leads/{SHARED_ID}/")
    someone_elses = product.get(f"/api/leads/{SHARED_ID}/?partner={partner.slug}")

    assert (mine.status_code, mine.json()["email"]) == (200, "other@example.com")
    assert someone_elses.status_code == 404


def test_the_dashboard_addresses_a_lead_by_partner_and_id_so_each_page_is_one_lead(root, both, partner, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    for lead, email in zip(both, ("acme@example.com", "other@example.com"), strict=True):
        page = root.get(reverse("portal:lead_detail", args=[lead.partner.slug, SHARED_ID])).content.decode()
        assert email in page
        assert ({"acme@example.com", "other@example.com"} - {email}).pop() not in page


def test_the_older_deliveries_link_of_a_lead_id_two_partners_hold_names_its_partner(root, both, partner, settings):
    settings.LEAD_PAGE_DELIVERIES = 1
    mine, _ = both
    lead_submit(
        partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"notes": "n"}, lead_id=mine.lead_id
    )
    body = root.get(f"/api/leads/{SHARED_ID}/", {"partner": partner.slug}).json()

    older = root.get(body["deliveries_next"])

    assert older.status_code == 200, older.json()
    assert [d["sequence"] for d in older.json()["results"]] == [1]

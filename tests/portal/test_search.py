"""The header's search box and its page (/search/), through Django's test client: the box on
every staff page, phone numbers found however they are typed, ids that go straight to their
page, scoping to the user's partners, and hostile input answered with a message."""

import uuid
from html import unescape
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from grants.models import Partner, Site
from leads.models import BulkRetry, Lead

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
OTHER_SITE_UUID = uuid.UUID("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")
KIM_ID = uuid.UUID("3c2b1a09-8f7e-4d6c-9b5a-49382716a5b4")
PHONE_FORMS = ["8085550199", "(808) 555-0199", "808.555.0199", "+1 808 555 0199", "5550199", "1-808-555-0199"]


@pytest.fixture
def site(partner: Partner) -> Site:
    return Site.objects.create(partner=partner, site_uuid=SITE_UUID, name="Aloha Homes", source=Site.Source.MANUAL)


@pytest.fixture
def other_site(other_partner: Partner) -> Site:
    return Site.objects.create(
        partner=other_partner, site_uuid=OTHER_SITE_UUID, name="Kona Realty", source=Site.Source.MANUAL
    )


def lead(site: Site, email: str, phone: str = "", name: str = "", lead_id: uuid.UUID | None = None) -> Lead:
    first, _, last = name.partition(" ")
    data = {"email": email, "phone": phone, "first_name": first, "last_name": last}
    return Lead.objects.create(
        partner=site.partner,
        site=site,
        lead_id=lead_id or uuid.uuid4(),
        data=data,
        email=email,
        phone=phone,
        name=name,
    )


def search(client, text: str):
    return client.get(f"/search/?{urlencode({'q': text})}")


def page_text(response) -> str:
    return unescape(response.content.decode())


def test_the_search_box_is_in_the_header_of_every_staff_page(root_client, partner, site):
    kim = lead(site, "kim@example.com", "808-555-0199", "Kim Lee", lead_id=KIM_ID)
    pages = [
        reverse("home"),
        reverse("portal:lead_list"),
        reverse("portal:lead_detail", args=[partner.slug, kim.lead_id]),
        reverse("portal:site_index"),
        reverse("portal:site_detail", args=[partner.slug, SITE_UUID]),
        reverse("portal:partner_list"),
        reverse("portal:bulk_retry"),
        reverse("portal:callback_list"),
        reverse("portal:grant_email_list"),
        reverse("portal:alert_list"),
        reverse("portal:audit_list"),
        reverse("portal:search") + "?q=kim",
    ]
    for path in pages:
        response = root_client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert '<form class="search" method="get" action="/search/" role="search">' in body, path
        assert '<label for="top-search"' in body and 'id="top-search" name="q"' in body, path


def test_people_not_signed_in_get_no_search_box_and_no_search(client):
    assert 'id="top-search"' not in client.get(reverse("login")).content.decode()
    response = search(client, "808-555-0199")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_staff_who_are_not_staff_accounts_are_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("pat", password="pat-password-123"))
    assert search(client, "kim").status_code == 403


@pytest.mark.parametrize("typed", PHONE_FORMS)
def test_a_phone_number_finds_the_lead_however_it_is_typed(root_client, site, typed):
    lead(site, "dashes@example.com", "808-555-0199", "Dash Person")
    lead(site, "plus@example.com", "+18085550199", "Plus Person")
    lead(site, "near@example.com", "808-555-0198", "Near Miss")

    response = search(root_client, typed)

    assert response.status_code == 200
    text = page_text(response)
    assert "dashes@example.com" in text and "plus@example.com" in text
    assert "near@example.com" not in text


@pytest.mark.parametrize("typed", ["(808) 555-0199", "+1 808 555 0199"])
def test_the_leads_list_finds_the_same_leads_by_phone(root_client, site, typed):
    lead(site, "dashes@example.com", "808-555-0199", "Dash Person")
    lead(site, "near@example.com", "808-555-0198", "Near Miss")

    text = page_text(root_client.get(f"/leads/?{urlencode({'q': typed})}"))

    assert "dashes@example.com" in text and "near@example.com" not in text


def test_email_and_name_still_match_in_part(root_client, site):
    lead(site, "kim.lee@example.com", "808-555-0199", "Kim Lee")
    lead(site, "pat@example.com", "808-555-0100", "Pat Doe")

    by_email = page_text(search(root_client, "KIM.LEE@"))
    by_name = page_text(search(root_client, "doe"))

    assert "kim.lee@example.com" in by_email and "pat@example.com" not in by_email
    assert "pat@example.com" in by_name and "kim.lee@example.com" not in by_name


def test_a_short_number_is_an_ordinary_substring_search(root_client, site):
    # Two digits are too few for the phone index; they still match anywhere, as before.
    lead(site, "lead42@example.com", "808-555-0100", "Kim Lee")
    lead(site, "pat@example.com", "808-555-0199", "Pat Doe")

    text = page_text(search(root_client, "42"))

    assert "lead42@example.com" in text and "pat@example.com" not in text


@pytest.mark.parametrize("written", [str(KIM_ID), KIM_ID.hex, str(KIM_ID).upper(), f"  {KIM_ID}  "])
def test_a_lead_id_goes_straight_to_the_lead(root_client, partner, site, written):
    lead(site, "kim@example.com", "808-555-0199", "Kim Lee", lead_id=KIM_ID)

    response = search(root_client, written)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:lead_detail", args=[partner.slug, KIM_ID])


def test_a_site_uuid_goes_straight_to_the_site(root_client, partner, site):
    response = search(root_client, SITE_UUID.hex)

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:site_detail", args=[partner.slug, SITE_UUID])


def test_a_bulk_jobs_id_goes_straight_to_the_job(root_client, partner):
    job = BulkRetry.objects.create(partner=partner)

    response = search(root_client, str(job.public_id))

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:bulk_retry_detail", args=[job.public_id])


def test_a_lead_id_two_partners_share_lists_both_leads(root_client, site, other_site):
    lead(site, "acme-kim@example.com", lead_id=KIM_ID)
    lead(other_site, "other-kim@example.com", lead_id=KIM_ID)

    response = search(root_client, str(KIM_ID))

    assert response.status_code == 200
    text = page_text(response)
    assert "acme-kim@example.com" in text and "other-kim@example.com" in text


def test_staff_find_nothing_of_a_partner_they_cannot_see(acme_client, site, other_site):
    hidden = lead(other_site, "hidden@example.com", "808-555-0199", "Hidden Person")

    for typed in ["808-555-0199", "hidden@example.com", "Hidden", str(hidden.lead_id), str(OTHER_SITE_UUID), "Kona"]:
        response = search(acme_client, typed)
        assert response.status_code == 200, typed
        text = page_text(response)
        assert "Hidden Person" not in text and "Kona Realty" not in text, typed
        assert f"/partners/{other_site.partner.slug}/" not in text, typed
        assert f"Nothing matches “{typed}”" in text, typed


def test_staff_without_partners_get_an_empty_result(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("new", password="new-password-123", is_staff=True))

    response = search(client, "808-555-0199")

    assert response.status_code == 200 and "Nothing matches" in page_text(response)


def test_partners_and_sites_are_found_by_name(root_client, partner, site, other_site):
    text = page_text(search(root_client, "aloha"))
    assert "Aloha Homes" in text and "Kona Realty" not in text

    text = page_text(search(root_client, "acme"))
    assert reverse("portal:partner_detail", args=[partner.slug]) in text


def test_the_first_leads_link_to_all_matching_leads_in_the_list(root_client, partner, site):
    for n in range(21):
        lead(site, f"lead{n}@example.com", f"808-555-01{n:02d}")

    text = page_text(search(root_client, "555-01"))

    assert text.count(f'href="/partners/{partner.slug}/leads/') == 20
    assert "lead20@example.com" in text and "lead0@example.com" not in text  # newest first
    assert '<a href="/leads/?q=555-01">All 20+ matching leads</a>' in text


def test_the_link_to_the_list_names_the_count_when_all_are_shown(root_client, site):
    lead(site, "kim@example.com", "808-555-0199", "Kim Lee")

    text = page_text(search(root_client, "kim"))

    assert '<a href="/leads/?q=kim">1 matching lead in the leads list</a>' in text


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("x" * 5000, "Search for at most 200 characters."),
        ("808\x00555", "Null characters are not allowed."),
        ("\x00", "Null characters are not allowed."),
        ("", "Type an email, phone number, name, partner, site or id to search for."),
        ("   ", "Type an email, phone number, name, partner, site or id to search for."),
    ],
)
def test_hostile_or_empty_input_gets_a_message(root_client, site, typed, message):
    response = search(root_client, typed)

    assert response.status_code == 200
    assert message in page_text(response)


@pytest.mark.parametrize(
    "typed",
    [
        "\u202egnp.exe",
        "🙂" * 60,
        "e\u0301\u0301\u0301",
        "%",
        "_",
        "\\",
        "' OR 1=1 --",
        "()",
        "+",
        "".join(chr(0xFF10 + int(digit)) for digit in "12345678" * 4),  # full-width: uuid.UUID takes it
        "{" + str(KIM_ID) + "}",
        "<script>alert(1)</script>",
    ],
)
def test_odd_text_is_searched_and_shown_safely(root_client, site, typed):
    lead(site, "kim@example.com", "808-555-0199", "Kim Lee")

    response = search(root_client, typed)

    assert response.status_code in (200, 302)
    if response.status_code == 200:
        body = response.content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "kim@example.com" not in body

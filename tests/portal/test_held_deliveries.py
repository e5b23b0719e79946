"""Held deliveries on the sites pages: the count and list, release (granted sites only) and cancel."""

import uuid

import pytest
from django.urls import reverse

from core.models import AuditEntry
from grants.models import Partner, Site
from leads.models import Delivery, Lead
from tests.leads.conftest import rg  # noqa: F401  (the fake Real Geeks fixture)

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("9a3c1e7b-2d4f-4b6a-8c0e-1f2a3b4c5d6e")


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def site_with_held(partner: Partner, status: str, emails=("ana@example.com", "bo@example.com")) -> Site:
    """A site in `status` with one held create per email (as the worker parks them)."""
    site = Site.objects.create(partner=partner, site_uuid=SITE_UUID, name="Aloha Homes", status=status, source="api")
    for email in emails:
        lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), email=email, status="held")
        Delivery.objects.create(
            lead=lead,
            sequence=1,
            operation="create_lead",
            payload={"id": str(lead.lead_id), "source": "Zillow", "email": email},
            status="held",
            last_error=f"Site {SITE_UUID} is not granted to this partner yet.",
        )
    return site


def statuses(site: Site) -> list[str]:
    return sorted(Delivery.objects.filter(lead__site=site).values_list("status", flat=True))


def test_the_site_pages_show_the_held_count_and_list(acme_client, partner):
    site_with_held(partner, Site.Status.PENDING)

    listing = acme_client.get(reverse("portal:site_list", args=[partner.slug])).content.decode()
    page = acme_client.get(reverse("portal:site_detail", args=[partner.slug, SITE_UUID])).content.decode()

    assert f'{SITE_UUID}/#held-deliveries">2</a>' in listing
    assert "2 waiting for this site's grant" in page
    assert "ana@example.com" in page and "bo@example.com" in page
    ana = Lead.objects.get(email="ana@example.com")
    assert reverse("portal:lead_detail", args=[partner.slug, ana.lead_id]) in page
    assert "Release is possible only then." in page
    assert "Cancel held deliveries" in page
    assert reverse("portal:site_held_release", args=[partner.slug, SITE_UUID]) not in page


def test_releasing_a_granted_sites_held_deliveries_sends_them_and_is_audited(
    acme_client,
    acme_staff,
    partner,
    rg,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    site = site_with_held(partner, Site.Status.ACTIVE)

    with django_capture_on_commit_callbacks(execute=True):
        response = acme_client.post(reverse("portal:site_held_release", args=[partner.slug, SITE_UUID]), follow=True)

    assert statuses(site) == ["delivered", "delivered"]
    assert sorted(body["email"] for _, _, body in rg.calls) == ["ana@example.com", "bo@example.com"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_id, entry.after) == (
        "site.release_held",
        acme_staff,
        str(SITE_UUID),
        {"released": 2},
    )
    assert "Released 2 held deliveries of Aloha Homes" in response.content.decode()


def test_releasing_for_an_ungranted_site_explains_and_changes_nothing(acme_client, partner, rg):  # noqa: F811
    site = site_with_held(partner, Site.Status.REVOKED)

    response = acme_client.post(reverse("portal:site_held_release", args=[partner.slug, SITE_UUID]), follow=True)

    content = response.content.decode()
    assert "Aloha Homes is revoked: Real Geeks would refuse these deliveries, so they stay held." in content
    assert statuses(site) == ["held", "held"]
    assert rg.calls == []
    assert not AuditEntry.objects.exists()


def test_cancelling_held_deliveries_cancels_them_and_is_audited(acme_client, acme_staff, partner, rg):  # noqa: F811
    site = site_with_held(partner, Site.Status.PENDING)

    response = acme_client.post(reverse("portal:site_held_cancel", args=[partner.slug, SITE_UUID]), follow=True)

    assert statuses(site) == ["cancelled", "cancelled"]
    assert list(Lead.objects.filter(site=site).values_list("status", flat=True)) == ["cancelled", "cancelled"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.after) == ("site.cancel_held", acme_staff, {"cancelled": 2})
    assert "Cancelled 2 deliveries of Aloha Homes" in response.content.decode()
    assert rg.calls == []


def test_staff_of_another_partner_can_neither_release_nor_cancel(acme_client, other_partner, rg):  # noqa: F811
    site = site_with_held(other_partner, Site.Status.ACTIVE)

    responses = [
        acme_client.post(reverse("portal:site_held_release", args=[other_partner.slug, SITE_UUID])),
        acme_client.post(reverse("portal:site_held_cancel", args=[other_partner.slug, SITE_UUID])),
        acme_client.get(reverse("portal:site_detail", args=[other_partner.slug, SITE_UUID])),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert statuses(site) == ["held", "held"]
    assert not AuditEntry.objects.exists()


def test_release_and_cancel_accept_only_post(acme_client, partner):
    site_with_held(partner, Site.Status.ACTIVE)

    for name in ("portal:site_held_release", "portal:site_held_cancel"):
        assert acme_client.get(reverse(name, args=[partner.slug, SITE_UUID])).status_code == 405

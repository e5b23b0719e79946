import uuid

import pytest
from django.urls import reverse

from core.models import AuditEntry
from grants.models import Site
from grants.services import site_grant, site_revoke
from tests.portal import test_lead_pages as pages

pytestmark = pytest.mark.django_db

# Real Geeks at the HTTP edge and leads sent through the real pipeline, as on the leads pages.
inline_tasks = pages.inline_tasks
rg = pages.rg
send = pages.send

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


def test_staff_grant_a_site_by_hand_and_it_becomes_active_with_its_history(acme_client, acme_staff, partner):
    response = acme_client.post(
        reverse("portal:site_grant", args=[partner.slug]),
        {"site_uuid": str(SITE_UUID), "name": "Sunset Realty", "note": "Owner emailed support"},
    )

    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:site_detail", args=[partner.slug, SITE_UUID])
    assert (site.status, site.source, site.name) == (Site.Status.ACTIVE, Site.Source.MANUAL, "Sunset Realty")
    change = site.status_changes.get()
    assert (change.actor, change.note) == (acme_staff, "Owner emailed support")
    entry = AuditEntry.objects.get(action="site.grant")
    assert (entry.object_id, entry.before) == (str(SITE_UUID), {"status": None})
    assert (entry.after or {})["status"] == "active"
    assert entry.reason == "Owner emailed support"

    page = acme_client.get(response["Location"]).content.decode()
    assert "Owner emailed support" in page
    assert "Granted by staff" in page
    assert "kim" in page


@pytest.mark.parametrize("typed", ["5d9b2f5e-7c1a-4e63-9d0b", "not-a-uuid", "5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4bzz"])
def test_a_malformed_uuid_is_refused_clearly_and_kept_in_the_form(acme_client, partner, typed):
    response = acme_client.post(
        reverse("portal:site_grant", args=[partner.slug]), {"site_uuid": typed, "name": "Typed Name"}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "That is not a site UUID." in content
    assert f'value="{typed}"' in content
    assert 'value="Typed Name"' in content
    assert not Site.objects.exists()
    assert not AuditEntry.objects.exists()


def test_granting_an_active_site_again_changes_nothing_and_is_not_audited(acme_client, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.CALLBACK)

    response = acme_client.post(
        reverse("portal:site_grant", args=[partner.slug]), {"site_uuid": str(SITE_UUID)}, follow=True
    )

    assert "already active" in response.content.decode()
    site = Site.objects.get()
    assert site.source == Site.Source.CALLBACK
    assert site.status_changes.count() == 1
    assert not AuditEntry.objects.exists()


def test_staff_revoke_a_site_with_a_reason(acme_client, acme_staff, partner):
    site = site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.EMAIL)

    response = acme_client.post(
        reverse("portal:site_revoke", args=[partner.slug, SITE_UUID]), {"note": "Client cancelled"}
    )

    assert response.status_code == 302
    site.refresh_from_db()
    assert site.status == Site.Status.REVOKED
    change = site.status_changes.all()[0]
    assert (change.to_status, change.actor, change.note) == ("revoked", acme_staff, "Client cancelled")
    entry = AuditEntry.objects.get(action="site.revoke")
    assert (entry.before, entry.after, entry.reason) == (
        {"status": "active"},
        {"status": "revoked"},
        "Client cancelled",
    )


def test_a_revoked_site_can_be_granted_again_from_its_page(acme_client, partner):
    site = site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.EMAIL)
    site_revoke(site=site, source=Site.Source.CALLBACK)

    page = acme_client.get(reverse("portal:site_detail", args=[partner.slug, SITE_UUID])).content.decode()
    assert "Grant again" in page
    acme_client.post(reverse("portal:site_grant", args=[partner.slug]), {"site_uuid": str(SITE_UUID)})

    site.refresh_from_db()
    assert site.status == Site.Status.ACTIVE
    assert [c.to_status for c in site.status_changes.all()] == ["active", "revoked", "active"]


def test_the_sites_page_shows_how_each_site_was_granted_and_the_grant_url(acme_client, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, name="Sunset Realty", source=Site.Source.CALLBACK)
    revoked = site_grant(partner=partner, site_uuid=uuid.uuid4(), name="Gone Homes", source=Site.Source.EMAIL)
    site_revoke(site=revoked, source=Site.Source.CALLBACK, note="integration_disabled")

    content = acme_client.get(reverse("portal:site_list", args=[partner.slug])).content.decode()

    assert "Sunset Realty" in content
    assert "Destination callback" in content
    assert "integration_disabled" in content
    assert partner.grant_url() in content
    assert 'data-copy-target="grant-url-acme-leads"' in content
    assert 'id="grant-url-acme-leads"' in content


def test_the_sites_page_filters_by_status(acme_client, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, name="Sunset Realty", source=Site.Source.CALLBACK)
    revoked = site_grant(partner=partner, site_uuid=uuid.uuid4(), name="Gone Homes", source=Site.Source.EMAIL)
    site_revoke(site=revoked, source=Site.Source.CALLBACK)

    content = acme_client.get(reverse("portal:site_list", args=[partner.slug]) + "?status=revoked").content.decode()

    assert "Gone Homes" in content
    assert "Sunset Realty" not in content


def test_a_partner_without_company_id_says_how_to_get_a_grant_url(acme_client, partner):
    partner.rg_company_id = ""
    partner.save()
    content = acme_client.get(reverse("portal:site_list", args=[partner.slug])).content.decode()
    assert "set the partner's RG company id" in content


def test_an_unknown_site_uuid_is_a_404(acme_client, partner):
    assert acme_client.get(reverse("portal:site_detail", args=[partner.slug, uuid.uuid4()])).status_code == 404
    assert acme_client.get(f"/partners/{partner.slug}/sites/not-a-uuid/").status_code == 404


def test_granting_a_site_says_how_many_held_deliveries_it_releases_before_and_after(acme_client, partner, send, rg):
    send(partner, "ana@example.com", site_uuid=SITE_UUID)
    send(partner, "kai@example.com", site_uuid=SITE_UUID)
    detail = reverse("portal:site_detail", args=[partner.slug, SITE_UUID])

    page = acme_client.get(detail).content.decode()
    assert 'data-confirm="Grant this site? Its 2 held deliveries will be sent to Real Geeks at once."' in page

    response = acme_client.post(reverse("portal:site_grant", args=[partner.slug]), {"site_uuid": str(SITE_UUID)})

    assert response["Location"] == detail
    assert "its 2 held deliveries are released and go out now" in acme_client.get(detail).content.decode()
    assert (AuditEntry.objects.get(action="site.grant").after or {})["held_released"] == 2

"""Staff of one partner never reach another partner's pages, whether linked or guessed."""

import uuid

import pytest
from django.urls import reverse

from grants.models import Site
from grants.services import api_key_issue, site_grant

OTHER_SITE = uuid.UUID("0b7e6a55-3f4c-4d2a-9e1b-6c8d7f0a1b2c")


@pytest.fixture
def other_partner_things(other_partner):
    site = site_grant(partner=other_partner, site_uuid=OTHER_SITE, name="Other Realty", source=Site.Source.COMMAND)
    key, _ = api_key_issue(partner=other_partner, label="other crm")
    return site, key


def test_dashboard_pages_send_anonymous_visitors_to_log_in(client, partner):
    for url in (
        reverse("portal:partner_list"),
        reverse("portal:partner_detail", args=[partner.slug]),
        reverse("portal:site_index"),
        reverse("portal:site_list", args=[partner.slug]),
        reverse("portal:audit_list"),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_a_signed_in_user_who_is_not_staff_is_refused(client, django_user_model, partner):
    user = django_user_model.objects.create_user("visitor", password="visitor-password-123")
    partner.staff.add(user)
    client.force_login(user)
    assert client.get(reverse("portal:site_list", args=[partner.slug])).status_code == 403


def test_staff_get_404_for_every_page_of_a_partner_they_do_not_belong_to(acme_client, other_partner_things):
    site, _ = other_partner_things
    slug = site.partner.slug
    for url in (
        reverse("portal:partner_detail", args=[slug]),
        reverse("portal:partner_edit", args=[slug]),
        reverse("portal:site_list", args=[slug]),
        reverse("portal:site_detail", args=[slug, site.site_uuid]),
    ):
        assert acme_client.get(url).status_code == 404, url


def test_staff_cannot_act_on_another_partners_sites_or_keys(acme_client, other_partner_things):
    site, key = other_partner_things
    slug = site.partner.slug

    responses = [
        acme_client.post(reverse("portal:site_revoke", args=[slug, site.site_uuid])),
        acme_client.post(reverse("portal:site_grant", args=[slug]), {"site_uuid": str(uuid.uuid4())}),
        acme_client.post(reverse("portal:api_key_issue", args=[slug]), {"label": "sneaky"}),
        acme_client.post(reverse("portal:api_key_revoke", args=[slug, key.key_id])),
        acme_client.post(reverse("portal:partner_edit", args=[slug]), {"name": "Taken over"}),
    ]

    assert [r.status_code for r in responses] == [404] * 5
    site.refresh_from_db()
    key.refresh_from_db()
    assert site.status == Site.Status.ACTIVE
    assert key.revoked_at is None
    assert site.partner.api_keys.count() == 1
    assert site.partner.sites.count() == 1


def test_a_key_is_found_only_under_its_own_partner(acme_client, partner, other_partner_things):
    _, other_key = other_partner_things
    response = acme_client.post(reverse("portal:api_key_revoke", args=[partner.slug, other_key.key_id]))
    assert response.status_code == 404
    other_key.refresh_from_db()
    assert other_key.revoked_at is None


def test_lists_show_only_the_staff_members_partners(acme_client, other_partner_things):
    for url in (reverse("portal:partner_list"), reverse("portal:site_index"), reverse("home")):
        content = acme_client.get(url).content.decode()
        assert "Acme Leads" in content, url
        assert "Other Co" not in content, url


def test_superusers_see_every_partner(root_client, partner, other_partner):
    content = root_client.get(reverse("portal:partner_list")).content.decode()
    assert "Acme Leads" in content
    assert "Other Co" in content


def test_only_superusers_may_create_partners(acme_client):
    assert acme_client.get(reverse("portal:partner_create")).status_code == 403


def test_the_audit_page_hides_other_partners_entries(acme_client, acme_staff, partner, other_partner_things):
    acme_client.post(reverse("portal:api_key_issue", args=[partner.slug]), {"label": "mine"})
    from core.audit import audit_record

    site, _ = other_partner_things
    audit_record(actor=None, action="site.revoke", obj=site, partner=site.partner, reason="other partner's secret plan")

    content = acme_client.get(reverse("portal:audit_list")).content.decode()
    assert "api_key.issue" in content
    assert "other partner&#x27;s secret plan" not in content
    assert "other partner's secret plan" not in content

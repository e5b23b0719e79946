"""A site's delivery circuit on the dashboard: the badge on the sites pages, the notice on a lead's
page, the overview's count, and "Resume now" (POST only, partner-scoped, audited)."""

import uuid
from datetime import datetime, timedelta
from html import unescape

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from grants.models import Partner, Site
from grants.services import site_grant
from leads.models import Delivery, Lead
from leads.services import lead_submit
from tests.leads.conftest import rg  # noqa: F401  (the fake Real Geeks fixture)

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("3e1f7a2c-9b4d-4c8e-a6f0-2d5b8c1e7a94")
CALM_SITE_UUID = uuid.UUID("7c2d9e4f-1a6b-4d3c-8e5f-0a9b8c7d6e5f")
ERROR = "RG answered 503: upstream connect error or disconnect/reset before headers"


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def site_for(partner: Partner, site_uuid: uuid.UUID = SITE_UUID, name: str = "Aloha Homes") -> Site:
    return site_grant(partner=partner, site_uuid=site_uuid, source=Site.Source.MANUAL, name=name)


def trip(site: Site, *, retry_in: timedelta = timedelta(minutes=5), error: str = ERROR, failures: int = 5) -> datetime:
    """Open the site's circuit as the delivery engine does after `failures` 5xx answers; returns retry_at."""
    now = timezone.now()
    retry_at = now + retry_in
    Site.objects.filter(pk=site.pk).update(
        circuit_failures=failures, circuit_opened_at=now, circuit_open_until=retry_at, circuit_last_error=error
    )
    site.refresh_from_db()
    return retry_at


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def resume_url(site: Site) -> str:
    return reverse("portal:site_circuit_resume", args=[site.partner.slug, site.site_uuid])


def test_the_site_page_shows_an_open_circuit_with_resume_now(acme_client, partner):
    site = site_for(partner)
    retry_at = trip(site)

    content = page(acme_client, reverse("portal:site_detail", args=[partner.slug, SITE_UUID]))

    assert f'action="{resume_url(site)}"' in content
    assert "Resume now" in content
    assert (
        f'{retry_at:%Y-%m-%d %H:%M:%S} UTC · <span class="ago">in 4 min</span></time>: deliveries wait until then'
        in content
    )
    assert ERROR in content
    assert "Circuit open" in content


def test_a_closed_circuit_offers_no_resume(acme_client, partner):
    site = site_for(partner)

    content = page(acme_client, reverse("portal:site_detail", args=[partner.slug, SITE_UUID]))

    assert resume_url(site) not in content
    assert "Deliveries to this site go out." in content
    assert "Circuit open" not in content


def test_resume_now_closes_the_circuit_is_audited_and_says_so(acme_client, acme_staff, partner):
    site = site_for(partner)
    retry_at = trip(site)

    response = acme_client.post(resume_url(site))

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:site_detail", args=[partner.slug, SITE_UUID]) + "#circuit"
    site.refresh_from_db()
    assert (site.circuit_is_open, site.circuit_failures, site.circuit_open_until) == (False, 0, None)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.partner, entry.object_id) == (
        "site.circuit_resume",
        acme_staff,
        partner,
        str(SITE_UUID),
    )
    assert entry.before == {
        "circuit": "open",
        "consecutive_failures": 5,
        "retry_at": DjangoJSONEncoder().default(retry_at),
        "last_error": ERROR,
    }
    assert entry.after == {"circuit": "closed", "consecutive_failures": 0}
    content = page(acme_client, response["Location"])
    assert "Resumed deliveries to Aloha Homes" in content
    assert "Resume now" not in content


def test_resume_now_sends_the_deliveries_that_waited(
    acme_client,
    partner,
    rg,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    site = site_for(partner)
    trip(site)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = lead_submit(
            partner=partner, site_uuid=SITE_UUID, operation="create_lead", data={"source": "Zillow", "email": "a@b.co"}
        )
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.PENDING
    assert rg.calls == []

    with django_capture_on_commit_callbacks(execute=True):
        acme_client.post(resume_url(site))

    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DELIVERED
    assert [method for method, _, _ in rg.calls] == ["POST"]


def test_resuming_a_closed_circuit_changes_nothing_and_is_not_audited(acme_client, partner):
    site = site_for(partner)
    Site.objects.filter(pk=site.pk).update(circuit_failures=2)

    response = acme_client.post(resume_url(site), follow=True)

    assert "was already closed; nothing changed" in response.content.decode()
    assert Site.objects.get(pk=site.pk).circuit_failures == 2
    assert not AuditEntry.objects.exists()


def test_staff_of_another_partner_get_a_404_and_the_circuit_stays_open(acme_client, other_partner):
    theirs = site_for(other_partner)
    trip(theirs)

    responses = [
        acme_client.post(resume_url(theirs)),
        acme_client.get(reverse("portal:site_detail", args=[other_partner.slug, SITE_UUID])),
    ]

    assert [r.status_code for r in responses] == [404, 404]
    assert Site.objects.get(pk=theirs.pk).circuit_is_open
    assert not AuditEntry.objects.exists()


def test_a_site_of_another_partner_is_not_found_under_ones_own(acme_client, partner, other_partner):
    theirs = site_for(other_partner)
    trip(theirs)

    response = acme_client.post(reverse("portal:site_circuit_resume", args=[partner.slug, SITE_UUID]))

    assert response.status_code == 404
    assert Site.objects.get(pk=theirs.pk).circuit_is_open


def test_resume_accepts_only_post(acme_client, partner):
    site = site_for(partner)
    trip(site)

    assert acme_client.get(resume_url(site)).status_code == 405
    assert Site.objects.get(pk=site.pk).circuit_is_open


def test_resume_needs_the_csrf_token(acme_staff, partner):
    site = site_for(partner)
    trip(site)
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme_staff)

    assert client.post(resume_url(site)).status_code == 403
    assert Site.objects.get(pk=site.pk).circuit_is_open


def test_the_sites_list_badges_open_circuits_and_clips_long_errors(acme_client, partner):
    site_for(partner, CALM_SITE_UUID, name="Calm Realty")
    long_error = "RG answered 502: " + "bad gateway " * 40
    retry_at = trip(site_for(partner), error=long_error.strip())

    content = page(acme_client, reverse("portal:site_list", args=[partner.slug]))
    only_open = page(acme_client, reverse("portal:site_list", args=[partner.slug]) + "?circuit=open")

    assert content.count("Circuit open</a>") == 1
    assert f'retries <time class="when" datetime="{retry_at:%Y-%m-%dT%H:%M:%S}Z"' in content
    assert f'{retry_at:%m-%d %H:%M} UTC · <span class="ago">in 4m</span></time> · 5 failures' in content
    # Clipped with an ellipsis by CSS, the whole error in the tooltip.
    assert f'<small class="clip error" title="{long_error.strip()}">' in content
    assert "Circuit open (1)" in content
    assert "Aloha Homes" in only_open and "Calm Realty" not in only_open


def test_a_probing_circuit_is_shown_as_probing(acme_client, partner):
    trip(site_for(partner), retry_in=timedelta(seconds=-1))

    listed = page(acme_client, reverse("portal:site_list", args=[partner.slug]))
    detail = page(acme_client, reverse("portal:site_detail", args=[partner.slug, SITE_UUID]))

    assert "Probing</a>" in listed and "probe due" in listed
    assert "due now: one delivery tests the site" in detail
    assert "Resume now" in detail


def test_the_sites_index_counts_open_circuits_per_partner(acme_client, partner):
    trip(site_for(partner))
    site_for(partner, CALM_SITE_UUID, name="Calm Realty")

    content = page(acme_client, reverse("portal:site_index"))

    link = reverse("portal:site_list", args=[partner.slug]) + "?circuit=open"
    assert f'<a class="status circuit-open" href="{link}">1</a>' in content


def test_the_overview_counts_open_circuits_and_links_to_them(acme_client, partner, other_partner):
    trip(site_for(partner))
    trip(site_for(other_partner))  # not this user's partner: not counted

    content = page(acme_client, reverse("home"))

    tile = content.split('id="open-circuits"', 1)[1].split("</div>", 1)[0]
    assert '<span class="value bad">1</span>' in tile
    assert f'href="{reverse("portal:site_list", args=[partner.slug])}?circuit=open"' in tile


def lead_on(site: Site) -> Lead:
    """A lead accepted for the site; its delivery waits (on-commit work never runs in a test transaction)."""
    data = {"source": "Zillow", "email": "kai@example.com", "first_name": "Kai"}
    return lead_submit(partner=site.partner, site_uuid=site.site_uuid, operation="create_lead", data=data).lead


def test_the_lead_page_says_when_its_sites_circuit_is_open(acme_client, partner):
    site = site_for(partner)
    lead = lead_on(site)
    retry_at = trip(site, failures=7)
    lead_url = reverse("portal:lead_detail", args=[partner.slug, lead.lead_id])

    content = " ".join(page(acme_client, lead_url).split())

    assert (
        f"Real Geeks failed 7 times in a row for this site</strong>; deliveries wait until "
        f'<time class="when" datetime="{retry_at:%Y-%m-%dT%H:%M:%S}Z"' in content
    )
    assert f'{retry_at:%m-%d %H:%M} UTC · <span class="ago">in 4m</span></time>.' in content
    assert f'action="{resume_url(site)}"' in content
    assert f'name="next" value="{lead_url}"' in content


def test_the_lead_page_has_no_notice_while_the_circuit_is_closed(acme_client, partner):
    lead = lead_on(site_for(partner))

    content = page(acme_client, reverse("portal:lead_detail", args=[partner.slug, lead.lead_id]))

    assert 'id="circuit-notice"' not in content
    assert "in a row for this site" not in content


def test_resume_from_the_lead_page_comes_back_to_it(acme_client, partner):
    site = site_for(partner)
    lead = lead_on(site)
    trip(site)
    lead_url = reverse("portal:lead_detail", args=[partner.slug, lead.lead_id])

    response = acme_client.post(resume_url(site), {"next": lead_url})

    assert response["Location"] == lead_url
    assert not Site.objects.get(pk=site.pk).circuit_is_open
    assert 'id="circuit-notice"' not in page(acme_client, lead_url)


def test_resume_never_redirects_off_the_portal(acme_client, partner):
    site = site_for(partner)
    trip(site)

    response = acme_client.post(resume_url(site), {"next": "https://evil.example/phish"})

    assert response["Location"] == reverse("portal:site_detail", args=[partner.slug, SITE_UUID]) + "#circuit"

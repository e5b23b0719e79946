import uuid

import pytest
from django.urls import reverse

from core.audit import audit_record
from core.models import AuditEntry
from grants.models import Site
from grants.services import site_grant

pytestmark = pytest.mark.django_db


def test_audit_record_stores_who_what_and_a_json_safe_before_and_after(partner, superuser):
    site = site_grant(partner=partner, site_uuid=uuid.UUID(int=7), source=Site.Source.MANUAL)

    entry = audit_record(
        actor=superuser,
        action="site.grant",
        obj=site,
        partner=partner,
        before={"status": None},
        after={"status": "active", "granted_at": site.granted_at, "site_uuid": site.site_uuid},
        reason="phone call",
    )

    entry.refresh_from_db()
    assert site.granted_at is not None
    assert (entry.actor, entry.partner, entry.object_type, entry.object_id) == (
        superuser,
        partner,
        "site",
        str(uuid.UUID(int=7)),
    )
    assert (entry.after or {})["site_uuid"] == str(uuid.UUID(int=7))
    assert (entry.after or {})["granted_at"].startswith(site.granted_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert entry.changes()[0] == ("status", None, "active")


def test_the_audit_page_pages_by_id_and_filters_by_action(root_client, partner, superuser):
    for n in range(55):
        audit_record(actor=superuser, action="api_key.issue", obj=partner, partner=partner, reason=f"entry-{n:02d}")
    audit_record(actor=superuser, action="site.revoke", obj=partner, partner=partner, reason="the-revoke")

    first = root_client.get(reverse("portal:audit_list"))
    older = root_client.get(reverse("portal:audit_list") + f"?before={first.context['next_before']}")
    filtered = root_client.get(reverse("portal:audit_list") + "?action=site.revoke")

    assert [e.reason for e in first.context["entries"]][:2] == ["the-revoke", "entry-54"]
    assert len(first.context["entries"]) == 50
    assert [e.reason for e in older.context["entries"]] == [f"entry-{n:02d}" for n in range(5, -1, -1)]
    assert older.context["next_before"] is None
    assert [e.reason for e in filtered.context["entries"]] == ["the-revoke"]


def test_the_audit_page_ignores_a_malformed_cursor(root_client, partner, superuser):
    audit_record(actor=superuser, action="site.grant", obj=partner, partner=partner)
    response = root_client.get(reverse("portal:audit_list") + "?before=drop%20table")
    assert response.status_code == 200
    assert len(response.context["entries"]) == AuditEntry.objects.count()

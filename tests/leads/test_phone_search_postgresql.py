"""Phone search on PostgreSQL: the migration's trigram index must serve the query the dashboard
builds (leads.search.PhoneDigits), or a search for part of a phone number reads every lead.

Sixty thousand generated leads are enough for the planner to choose as it would in production; the
test pins a Bitmap Index Scan on `lead_phone_digits_trgm`, and that every way of typing the
number finds the leads stored either way."""

import json

import pytest

# The integration fixtures, used here by name (they live in tests/integration/conftest.py).
from tests.integration.conftest import postgres  # noqa: F401
from tests.leads.test_stats_postgresql import manage

pytestmark = pytest.mark.integration

LEADS = 60_000

SEED_AND_EXPLAIN = """
import json, uuid
from django.db import connection
from grants.models import Site
from grants.services import partner_create
from leads.models import Lead

partner = partner_create(name="PG", rg_username="pg", rg_password="pw", webhook_secret="ws")
site = Site.objects.create(partner=partner, site_uuid=uuid.uuid4(), source=Site.Source.MANUAL)
with connection.cursor() as cursor:
    # Like bench/dashboard.py: phones 808-555-0000 to 808-555-9999, so a number's last four
    # digits find 1 lead in 10,000.
    cursor.execute(
        "INSERT INTO leads_lead (partner_id, site_id, lead_id, data, email, name, phone, status, "
        "created_elsewhere, last_sequence, activity_count, last_error, created, updated) "
        "SELECT %s, %s, md5('pg-lead-' || i)::uuid, '{}', 'lead' || i || '@example.com', 'Lead ' || i, "
        "'808-555-' || lpad((i %% 10000)::text, 4, '0'), 'delivered', false, 1, 0, '', "
        "now() - i * interval '1 second', now() - i * interval '1 second' "
        "FROM generate_series(1, %s) i",
        [partner.pk, site.pk, LEADS],
    )
    cursor.execute("ANALYZE leads_lead")
Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), phone="+18085550199", email="plus@example.com")

def page(text, **scope):
    # The leads list's first page: newest first, one more than a page.
    return Lead.objects.filter(**scope).search(text).order_by("-created", "-id")[:51]

found = {
    typed: sorted({lead.email for lead in page(typed) if lead.email in ("lead10199@example.com", "plus@example.com")})
    for typed in ["8085550199", "(808) 555-0199", "808.555.0199", "+1 808 555 0199", "5550199"]
}
print(json.dumps({
    "found": found,
    "fragment_count": Lead.objects.search("555-0042").count(),
    "plan_all": page("555-0042").explain(),
    "plan_partner": page("555-0042", partner_id=partner.pk).explain(),
}))
""".replace("LEADS", str(LEADS))


def test_a_phone_fragment_is_found_through_the_trigram_index(postgres, tmp_path):  # noqa: F811
    url = postgres.create_database("leads_phone_search")
    manage(url, tmp_path, "migrate", "--noinput")

    printed = json.loads(manage(url, tmp_path, "shell", "-c", SEED_AND_EXPLAIN).strip().splitlines()[-1])

    both = ["lead10199@example.com", "plus@example.com"]
    assert printed["found"] == {typed: both for typed in printed["found"]}
    assert printed["fragment_count"] == LEADS // 10_000
    for plan in (printed["plan_all"], printed["plan_partner"]):
        assert "Bitmap Index Scan on lead_phone_digits_trgm" in plan, plan

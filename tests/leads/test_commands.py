import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leads.models import Delivery, Lead
from leads.services import lead_submit
from tests.leads.conftest import OTHER_SITE_UUID, SITE_UUID

pytestmark = pytest.mark.django_db
LEAD_ID = "2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f"
JOB = {
    "host": "receivers.leadrouter.realgeeks.com",
    "auth": ["acme", "rg-password-acme"],
    "method": "create_lead",
    "params": {"site_uuid": str(SITE_UUID), "lead": {"id": LEAD_ID, "source": "Zillow", "email": "jack@gmail.com"}},
}


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_send_queues_an_rg_job_for_the_partner_named_by_its_rg_username(tmp_path, partner, site):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(JOB))

    delivery_id, lead_id, status = run("send", str(path)).split()

    delivery = Delivery.objects.get(public_id=delivery_id)
    assert (lead_id, status, delivery.origin) == (LEAD_ID, "pending", "command")
    assert delivery.lead.partner == partner and delivery.payload["email"] == "jack@gmail.com"


def test_send_replays_the_failure_that_rgs_subscriber_logged(tmp_path, partner, site):
    update = {
        "method": "update_lead",
        "params": {"site_uuid": str(SITE_UUID), "lead_uuid": LEAD_ID, "lead": {"notes": "Call at 5"}},
    }
    logged = {"parsed_job_body": update, "job_id": 17, "response_status": 503, "log_level": "WARNING"}
    path = tmp_path / "alert.log"
    path.write_text("2016-03-01 10:00:00 WARNING leadrouter " + json.dumps(logged))

    run("send", str(path), "--partner", partner.slug)

    delivery = Delivery.objects.get()
    assert (delivery.operation, str(delivery.lead.lead_id), delivery.payload) == (
        "update_lead",
        LEAD_ID,
        {"notes": "Call at 5"},
    )


def test_send_refuses_a_job_rg_would_refuse_and_never_prints_the_rg_password(tmp_path, partner, site):
    bad = {**JOB, "params": {"site_uuid": str(SITE_UUID), "lead": {"email": "jack@gmail.com"}}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(bad))

    with pytest.raises(CommandError) as caught:
        run("send", str(path))

    assert str(caught.value) == "Refused (422): Field 'source' is required."
    assert Lead.objects.count() == 0


def test_send_needs_a_partner_it_can_tell(tmp_path, partner, other_partner):
    path = tmp_path / "job.json"
    path.write_text(json.dumps({**JOB, "auth": ["nobody", "x"]}))
    with pytest.raises(CommandError, match="--partner"):
        run("send", str(path))


def fail(partner, site_uuid, status="failed", updated_days_ago=0) -> Delivery:
    delivery = lead_submit(
        partner=partner, site_uuid=site_uuid, operation="create_lead", data={"source": "Zillow", "phone": "808"}
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, updated=timezone.now() - timedelta(days=updated_days_ago)
    )
    return delivery


def test_retry_failed_queues_failed_and_dead_deliveries_matching_the_filters(partner, other_partner, site):
    recent = fail(partner, SITE_UUID)
    dead = fail(partner, SITE_UUID, status="dead")
    old = fail(partner, SITE_UUID, updated_days_ago=10)
    elsewhere = fail(partner, OTHER_SITE_UUID)
    theirs = fail(other_partner, SITE_UUID)

    assert run("retry_failed", "--partner", partner.slug, "--site", str(SITE_UUID), "--since", "7d") == (
        "2 deliveries queued for retry"
    )
    statuses = {d.pk: Delivery.objects.get(pk=d.pk).status for d in (recent, dead, old, elsewhere, theirs)}
    assert statuses == {
        recent.pk: "pending",
        dead.pk: "pending",
        old.pk: "failed",
        elsewhere.pk: "failed",
        theirs.pk: "failed",
    }
    assert run("retry_failed") == "3 deliveries queued for retry"


def test_retry_failed_explains_a_bad_since():
    with pytest.raises(CommandError, match="--since"):
        run("retry_failed", "--since", "last tuesday")

"""A lead with a long history, for the tests that page through it (the read API, the lead's
page): rows written directly, since hundreds of pushes and retries through the pipeline would
only make the tests slow."""

from leads.models import Delivery, DeliveryAttempt, Lead

# Longer than ATTEMPT_BODY_MAX_CHARS: attempts store the whole body they sent.
REQUEST_BODY = '{"notes": "' + "x" * 10_000 + '"}'


def long_history(lead: Lead, *, deliveries: int = 300, attempts: int = 60) -> Delivery:
    """Give `lead` (which has its create, #1) updates up to delivery #`deliveries`, and give the
    newest `attempts` failed attempts. Returns the newest delivery."""
    Delivery.objects.bulk_create(
        Delivery(
            lead=lead,
            sequence=n,
            operation="update_lead",
            payload={"notes": f"call {n}"},
            status=Delivery.Status.DELIVERED,
        )
        for n in range(2, deliveries + 1)
    )
    Lead.objects.filter(pk=lead.pk).update(last_sequence=deliveries)
    newest = lead.deliveries.get(sequence=deliveries)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=newest,
            number=n,
            trigger="sweeper",
            request_method="PATCH",
            request_url=f"https://receivers.example.com/rest/sites/x/leads/{lead.lead_id}",
            request_body=REQUEST_BODY,
            response_status=503,
            response_body=f"down ({n})",
            error="Real Geeks answered 503: down",
            outcome="retry",
        )
        for n in range(1, attempts + 1)
    )
    Delivery.objects.filter(pk=newest.pk).update(status=Delivery.Status.FAILED, attempt_count=attempts)
    newest.refresh_from_db()
    return newest

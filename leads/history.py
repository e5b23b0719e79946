"""A lead's deliveries and their attempts, read a bounded page at a time (the lead's dashboard page
and its API document): however many deliveries and attempts a lead has, a page holds at most
LEAD_PAGE_DELIVERIES deliveries with their latest LEAD_PAGE_ATTEMPTS attempts each."""

from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Left

from leads.models import Delivery, DeliveryAttempt, Lead

# Where the prefetches below leave what they read: a sliced prefetch needs an attribute of its
# own (Django cannot put one behind the related manager, `lead.deliveries.all()`).
LATEST_DELIVERIES = "latest_deliveries"
LATEST_ATTEMPTS = "latest_attempts"
REQUEST_BODY_HEAD = "request_body_head"


def attempts_newest_first() -> QuerySet[DeliveryAttempt]:
    """Attempts, newest first, with their actor, and the first ATTEMPT_BODY_MAX_CHARS characters
    of their request body (`request_body_head`) instead of the body.

    Attempts are now stored with both bodies cut to that length (leads.delivery), but attempts
    written before that hold the whole body they sent, a copy of their delivery's payload (up to
    PUSH_MAX_BODY_BYTES): read whole, a page of them could be hundreds of megabytes.
    """
    head = Left("request_body", settings.ATTEMPT_BODY_MAX_CHARS)
    return (
        DeliveryAttempt.objects.select_related("actor")
        .defer("request_body")
        .annotate(**{REQUEST_BODY_HEAD: head})
        .order_by("-number")
    )


def latest_attempts() -> "Prefetch[Any, Any, Any]":
    """For `prefetch_related` on deliveries: each delivery's latest LEAD_PAGE_ATTEMPTS attempts
    (`attempts_of`), read for all of them in one query."""
    latest = attempts_newest_first()[: settings.LEAD_PAGE_ATTEMPTS]
    return Prefetch("attempts", queryset=latest, to_attr=LATEST_ATTEMPTS)


def latest_deliveries() -> "Prefetch[Any, Any, Any]":
    """For `prefetch_related` on leads: each lead's latest LEAD_PAGE_DELIVERIES deliveries, newest
    first (`deliveries_of`), each with its latest attempts."""
    latest = Delivery.objects.prefetch_related(latest_attempts()).order_by("-sequence")
    return Prefetch("deliveries", queryset=latest[: settings.LEAD_PAGE_DELIVERIES], to_attr=LATEST_DELIVERIES)


def deliveries_of(lead: Lead) -> list[Delivery]:
    """The deliveries `latest_deliveries` read for the lead."""
    deliveries: list[Delivery] = getattr(lead, LATEST_DELIVERIES)
    return deliveries


def attempts_of(delivery: Delivery) -> list[DeliveryAttempt]:
    """The attempts `latest_attempts` read for the delivery."""
    attempts: list[DeliveryAttempt] = getattr(delivery, LATEST_ATTEMPTS)
    return attempts


def request_body_head(attempt: DeliveryAttempt) -> str:
    """The start of the request body that `attempts_newest_first` read."""
    head: str = getattr(attempt, REQUEST_BODY_HEAD)
    return head

"""Retry failed and dead deliveries in bulk, e.g. after an RG outage or a fixed grant."""

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from leads.models import Delivery, DeliveryAttempt
from leads.services import delivery_retry

_AGO = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since_from(value: str) -> datetime:
    """An ISO date or datetime, or an age such as 30m, 12h, 7d."""
    ago = _AGO.fullmatch(value.strip())
    if ago:
        return timezone.now() - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError:
        moment = day = None
    if day is not None:
        moment = datetime(day.year, day.month, day.day)
    if moment is None:
        raise CommandError(f"--since {value!r}: use an ISO date or datetime, or an age like 12h or 7d.")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Queue failed and dead deliveries for another attempt. Prints how many as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partner", help="Partner slug.")
        parser.add_argument("--site", help="Site UUID.")
        parser.add_argument("--since", help="Only deliveries that failed since: ISO date/datetime, or 30m, 12h, 7d.")

    def handle(self, *args: Any, **options: Any) -> None:
        deliveries = Delivery.objects.needing_a_human().select_related("lead").order_by("lead_id", "sequence")
        if options.get("partner"):
            deliveries = deliveries.filter(lead__partner__slug=options["partner"])
        if options.get("site"):
            try:
                deliveries = deliveries.filter(lead__site__site_uuid=uuid.UUID(options["site"]))
            except ValueError:
                raise CommandError(f"--site {options['site']!r} is not a UUID.") from None
        if options.get("since"):
            deliveries = deliveries.filter(updated__gte=since_from(options["since"]))
        count = 0
        for delivery in deliveries.iterator():
            delivery_retry(delivery=delivery, trigger=DeliveryAttempt.Trigger.BULK)
            count += 1
        self.stdout.write(f"{count} deliveries queued for retry")

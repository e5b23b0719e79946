import uuid
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.models import Partner
from sandbox.callbacks import callback_send


class Command(BaseCommand):
    help = (
        "Send a signed Destination callback to the portal as Real Geeks would (action e.g. "
        "integration_enabled, integration_disabled, created, updated, activity_added, user_updated). "
        "Prints the response status as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action")
        parser.add_argument("--partner", required=True, help="Partner slug.")
        parser.add_argument("--site", required=True, type=uuid.UUID, help="Site UUID.")
        parser.add_argument("--lead-id", type=uuid.UUID, default=None, help="Lead id for lead actions (new if absent).")
        parser.add_argument("--url", default=None, help="Destination URL (default: PORTAL_BASE_URL + webhook path).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox is off (SANDBOX_ENABLED is false).")
        partner = Partner.objects.filter(slug=options["partner"]).first()
        if partner is None:
            raise CommandError(f"No partner with slug {options['partner']!r}.")
        try:
            body, response = callback_send(
                action=options["action"],
                partner=partner,
                site_uuid=options["site"],
                lead_id=options["lead_id"],
                url=options["url"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except requests.RequestException as exc:
            raise CommandError(f"Could not reach the portal: {type(exc).__name__}") from None
        self.stdout.write(f"POST {response.url} {body.decode()}")
        self.stdout.write(response.text[:500])
        self.stdout.write(str(response.status_code))

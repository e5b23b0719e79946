from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.models import Partner
from grants.services import api_key_issue


class Command(BaseCommand):
    help = "Issue an API key for a partner. Prints KEY_ID:SECRET (shown this once) as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("partner_slug")
        parser.add_argument("--label", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        partner = Partner.objects.filter(slug=options["partner_slug"]).first()
        if partner is None:
            raise CommandError(f"No partner with slug {options['partner_slug']!r}.")
        key, secret = api_key_issue(partner=partner, label=options["label"])
        self.stdout.write(f"{key.key_id}:{secret}")

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.services import partner_create


class Command(BaseCommand):
    help = "Create a partner. Prints its slug as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--rg-username", required=True, help="Real Geeks Incoming API username.")
        parser.add_argument("--rg-password", required=True, help="Real Geeks Incoming API password.")
        parser.add_argument("--webhook-secret", required=True, help="Destination secret set at RG.")
        parser.add_argument("--partner-id", default="", help="Partner ID RG sends back in callbacks.")
        parser.add_argument("--company-id", default="", help="Company id of the RG grant page.")
        parser.add_argument(
            "--api-url", default="", help="Incoming API base URL for this partner (a host in REALGEEKS_ALLOWED_HOSTS)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            partner = partner_create(
                name=options["name"],
                rg_username=options["rg_username"],
                rg_password=options["rg_password"],
                webhook_secret=options["webhook_secret"],
                rg_partner_id=options["partner_id"],
                rg_company_id=options["company_id"],
                rg_api_url=options["api_url"],
            )
        except ValidationError as exc:
            problems = [f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()]
            raise CommandError("; ".join(problems)) from None
        self.stdout.write(partner.slug)

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.models import Partner
from sandbox.grant_emails import grant_email_build, grant_email_deliver


class Command(BaseCommand):
    help = (
        "Build a realistic RG grant email (multipart text + HTML) for a site and deliver it into the portal, "
        "or write it to --out as a .eml. Prints the grant email's id and status (or the file) as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--partner", required=True, help="Partner slug.")
        parser.add_argument("--site", required=True, type=uuid.UUID, help="Site UUID.")
        parser.add_argument("--name", default="", help="Site name shown in the email.")
        parser.add_argument("--out", type=Path, default=None, help="Write a .eml here instead of delivering.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandbox is off (SANDBOX_ENABLED is false).")
        partner = Partner.objects.filter(slug=options["partner"]).first()
        if partner is None:
            raise CommandError(f"No partner with slug {options['partner']!r}.")
        if options["out"] is not None:
            raw = grant_email_build(partner=partner, site_uuid=options["site"], name=options["name"])
            options["out"].write_bytes(raw)
            self.stdout.write(str(options["out"]))
            return
        grant_email = grant_email_deliver(partner=partner, site_uuid=options["site"], name=options["name"])
        self.stdout.write(f"{grant_email.public_id} {grant_email.status}")

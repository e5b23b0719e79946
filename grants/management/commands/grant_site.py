import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.models import Partner, Site
from grants.services import site_grant


class Command(BaseCommand):
    help = "Grant a partner access to a site. Prints the site UUID and its status as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("partner_slug")
        parser.add_argument("site_uuid")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        partner = Partner.objects.filter(slug=options["partner_slug"]).first()
        if partner is None:
            raise CommandError(f"No partner with slug {options['partner_slug']!r}.")
        try:
            site_uuid = uuid.UUID(options["site_uuid"])
        except ValueError:
            raise CommandError(f"{options['site_uuid']!r} is not a valid site UUID.") from None
        site = site_grant(partner=partner, site_uuid=site_uuid, name=options["name"], source=Site.Source.COMMAND)
        self.stdout.write(f"{site.site_uuid} {site.status}")

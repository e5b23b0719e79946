from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from alerts import services
from alerts.forms import ChannelForm
from alerts.models import Channel
from grants.models import Partner


class Command(BaseCommand):
    help = (
        "Add an alert channel for a partner (or, with --operators, for incidents that are no partner's). "
        "Prints the channel's id; for a signed webhook, then its signing secret, as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        whose = parser.add_mutually_exclusive_group(required=True)
        whose.add_argument("partner", nargs="?", help="The partner's slug.")
        whose.add_argument("--operators", action="store_true", help="An operator channel (no partner).")
        parser.add_argument("--kind", required=True, choices=[kind.value for kind in Channel.Kind])
        parser.add_argument("--name", required=True)
        parser.add_argument("--target", required=True, help="Email addresses (comma-separated), or the URL.")
        parser.add_argument("--secret", default="", help="Signed webhooks: whsec_... (made when omitted).")

    def handle(self, *args: Any, **options: Any) -> None:
        partner = None
        if not options["operators"]:
            partner = Partner.objects.filter(slug=options["partner"]).first()
            if partner is None:
                raise CommandError(f"No partner with slug {options['partner']!r}.")
        # The dashboard's form checks the fields, so a command cannot make what a page would refuse.
        form = ChannelForm(
            data={
                "partner": partner.pk if partner else "",
                "kind": options["kind"],
                "name": options["name"],
                "target": options["target"],
                "new_secret": options["secret"],
                "is_active": "on",
            }
        )
        if not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items())
            raise CommandError(problems)
        channel, secret = services.channel_create(
            partner=partner,
            kind=options["kind"],
            name=options["name"],
            target=options["target"],
            secret=options["secret"],
        )
        self.stdout.write(str(channel.public_id))
        if secret:
            self.stdout.write(secret)

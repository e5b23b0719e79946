import secrets
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from grants.models import Partner, Site
from grants.services import api_key_issue, partner_create, site_grant
from sandbox.services import sandbox_account_ensure

DEMO_USERNAME = "admin"
DEMO_PARTNER_SLUG = "demo"
DEMO_SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


class Command(BaseCommand):
    help = (
        "Idempotently create the development demo: a staff user, a partner wired to a sandbox "
        "account, one granted site and an API key. Secrets are printed only when created."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(DEMO_USERNAME, email="", password=password)
            self.stdout.write(f"Staff user created: {DEMO_USERNAME} / {password}")
        else:
            self.stdout.write(f"Staff user: {DEMO_USERNAME} (password was printed when it was created)")

        partner = Partner.objects.filter(slug=DEMO_PARTNER_SLUG).first()
        if partner is None:
            partner = partner_create(
                name="Demo",
                rg_username="demo-partner",
                rg_password=secrets.token_urlsafe(16),
                webhook_secret=secrets.token_urlsafe(24),
                rg_partner_id="demo-partner-id",
                rg_company_id="demo",
            )
        sandbox_account_ensure(username=partner.rg_username, password=partner.rg_password, site_uuids=[DEMO_SITE_UUID])
        site_grant(partner=partner, site_uuid=DEMO_SITE_UUID, name="Demo Realty", source=Site.Source.COMMAND)

        if not partner.api_keys.exists():
            key, secret = api_key_issue(partner=partner, label="demo")
            self.stdout.write(f"API key for partner {partner.slug!r} (HTTP Basic user:password): {key.key_id}:{secret}")
        else:
            self.stdout.write(
                f"Partner {partner.slug!r} has an API key; issue another with: manage.py add_api_key demo"
            )
        self.stdout.write(f"Demo site: {DEMO_SITE_UUID}")

"""Replay one RG job: `{"method": "create_lead", "params": {...}}` as RG's Python client queues it,
or the JSON its subscriber logs on failure (`{"parsed_job_body": {...}, ...}`), even with the
log line's prefix still in front."""

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.models import Partner
from leads.models import Delivery, Operation
from leads.services import lead_submit
from leads.validation import PayloadError

# RG client method -> (our operation, the params key holding the body).
METHODS = {
    "create_lead": (Operation.CREATE_LEAD, "lead"),
    "update_lead": (Operation.UPDATE_LEAD, "lead"),
    "add_activities": (Operation.ADD_ACTIVITIES, "activities"),
    "create_potential_seller_lead": (Operation.POTENTIAL_SELLER, "lead"),
}


def job_from_text(text: str) -> dict[str, Any]:
    """The job in a file: the job itself, a logged failure wrapping it, or a log line ending in either."""
    try:
        document = json.loads(text)
    except ValueError:
        start = text.find("{")
        try:
            document = json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            document = None
    if isinstance(document, dict) and isinstance(document.get("parsed_job_body"), dict):
        document = document["parsed_job_body"]
    if not isinstance(document, dict) or "method" not in document or not isinstance(document.get("params"), dict):
        raise CommandError('Not an RG job: expected {"method": ..., "params": {...}} or {"parsed_job_body": ...}.')
    return document


class Command(BaseCommand):
    help = "Queue one RG job (a file, or - for stdin) for delivery. Prints the delivery id, lead id and status last."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", help="Path to the job JSON, or - to read standard input.")
        parser.add_argument("--partner", help="Partner slug; by default the partner whose RG username the job names.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = sys.stdin.read() if options["job"] == "-" else self._read(options["job"])
        job = job_from_text(text)
        if job["method"] not in METHODS:
            raise CommandError(f"Unknown method {job['method']!r}; expected one of {', '.join(METHODS)}.")
        operation, body_key = METHODS[job["method"]]
        params = job["params"]
        partner = self._partner(options.get("partner"), job)
        try:
            site_uuid = uuid.UUID(str(params.get("site_uuid")))
            lead_id = uuid.UUID(str(params["lead_uuid"])) if params.get("lead_uuid") else None
        except ValueError:
            raise CommandError("params.site_uuid and params.lead_uuid must be UUIDs.") from None
        if body_key not in params:
            raise CommandError(f"params.{body_key} is missing.")
        try:
            delivery = lead_submit(
                partner=partner,
                site_uuid=site_uuid,
                operation=operation,
                data=params[body_key],
                lead_id=lead_id,
                origin=Delivery.Origin.COMMAND,
            )
        except PayloadError as exc:
            raise CommandError(f"Refused ({exc.status}): {exc.message}") from None
        self.stdout.write(f"{delivery.public_id} {delivery.lead.lead_id} {delivery.status}")

    def _read(self, path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None

    def _partner(self, slug: str | None, job: dict[str, Any]) -> Partner:
        if slug:
            partner = Partner.objects.filter(slug=slug).first()
            if partner is None:
                raise CommandError(f"No partner with slug {slug!r}.")
            return partner
        auth = job.get("auth")
        username = auth[0] if isinstance(auth, list | tuple) and auth else None
        matches = list(Partner.objects.filter(rg_username=username)) if username else list(Partner.objects.all())
        if len(matches) != 1:
            raise CommandError("Cannot tell which partner this job is for; pass --partner SLUG.")
        return matches[0]

import mailbox
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grants.emails import grant_email_store
from grants.models import GrantEmail, Partner


def _messages(path: Path) -> Iterator[bytes]:
    """The raw messages in a Maildir (a folder with cur/new/tmp), an mbox, or a single .eml."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise CommandError(f"{path} is a folder but not a Maildir (no cur/new/tmp).")
        folder = mailbox.Maildir(str(path), create=False)
        for key in folder.iterkeys():
            yield folder.get_bytes(key)
        return
    with path.open("rb") as handle:
        is_mbox = handle.read(5) == b"From "
    if not is_mbox:
        yield path.read_bytes()
        return
    box = mailbox.mbox(str(path), create=False)
    for key in box.iterkeys():
        yield box.get_bytes(key)


class Command(BaseCommand):
    help = (
        "Import grant emails from a .eml file, an mbox or a Maildir. Each is kept once (by Message-ID) "
        "and its sites granted, or left for review. Importing is the operator's decision: sites are granted "
        "whether or not a trusted mail server verified the sender, and each message records which. "
        "Prints the counts as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--partner", default=None, help="Slug of the partner every message belongs to.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        partner: Optional[Partner] = None
        if options["partner"]:
            partner = Partner.objects.filter(slug=options["partner"]).first()
            if partner is None:
                raise CommandError(f"No partner with slug {options['partner']!r}.")
        counts = {"read": 0, "new": 0, "granted": 0, "needs_review": 0, "duplicates": 0}
        unverified = 0
        for raw in _messages(path):
            counts["read"] += 1
            grant_email, new = grant_email_store(raw, source=GrantEmail.Source.IMPORT, partner=partner)
            if not new:
                counts["duplicates"] += 1
                continue
            counts["new"] += 1
            if grant_email.status == GrantEmail.Status.GRANTED:
                counts["granted"] += 1
                unverified += grant_email.sender_verification != GrantEmail.SenderVerification.VERIFIED
            else:
                counts["needs_review"] += 1
        if unverified:
            self.stderr.write(
                f"{unverified} granted without a verified sender, as you decided: each says so on its grant email page."
            )
        self.stdout.write(
            f"{counts['read']} read, {counts['new']} new, {counts['granted']} granted, "
            f"{counts['needs_review']} need review, {counts['duplicates']} duplicates"
        )

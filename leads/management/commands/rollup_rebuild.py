"""Recompute the hourly attempt rollup (leads.rollup) from the attempts themselves."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from leads import rollup
from leads.management.commands.retry_failed import since_from


class Command(BaseCommand):
    help = (
        "Recompute the overview's hourly attempt rollup from the attempts: all of it, or the hours from "
        "--since on. Needed only after attempts were written around the engine (a bulk load, fixtures, a "
        "restore); safe while workers run. Prints how many rollup rows it wrote as the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="An ISO date or datetime, or an age like 12h or 7d (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = since_from(options["since"]) if options["since"] else None
        written = rollup.hours_rebuild(since=since)
        self.stdout.write(f"{written} rollup rows written")

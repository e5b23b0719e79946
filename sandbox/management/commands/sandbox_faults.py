import argparse
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import faults


class Command(BaseCommand):
    help = (
        "Change the sandbox's injected faults (unnamed settings keep their values; --reset clears them first) "
        "and print the resulting settings as JSON on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Clear every fault before applying the others.")
        parser.add_argument("--latency-ms", type=int, help="Added to every answer.")
        parser.add_argument("--error-rate", type=float, help="Share (0 to 1) of requests answered 500 or 503.")
        parser.add_argument("--outage", action=argparse.BooleanOptionalAction, help="Answer every request 503.")
        parser.add_argument("--hang-seconds", type=float, help="Wait this long before answering.")
        parser.add_argument("--html-errors", action=argparse.BooleanOptionalAction, help="HTML error bodies.")
        parser.add_argument("--remaining", type=int, help="Apply to only the next N requests.")
        parser.add_argument("--forever", action="store_true", help="Apply to every request (clears --remaining).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reset"]:
            faults.faults_reset()
        changes = {name: options[name] for name in faults.FAULT_FIELDS if options[name] is not None}
        if options["forever"]:
            changes["remaining"] = None
        try:
            current = faults.faults_update(changes=changes) if changes else faults.faults_current()
        except ValidationError as e:
            raise CommandError(faults.problems_text(e)) from e
        self.stdout.write(json.dumps(faults.faults_as_dict(current), sort_keys=True))

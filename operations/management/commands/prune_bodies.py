"""`manage.py prune_bodies [--dry-run] [--batch-size N]`: prune stored bodies past their retention
now (beat does it hourly), or with --dry-run say how many would be."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from operations import retention


class Command(BaseCommand):
    help = (
        "Prune attempt bodies, raw callbacks and raw grant emails older than RETENTION_*_DAYS, in short "
        "batches; --dry-run prints what would be pruned."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be pruned; change nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per UPDATE (RETENTION_BATCH_SIZE).")

    def handle(self, *args: Any, dry_run: bool, batch_size: int | None, **options: Any) -> None:
        if dry_run:
            results = retention.bodies_prune_plan()
        else:
            results = retention.bodies_prune(batch_size=batch_size)
        for result in results:
            self.stdout.write(result.describe(dry_run=dry_run))

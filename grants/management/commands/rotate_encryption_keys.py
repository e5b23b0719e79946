from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from grants.fields import EncryptedTextField


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key in FIELD_ENCRYPTION_KEYS. "
        "Prints the number of values rewritten as the last line."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rewritten = 0
        with transaction.atomic():
            for model in apps.get_models():
                names = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
                if not names:
                    continue
                # Reading decrypts with whichever key opens each value (any key in the list);
                # writing the plain text back encrypts it with the newest key.
                for pk, *values in model._base_manager.values_list("pk", *names).iterator():
                    updates = {name: value for name, value in zip(names, values, strict=True) if value}
                    if updates:
                        model._base_manager.filter(pk=pk).update(**updates)
                        rewritten += len(updates)
        self.stdout.write(f"{rewritten}")

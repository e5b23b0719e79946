"""A model field that keeps text encrypted at rest."""

from typing import Any

from django.db import models

from grants import encryption


class EncryptedTextField(models.TextField):
    """Plain text in Python, a Fernet token in the database.

    Tokens are randomised, so the column cannot be filtered on; store secrets here, not keys.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encryption.encrypt(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value in (None, ""):
            return value
        return encryption.decrypt(value)

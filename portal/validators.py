"""Validators shared by the dashboard's forms."""

import re

from django.core.exceptions import ValidationError

# What people type for a phone number: digits with spaces, dashes, dots and parentheses, and an
# optional leading + (e.g. 808-123-1234, (808) 123-1234, +55 83 1234-1234).
_PHONE_CHARACTERS = re.compile(r"\+?[0-9 ().-]+")
PHONE_MIN_DIGITS = 7
PHONE_MAX_DIGITS = 15  # E.164's longest number

PHONE_INVALID = (
    "Enter a phone number of 7 to 15 digits, e.g. 808-123-1234, (808) 123-1234 or +55 83 1234-1234: "
    "digits, spaces, dashes, dots and parentheses, with an optional leading +."
)


def validate_phone(value: str) -> None:
    """Accept a phone number as typed: only digits, spaces, dashes, dots, parentheses and a
    leading +, with 7 to 15 digits. Raises ValidationError otherwise."""
    digits = sum(character.isdigit() for character in value)
    if not _PHONE_CHARACTERS.fullmatch(value) or not PHONE_MIN_DIGITS <= digits <= PHONE_MAX_DIGITS:
        raise ValidationError(PHONE_INVALID, code="invalid_phone")

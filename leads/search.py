"""Phone search: what staff typed, reduced to digits, matched against each lead's phone digits.

Partners store phones as they were typed (`808-555-0199`, `(808) 555-0199`, `+18085550199`), so
both sides drop their punctuation. On PostgreSQL a GIN trigram index on exactly `PhoneDigits`
(migration leads 0008) serves the `LIKE '%digits%'` match; SQLite reads every lead.
"""

import re
from typing import Any, Optional

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import CharField, Func
from django.db.models.sql.compiler import SQLCompiler

# pg_trgm splits a pattern into three-character pieces; with fewer it cannot use the index, so a
# shorter number is left to the ordinary substring search (which finds a common fragment quickly).
PHONE_MIN_DIGITS = 3
# Digits and the punctuation people put between them; a "+" only in front.
_PHONE_LIKE = re.compile(r"\+?[0-9 ()./\-]+")
# North American numbers: "+1 808 …" and "1-808-555-0199" are 808-555-0199 with the country code.
_NANP_WITH_COUNTRY_CODE = re.compile(r"1[0-9]{10}")
# The characters the SQLite expression removes; PostgreSQL removes every non-digit.
_SQLITE_PUNCTUATION = " -.()+/"
# Must stay byte for byte the expression of the index in leads/migrations/0008_lead_phone_search.py,
# or PostgreSQL no longer uses that index.
PHONE_DIGITS_SQL = "regexp_replace({column}, '[^0-9]+', '', 'g')"


def phone_digits(text: str) -> Optional[str]:
    """The digits to look for if `text` looks like a phone number (or part of one), else None.

    A phone number is digits with spaces, dashes, dots, slashes or parentheses between them and
    perhaps a leading "+"; at least PHONE_MIN_DIGITS digits. A North American country code
    ("+1", or a leading 1 before ten more digits) is dropped, so the number matches leads stored
    with or without it.
    """
    text = text.strip()
    if not _PHONE_LIKE.fullmatch(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+1") or _NANP_WITH_COUNTRY_CODE.fullmatch(digits):
        digits = digits[1:]
    return digits if len(digits) >= PHONE_MIN_DIGITS else None


class PhoneDigits(Func):
    """A phone column without its punctuation, as text. On PostgreSQL, the indexed expression.
    The portal runs on PostgreSQL and SQLite only, so there is no generic SQL."""

    arity = 1
    output_field = CharField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        return PHONE_DIGITS_SQL.format(column=column), list(params)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        # SQLite has no regexp_replace: the usual punctuation, one REPLACE each.
        column, params = compiler.compile(self.source_expressions[0])
        sql = column
        for character in _SQLITE_PUNCTUATION:
            sql = f"REPLACE({sql}, '{character}', '')"
        return sql, list(params)

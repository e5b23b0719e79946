"""leads.search.phone_digits: which typed text is a phone number, and the digits looked for."""

import importlib

import pytest

from leads.search import PHONE_DIGITS_SQL, phone_digits


@pytest.mark.parametrize(
    "typed",
    [
        "8085550199",
        "(808) 555-0199",
        "808.555.0199",
        "808-555-0199",
        "+1 808 555 0199",
        "1-808-555-0199",
        "+18085550199",
    ],
)
def test_it_reduces_every_way_of_typing_a_number_to_its_ten_digits(typed):
    assert phone_digits(typed) == "8085550199"


@pytest.mark.parametrize(
    ("typed", "digits"),
    [
        ("5550199", "5550199"),
        ("555-0199", "5550199"),
        ("  555 0199  ", "5550199"),
        ("+44 20 7946 0958", "442079460958"),
        ("808/555", "808555"),
        ("199", "199"),
    ],
)
def test_it_keeps_the_digits_of_part_of_a_number_and_of_foreign_numbers(typed, digits):
    assert phone_digits(typed) == digits


def test_it_keeps_a_leading_one_that_is_not_a_country_code():
    assert phone_digits("1555") == "1555"
    assert phone_digits("18085550199") == "8085550199"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "42",
        "+1 2",
        "(8)",
        "kim@example.com",
        "lead42",
        "Kim 808",
        "808-555-0199 ext 12",
        "+",
        "\u0668\u0660\u0668\u0665\u0665\u0665",  # Arabic-Indic digits
        "\uff18\uff10\uff18\uff15\uff15\uff15",  # full-width digits
    ],
)
def test_it_leaves_short_numbers_words_and_other_scripts_digits_to_the_ordinary_search(typed):
    assert phone_digits(typed) is None


def test_the_query_expression_is_the_one_the_migration_indexes():
    # PostgreSQL uses the index only for a query whose expression is the index's, to the byte.
    migration = importlib.import_module("leads.migrations.0008_lead_phone_search")
    assert f"(({PHONE_DIGITS_SQL.format(column='phone')}) gin_trgm_ops)" in migration.CREATE

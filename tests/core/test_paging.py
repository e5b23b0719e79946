"""The dashboard's keyset pager: pages walk every row once in order and back, ties on the first
key are broken by the next, and a cursor that is not a number is no cursor."""

import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from core.models import AuditEntry
from core.paging import Page, keyset_page, received_page, row_by_public_id, whole_number
from grants.models import Partner, WebhookEvent

pytestmark = pytest.mark.django_db

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
KEYS = ("created", "id")


def entries(count: int) -> list[AuditEntry]:
    """`count` entries, every three of them made at one instant."""
    made = [AuditEntry.objects.create(action="site.grant", object_type="site", object_id=str(n)) for n in range(count)]
    for n, entry in enumerate(made):
        AuditEntry.objects.filter(pk=entry.pk).update(created=AT.replace(minute=n // 3))
    return list(AuditEntry.objects.order_by("-created", "-id"))


def cursor(row: AuditEntry) -> tuple[datetime, int]:
    return row.created, row.pk


def test_pages_walk_every_row_once_newest_first_and_back_again():
    expected = entries(8)

    pages = [keyset_page(AuditEntry.objects.all(), KEYS, 3)]
    while pages[-1].older is not None:
        pages.append(keyset_page(AuditEntry.objects.all(), KEYS, 3, older_than=cursor(pages[-1].older)))
    back = [pages[-1]]
    while back[-1].newer is not None:
        back.append(keyset_page(AuditEntry.objects.all(), KEYS, 3, newer_than=cursor(back[-1].newer)))

    assert [row for page in pages for row in page.rows] == expected
    assert [len(page.rows) for page in pages] == [3, 3, 2]
    assert [page.rows for page in back] == [page.rows for page in reversed(pages)]
    assert pages[0].newer is None and back[-1].newer is None


def test_a_page_back_to_the_newest_row_says_there_is_nothing_newer():
    newest, *_ = entries(4)

    page = keyset_page(AuditEntry.objects.all(), ("id",), 3, newer_than=(newest.pk - 1,))

    assert page.rows == [newest]
    assert page.newer is None
    assert page.older == newest


def test_newer_than_wins_over_older_than():
    rows = entries(6)

    page = keyset_page(AuditEntry.objects.all(), ("id",), 2, older_than=(rows[1].pk,), newer_than=(rows[3].pk,))

    assert page.rows == rows[1:3]


def test_a_page_past_the_last_row_is_empty_with_no_links():
    oldest = entries(2)[-1]

    assert keyset_page(AuditEntry.objects.all(), KEYS, 3, older_than=cursor(oldest)) == Page([])


def test_each_page_is_one_query(django_assert_num_queries):
    rows = entries(5)

    with django_assert_num_queries(1):
        keyset_page(AuditEntry.objects.all(), KEYS, 2, older_than=cursor(rows[1]))
    with django_assert_num_queries(1):
        keyset_page(AuditEntry.objects.all(), KEYS, 2, newer_than=cursor(rows[3]))


@pytest.mark.parametrize("text", ["0", "7", "000123", "9" * 18])
def test_a_number_cursor_reads_ascii_digits(text):
    assert whole_number(text, 18) == int(text)


# Arabic-Indic digits are digits to int(), superscript two to str.isdigit(): neither makes a cursor.
BROKEN = ["", "-3", "+3", " 3", "3 ", "3\n", "3_0", "1.5", "1e9", "0x1f", "drop table", "9" * 19, "3\x00"]


@pytest.mark.parametrize("text", [*BROKEN, "\u00b2", "\u0661\u0662\u0663"])
def test_anything_else_is_no_number_cursor(text):
    assert whole_number(text, 18) is None


def callbacks(partner: Partner, count: int) -> list[WebhookEvent]:
    """`count` callbacks, every two of them received at one instant; newest first."""
    for n in range(count):
        body = f'{{"n": {n}}}'.encode()
        WebhookEvent.objects.create(
            partner=partner,
            body=body,
            body_sha256=hashlib.sha256(body).hexdigest(),
            received_at=AT.replace(minute=n // 2),
        )
    return list(WebhookEvent.objects.filter(partner=partner).order_by("-received_at", "-id"))


def test_received_pages_follow_the_row_a_cursor_names_through_ties(partner):
    expected = callbacks(partner, 5)

    shown, older_than = [], None
    while True:
        rows, older_than = received_page(WebhookEvent.objects.all(), older_than, 2)
        shown.append(rows)
        if older_than is None:
            break
        older_than = row_by_public_id(WebhookEvent.objects.all(), str(older_than.public_id))

    assert shown == [expected[0:2], expected[2:4], expected[4:5]]


def test_a_cursor_names_a_row_only_among_the_rows_given(partner, other_partner):
    mine, theirs = callbacks(partner, 1)[0], callbacks(other_partner, 2)[0]
    visible = WebhookEvent.objects.filter(partner=partner)

    assert row_by_public_id(visible, str(mine.public_id)) == mine
    assert row_by_public_id(visible, str(theirs.public_id)) is None
    assert row_by_public_id(visible, str(uuid.uuid4())) is None


@pytest.mark.parametrize("text", ["", "not-a-uuid", "1 OR 1=1", "\x00", "12345678-1234-1234-1234-12345678901Z"])
def test_a_cursor_that_is_no_public_id_names_no_row(partner, text):
    callbacks(partner, 1)

    assert row_by_public_id(WebhookEvent.objects.all(), text) is None

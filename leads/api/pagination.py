"""The read API's keyset pages (DRF's cursor pagination): stable under inserts, and each page one
index range scan, however deep. A cursor or page size the API did not hand out is a 400 that
says so, never a 404 or a 500."""

from collections.abc import Callable
from datetime import datetime
from typing import Optional

from django.conf import settings
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

BAD_CURSOR = "cursor: not one this API handed out; start from the first page and follow the next and previous links."


class Keyset(CursorPagination):
    """Newest first by `ordering`, `?page_size=` up to `max_page_size`, `next` and `previous` links."""

    page_size_query_param = "page_size"
    # Reads the position a cursor carries as a value of the first ordering field.
    position_type: Callable[[str], object] = int

    def decode_cursor(self, request: Request) -> Optional[Cursor]:
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                # A position the field cannot hold would otherwise fail in the query: a 500.
                self.position_type(str(cursor.position))
        except (NotFound, ValueError):
            raise ParseError(BAD_CURSOR) from None
        return cursor

    def get_page_size(self, request: Request) -> Optional[int]:
        """The page size asked for, at most `max_page_size`; the default without one."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        try:
            size = int(text)
        except ValueError:
            size = 0
        if size < 1:
            raise ParseError(f"page_size: give a whole number from 1 to {self.max_page_size}.")
        return min(size, self.max_page_size or size)


class LeadsNewestFirst(Keyset):
    ordering = ("-created", "-id")
    position_type = datetime.fromisoformat
    page_size = 50
    max_page_size = 200


class DeliveriesNewestFirst(Keyset):
    """A lead's deliveries, LEAD_PAGE_DELIVERIES at most, by sequence (unique per lead)."""

    ordering = ("-sequence",)
    page_size_query_description = "Deliveries per page: at most LEAD_PAGE_DELIVERIES, the default."

    def __init__(self) -> None:
        self.page_size = self.max_page_size = settings.LEAD_PAGE_DELIVERIES


class AttemptsNewestFirst(Keyset):
    """A delivery's attempts, LEAD_PAGE_ATTEMPTS at most, by number (unique per delivery)."""

    ordering = ("-number",)
    page_size_query_description = "Attempts per page: at most LEAD_PAGE_ATTEMPTS, the default."

    def __init__(self) -> None:
        self.page_size = self.max_page_size = settings.LEAD_PAGE_ATTEMPTS


def page_after(pagination: type[Keyset], request: Request, url: str, position: int) -> str:
    """The link to the page of `url` (a list paged by `pagination`) that follows `position`, as
    that list's own `next` link would be."""
    paginator = pagination()
    paginator.base_url = request.build_absolute_uri(url)
    return paginator.encode_cursor(Cursor(offset=0, reverse=False, position=position))

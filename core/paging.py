"""Keyset pages for the dashboard's long lists, newest first.

A page is one index range scan from its cursor however deep it is, where OFFSET would read and
drop every row before it, and a row added while someone pages is neither shown twice nor
skipped. A cursor names the row a page stopped at; the next page starts just past it.

Each list keeps its own query parameters and cursor text: links people saved carry them. A
cursor that does not parse counts as no cursor, so the list shows its first page: a mangled
link is no reason for an error page, and hostile input never reaches the database.

The read API pages with DRF's cursor pagination instead (leads.api.pagination): API clients
hold its cursors, and a bad one is a 400 there, because a client that silently started again
from the first page would read every lead twice.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Optional, TypeVar

from django.db.models import Model, Q, QuerySet

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page(Generic[M]):
    """A page's rows, and the rows the cursors of the pages either side of it are made from."""

    rows: list[M]  # newest first
    older: Optional[M] = None  # the last row, when older rows follow it
    newer: Optional[M] = None  # the first row, when newer rows come before it


def keyset_page(
    queryset: QuerySet[M],
    keys: Sequence[str],
    size: int,
    *,
    older_than: Optional[Sequence[Any]] = None,
    newer_than: Optional[Sequence[Any]] = None,
) -> Page[M]:
    """Up to `size` rows of `queryset`, newest first by `keys` (each descending; together
    unique, in the order of an index that serves the list).

    The first page; or the rows just older than the key values `older_than`; or, when
    `newer_than` is given (it wins over `older_than`), the rows just newer than those, read
    oldest first from there so a page back costs what a page on does. One query. A page reached
    through `older_than` has `newer` set without looking: the rows it came from are newer.
    """
    if newer_than is not None:
        found = list(queryset.filter(_past(keys, newer_than, "gt")).order_by(*keys)[: size + 1])
        rows = found[:size][::-1]
        more_newer, more_older = len(found) > size, True
    else:
        if older_than is not None:
            queryset = queryset.filter(_past(keys, older_than, "lt"))
        found = list(queryset.order_by(*(f"-{key}" for key in keys))[: size + 1])
        rows = found[:size]
        more_newer, more_older = older_than is not None, len(found) > size
    if not rows:
        return Page(rows)
    return Page(rows, older=rows[-1] if more_older else None, newer=rows[0] if more_newer else None)


def _past(keys: Sequence[str], values: Sequence[Any], lookup: str) -> Q:
    """The rows past `values` in the order of `keys`, by `lookup` ("lt" or "gt"): a tie on one
    key is broken by the next."""
    past = Q()
    for n, key in enumerate(keys):
        past |= Q(**dict(zip(keys[:n], values[:n], strict=True)), **{f"{key}__{lookup}": values[n]})
    if len(keys) > 1:
        # Implied by the above, but it lets the database start its index range at the cursor
        # instead of at the top of the index.
        past &= Q(**{f"{keys[0]}__{lookup}e": values[0]})
    return past


def received_page(queryset: QuerySet[M], older_than: Optional[M], size: int) -> tuple[list[M], Optional[M]]:
    """One page of `queryset` newest first by (received_at, id), starting after the row
    `older_than`: the lists of things that arrive (callbacks, grant emails). The rows, and the
    last one when more follow (these lists only page on; "Newest" is the page without a cursor)."""
    after = None if older_than is None else (older_than.received_at, older_than.pk)  # type: ignore[attr-defined]
    page = keyset_page(queryset, ("received_at", "id"), size, older_than=after)
    return page.rows, page.older


def row_by_public_id(queryset: QuerySet[M], value: str) -> Optional[M]:
    """The row an `older_than` cursor names (a public id), looked up among `queryset`'s rows, so
    a cursor can never reach a row its reader may not see; None for anything else.

    These lists' cursors are a row's public id rather than its key values, as the lead list's
    are: links people keep carry them, and the lookup costs one indexed query."""
    try:
        public_id = uuid.UUID(value)
    except ValueError:
        return None
    return queryset.filter(public_id=public_id).first()


def whole_number(text: str, digits: int) -> Optional[int]:
    """`text` as a number cursor: 1 to `digits` ASCII digits (int() would also read "-3", " 3",
    "3_0" and other scripts' digits); None for anything else."""
    return int(text) if re.fullmatch(f"[0-9]{{1,{digits}}}", text) else None

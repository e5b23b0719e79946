"""Keeping PostgreSQL's planner statistics of the outbox tables fresh enough to claim by index.

Autovacuum analyses a table a minute or more after a tenth of it changed. A backlog accepted
faster than that (a burst after a quiet spell, a new install: the push API stores a lead in one
statement) leaves the planner believing the outbox tiny, and it then plans the claim and the
batched outcome updates as scans of whole tables: bench `delivery` drained 185 leads/s with
9.2 ms of PostgreSQL CPU per delivery, against 769/s and 0.9 ms once analysed. So each pump,
as it starts, analyses the tables that changed a lot since their last analysis (one catalog
query when none did; one pump at a time does it, the others go on).
"""

import logging

from django.db import connection

logger = logging.getLogger(__name__)

TABLES = ("leads_delivery", "leads_lead", "leads_deliveryattempt")
# Changed rows since the last analysis, at least this many and this share of the table's rows.
STALE_ROWS = 1000
STALE_SHARE = 0.1
# pg_try_advisory_lock's key: one pump analyses, the others do not wait for it.
_LOCK_KEY = 7_104_220_931


def statistics_refresh() -> list[str]:
    """ANALYZE the outbox tables whose statistics are stale; returns their names (PostgreSQL
    only; SQLite's planner needs none of this)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND n_mod_since_analyze > GREATEST(%s, %s * n_live_tup)",
            [list(TABLES), STALE_ROWS, STALE_SHARE],
        )
        stale = [name for (name,) in cursor.fetchall() if name in TABLES]
        if not stale:
            return []
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return []
        try:
            for table in stale:
                cursor.execute(f"ANALYZE {table}")  # a name from TABLES, never input
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    logger.info("analysed %s: their planner statistics were stale", ", ".join(stale))
    return stale

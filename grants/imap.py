"""The grant mailbox poll: unseen messages in an IMAP folder become grant emails.

Active when GRANT_IMAP_HOST is set (a beat entry then runs it every GRANT_IMAP_POLL_SECONDS).
Messages are read with BODY.PEEK and marked seen only after they are stored, so a crash
between the two reads a message again, and Message-ID de-duplication makes that harmless.
A message grants only when the mailbox's server authenticated Real Geeks as its sender (its
authserv-id in GRANT_EMAIL_TRUSTED_AUTHSERV_IDS); any other waits for review (grants/emails.py).
"""

import imaplib
import logging

from django.conf import settings

from grants.emails import grant_email_receive
from grants.models import GrantEmail

logger = logging.getLogger(__name__)


def _message_bytes(fetched: list[object]) -> bytes:
    # imaplib returns [(b'1 (UID 7 BODY[] {123}', b'<message>'), b')']: the literal is the message.
    for item in fetched:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return b""


def grant_mailbox_poll() -> int:
    """Store each unseen message (up to GRANT_IMAP_BATCH) and mark it seen; returns how many were read.

    A message stored before (same Message-ID) is read, and kept once.
    """
    if not settings.GRANT_IMAP_HOST:
        return 0
    connect = imaplib.IMAP4_SSL if settings.GRANT_IMAP_SSL else imaplib.IMAP4
    stored = 0
    try:
        with connect(settings.GRANT_IMAP_HOST, settings.GRANT_IMAP_PORT, timeout=settings.GRANT_IMAP_TIMEOUT) as imap:
            imap.login(settings.GRANT_IMAP_USER, settings.GRANT_IMAP_PASSWORD)
            status, _ = imap.select(settings.GRANT_IMAP_FOLDER)
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot select folder {settings.GRANT_IMAP_FOLDER!r}")
            _, found = imap.uid("SEARCH", "UNSEEN")
            uids = [uid.decode() for uid in (found[0] or b"").split()[: settings.GRANT_IMAP_BATCH]]
            for uid in uids:
                status, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = _message_bytes(fetched) if status == "OK" else b""
                if not raw:
                    continue
                grant_email_receive(raw, source=GrantEmail.Source.IMAP)
                imap.uid("STORE", uid, "+FLAGS", "(\\Seen)")
                stored += 1
    except (imaplib.IMAP4.error, OSError) as exc:
        # The server's words only (never the password); the next beat tick tries again.
        logger.warning("Grant mailbox poll of %s failed after %d message(s): %s", settings.GRANT_IMAP_HOST, stored, exc)
    return stored

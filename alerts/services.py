"""Staff operations on alert channels: create, test, delete. Each is audited in its own transaction."""

from typing import Optional

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from alerts import notices, signing
from alerts.models import Channel, Notification
from core.audit import MASK_SET, audit_record
from grants.models import Partner


def channel_create(
    *,
    partner: Optional[Partner],
    kind: str,
    name: str,
    target: str,
    secret: str = "",
    actor: Optional[User] = None,
) -> tuple[Channel, str]:
    """A new active channel (partner None: an operator channel), and its signing secret: the one
    given, or for a signed webhook without one, a new one. Validation is the caller's (the form)."""
    if kind == Channel.Kind.WEBHOOK and not secret:
        secret = signing.secret_new()
    with transaction.atomic():
        channel = Channel.objects.create(partner=partner, kind=kind, name=name, target=target, secret=secret)
        audit_record(
            actor=actor,
            action="alert_channel.create",
            obj=channel,
            partner=partner,
            after={"kind": kind, "name": name, "target": channel.target_shown(), "secret": MASK_SET if secret else ""},
        )
    return channel, secret


def channel_test(*, channel: Channel, actor: Optional[User] = None) -> Notification:
    """Queue a test notice to the channel; it is sent like any other (attempts, retries, history)."""
    notice = notices.test_notice(channel, now=timezone.now())
    with transaction.atomic():
        notification = Notification.objects.create(
            channel=channel,
            event=Notification.Event.TEST,
            subject=notice.subject,
            text=notice.text,
            payload=notice.payload,
        )
        audit_record(actor=actor, action="alert_channel.test", obj=channel, partner=channel.partner)
    return notification


def channel_delete(*, channel: Channel, actor: Optional[User] = None) -> None:
    """Delete the channel and its notification history (incidents stay)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="alert_channel.delete",
            obj=channel,
            partner=channel.partner,
            before={"kind": channel.kind, "name": channel.name, "target": channel.target_shown()},
        )
        channel.delete()

"""Grant emails from an email provider's inbound webhook, through django-anymail.

`GRANT_EMAIL_INBOUND_ESP` names the provider (anymail's spelling: "postmark", "mailgun",
"amazon_ses", "sparkpost", ...). Its inbound URL is `/webhooks/grant-email/{esp}/inbound/`
(Mailgun's MIME variant: `.../mailgun/inbound_mime/`). Anymail checks the provider's
credentials (`ANYMAIL_WEBHOOK_SECRET` basic auth, plus the provider's signing key where it has
one) and sends its `inbound` signal, which ends in `grant_email_receive`. Those credentials
prove only that the provider posted; anyone can email the address it receives for, so a message
grants only when the provider's Authentication-Results verified Real Geeks as the sender (its
authserv-id in GRANT_EMAIL_TRUSTED_AUTHSERV_IDS); any other waits for review (grants/emails.py).
"""

from collections.abc import Callable
from typing import Any, Optional

from anymail import urls as anymail_urls
from anymail.signals import AnymailInboundEvent
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from grants.emails import grant_email_receive
from grants.models import GrantEmail


def _anymail_view(esp: str, kind: str) -> Optional[Callable[..., HttpResponse]]:
    """The configured provider's anymail inbound view, or None for any other name."""
    configured = settings.GRANT_EMAIL_INBOUND_ESP
    if not configured or esp != configured or kind not in ("inbound", "inbound_mime"):
        return None
    if kind == "inbound_mime" and esp != "mailgun":
        return None
    for pattern in anymail_urls.urlpatterns:
        if getattr(pattern, "name", None) == f"{esp}_inbound_webhook":
            return pattern.callback
    return None


@csrf_exempt
def inbound_webhook(request: HttpRequest, esp: str, kind: str) -> HttpResponse:
    view = _anymail_view(esp, kind)
    if view is None:
        # 404: only the one provider chosen in settings is listening.
        return JsonResponse({"error": "No inbound email webhook here."}, status=404)
    return view(request)


def grant_email_from_provider(sender: Any, event: AnymailInboundEvent, esp_name: str, **kwargs: Any) -> None:
    """anymail's `inbound` signal: keep the message as a grant email (connected in GrantsConfig.ready)."""
    message = event.message
    if message is None:
        return
    try:
        raw = message.as_bytes()
    except (ValueError, LookupError, UnicodeError):
        # A message anymail assembled from parsed fields may not serialise as bytes strictly.
        raw = message.as_string().encode("utf-8", "replace")
    recipient = getattr(message, "envelope_recipient", None)
    grant_email_receive(
        raw,
        source=GrantEmail.Source.INBOUND,
        envelope_recipients=[recipient] if isinstance(recipient, str) else [],
    )

"""The sandbox as RG's grant notification: a realistic multipart (text + HTML) email saying a
client granted the partner a site, delivered into the portal or written as a .eml file."""

import html
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from django.conf import settings

from grants.emails import grant_email_receive
from grants.models import GrantEmail, Partner

SENDER = "Real Geeks Lead Router <noreply@sandbox.realgeeks.invalid>"


def _recipient(partner: Partner) -> str:
    # The partner's grant address when it has one, else a plus-address naming its slug: either
    # tells the portal which partner the message is for.
    return partner.grant_email_address or f"grants+{partner.slug}@portal.invalid"


def grant_email_build(*, partner: Partner, site_uuid: uuid.UUID, name: str = "", domain: str = "") -> bytes:
    """The message RG might send: names, the Site UUID, the grant page link and a tracking pixel
    whose URL carries another UUID (which is not a site)."""
    name = name or "Sandbox Realty"
    domain = domain or f"site-{str(site_uuid)[:8]}.sandbox.invalid"
    grant_url = settings.REALGEEKS_GRANT_URL_TEMPLATE.format(company_id=partner.rg_company_id or partner.slug)
    tracking = f"https://email.sandbox.realgeeks.invalid/open/{uuid.uuid4()}.gif"
    text = (
        "Aloha,\n\n"
        f"A Real Geeks client has granted {partner.name} access to send leads to this site:\n\n"
        f"  Site: {name}\n"
        f"  Site UUID: {site_uuid}\n"
        f"  Domain: {domain}\n\n"
        f"Manage access on your grant page: {grant_url}\n\n"
        "Mahalo,\nReal Geeks\n"
    )
    e = html.escape
    html_body = f"""<!DOCTYPE html>
<html><head><style>td {{ padding: 4px 8px; }}</style></head><body>
<p>Aloha,</p>
<p>A Real Geeks client has granted <b>{e(partner.name)}</b> access to send leads to this site:</p>
<table>
<tr><th>Site</th><th>Site UUID</th><th>Domain</th></tr>
<tr><td>{e(name)}</td><td>{site_uuid}</td><td>{e(domain)}</td></tr>
</table>
<p>Manage access on your <a href="{e(grant_url)}">grant page</a>.</p>
<p>Mahalo,<br>Real Geeks</p>
<img src="{tracking}" width="1" height="1" alt="">
</body></html>
"""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = SENDER
    message["To"] = _recipient(partner)
    message["Subject"] = f"Lead Router: {name} granted you access"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="sandbox.realgeeks.invalid")
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html_body, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def grant_email_deliver(*, partner: Partner, site_uuid: uuid.UUID, name: str = "") -> GrantEmail:
    """Build a grant email and hand it to the portal, as its inbound webhook would."""
    return grant_email_receive(
        grant_email_build(partner=partner, site_uuid=site_uuid, name=name), source=GrantEmail.Source.SANDBOX
    )

"""Reading RG's grant notification emails. Pure: bytes in, a ParsedGrantEmail out, no I/O.

RG does not publish the email's format (REALGEEKS_API.md section 3), so this reads defensively:
every text and HTML part in any transfer encoding and charset, messages forwarded inline or
attached, any number of sites. The heuristics, in one place:

- A site is a UUID in the subject or body text, dashed or not. A dashless run of 32 hex digits
  counts only when it reads as an RFC 4122 UUID (version 1-5, variant bits 10), because hashes
  in emails (tracking ids, MD5s) are 32 hex digits too and rarely pass that test.
- A UUID inside a link is a tracking or unsubscribe id, not a site, unless the link names it as
  a site: a path segment or query key `site`, `sites`, `site_id` or `site_uuid` right before it.
- The nil UUID is never a site.
- A site's name is on the UUID's own line, set off by a separator ("Aloha Homes (UUID)",
  "Aloha Homes - Site UUID: UUID", a table row "Aloha Homes | UUID", "UUID (Aloha Homes)"), or
  on a nearby line labelled "Site name:" / "Name:" / "Site:". Its domain is the nearest
  hostname on those lines (RG's own hosts and e-mail addresses excluded). "Nearby" is up to
  two lines either way, never past a line with another UUID.
"""

import email
import email.errors
import email.header
import email.utils
import re
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from typing import Optional

from grants.htmltext import html_to_text

_HEX = "[0-9a-fA-F]"
_UUID = re.compile(
    rf"(?<![0-9a-fA-F]){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![0-9a-fA-F])"
    rf"|(?<![0-9a-fA-F]){_HEX}{{32}}(?![0-9a-fA-F])"
)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'\])]+", re.IGNORECASE)
_SITE_IN_URL = re.compile(r"[/?&#;](?:sites?|site_?id|site_?uuid)[=/:]$", re.IGNORECASE)
_GRANT_URL = re.compile(r"leadrouter\.realgeeks\.com/dev/([A-Za-z0-9_.~-]{1,100})/grant", re.IGNORECASE)
_DOMAIN = re.compile(
    r"(?<![@\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?![\w@-]|\.[a-z0-9])", re.IGNORECASE
)
# Hostnames that are RG's own or file names, never a client's site.
_NOT_SITE_DOMAINS = re.compile(r"(?:^|\.)(?:leadrouter\.realgeeks\.com|realgeeks\.com)$", re.IGNORECASE)
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "html", "htm", "php", "css", "js", "pdf", "txt", "eml"})
_LABELLED_NAME = re.compile(
    r"^\W*(?:site\s*name|name|site|website\s*name|client|company|brokerage|office)\s*[:=]\s*(.+?)\s*$", re.IGNORECASE
)
_LABELLED_DOMAIN = re.compile(r"^\W*(?:domain|website|site\s*url|url)\s*[:=]\s*(.+?)\s*$", re.IGNORECASE)
_LABEL_SUFFIX = re.compile(r"(?:\bsite\s*)?(?:\buuid|\bid)\s*[:#=]?\s*$|\bsite\s*[:#=]\s*$", re.IGNORECASE)
_SEPARATOR_BEFORE = re.compile(r"^(.*?)\s*(?:\(|\[|\{|:|\||,|\s[-\u2013\u2014]|\u2013|\u2014)\s*$")
_SEPARATOR_AFTER = re.compile(r"^\s*(?:\(([^)]*)\)|\[([^\]]*)\]|(?:[-\u2013\u2014:|,])\s*([^|()\[\]]*))")
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Forwarded-To", "Resent-To")
# Words that make a candidate a sentence ("The following site was granted: UUID"), not a name.
_SENTENCE_WORDS = frozenset(
    {"granted", "access", "following", "please", "has", "have", "was", "were", "is", "are", "your", "you", "to"}
)
_SENTENCE_BREAK = re.compile(r"[.!?;]\s+")
_SITE_INTRO = re.compile(r"^(?:.*\s)?(?:our|my|the|your|this|new)\s+(?:web)?site\s+", re.IGNORECASE)
_NEAR_LINES = 2
_MAX_NAME_WORDS = 8
_MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class FoundSite:
    site_uuid: uuid.UUID
    name: str = ""
    domain: str = ""


@dataclass(frozen=True)
class ParsedGrantEmail:
    message_id: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    sites: tuple[FoundSite, ...]
    company_ids: tuple[str, ...] = field(default=())
    readable: bool = True
    """False when no text or HTML part could be read at all."""


def _clean(text: str) -> str:
    """Text safe to store: bytes the parser smuggled in as surrogates decoded, NULs dropped."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


def _header(message: Message, name: str) -> list[str]:
    values = []
    for value in message.get_all(name) or []:
        try:
            decoded = str(email.header.make_header(email.header.decode_header(str(value))))
        except (LookupError, ValueError, UnicodeError, email.errors.HeaderParseError):
            decoded = str(value)
        values.append(" ".join(_clean(decoded).split()))
    return values


def _decode_payload(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    for encoding, errors in ((charset, "strict"), ("utf-8", "strict"), (charset, "replace"), ("cp1252", "replace")):
        try:
            return _clean(payload.decode(encoding, errors))
        except (LookupError, ValueError):
            continue
    return _clean(payload.decode("latin-1"))


def _bodies(message: Message) -> tuple[list[str], list[str]]:
    """The text of every text/plain and text/html part (forwarded messages included) and the links."""
    texts: list[str] = []
    links: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain":
            texts.append(_decode_payload(part))
        elif content_type == "text/html":
            text, hrefs = html_to_text(_decode_payload(part))
            texts.append(text)
            links.extend(_clean(h) for h in hrefs)
    return texts, links


def _is_site_uuid(token: str) -> Optional[uuid.UUID]:
    try:
        value = uuid.UUID(token)
    except ValueError:
        return None
    if value.int == 0:
        return None
    if "-" not in token and (value.variant != uuid.RFC_4122 or value.version not in (1, 2, 3, 4, 5)):
        return None
    return value


def _site_uuids_in_url(url: str) -> list[uuid.UUID]:
    found = []
    for match in _UUID.finditer(url):
        if _SITE_IN_URL.search(url[: match.start()]) and (value := _is_site_uuid(match.group())):
            found.append(value)
    return found


def _domain_in(text: str) -> str:
    for match in _DOMAIN.finditer(text):
        host = match.group(1).lower().removeprefix("www.")
        if _NOT_SITE_DOMAINS.search(host) or host.rsplit(".", 1)[-1] in _FILE_SUFFIXES:
            continue
        return host
    return ""


def _plausible_name(candidate: str) -> str:
    # "Cafe Realty (caferealty.com)": the domain is read separately; the name is what remains.
    candidate = re.sub(r"[(\[]?\s*" + _DOMAIN.pattern + r"\s*[)\]]?", " ", candidate, flags=re.IGNORECASE)
    candidate = " ".join(candidate.split())
    # "Hi! Our site Aloha Homes (UUID)": the last sentence, after "our site" / "the website".
    candidate = _SENTENCE_BREAK.split(candidate)[-1]
    candidate = _SITE_INTRO.sub("", candidate)
    candidate = candidate.strip(" \t*\u2022-|:,.\"'")
    if not candidate or _URL.search(candidate) or _UUID.search(candidate) or "@" in candidate:
        return ""
    words = candidate.lower().split()
    if len(candidate) > _MAX_NAME_CHARS or len(words) > _MAX_NAME_WORDS or _SENTENCE_WORDS.intersection(words):
        return ""
    if not any(ch.isalpha() for ch in candidate) or _LABEL_SUFFIX.fullmatch(candidate):
        return ""
    return candidate


def _name_on_line(before: str, after: str) -> str:
    """A name set off from the UUID by a separator on its own line, or ""."""
    cells = before.split("|")
    if len(cells) >= 2 and not _LABEL_SUFFIX.sub("", cells[-1]).strip():
        # A table row: the UUID (with at most a label) fills its cell; the name is the cell before.
        if name := _plausible_name(_LABEL_SUFFIX.sub("", cells[-2])):
            return name
    separated = _SEPARATOR_BEFORE.match(_LABEL_SUFFIX.sub("", cells[-1]).rstrip())
    if separated and (name := _plausible_name(separated.group(1))):
        return name
    if following := _SEPARATOR_AFTER.match(after):
        return _plausible_name(next(g for g in following.groups() if g is not None))
    return ""


def _near_lines(lines: list[str], index: int) -> list[str]:
    """Lines around `index`, nearest first, stopping at a line that holds another UUID."""
    near = []
    for step in (-1, 1):
        for offset in range(1, _NEAR_LINES + 1):
            i = index + step * offset
            if not 0 <= i < len(lines) or _UUID.search(lines[i]):
                break
            near.append((offset, lines[i]))
    return [line for _, line in sorted(near, key=lambda item: item[0])]


def _describe(lines: list[str], index: int, start: int, end: int) -> tuple[str, str]:
    """The site name and domain for the UUID at lines[index][start:end]."""
    line = lines[index]
    name = _name_on_line(line[:start], line[end:])
    domain = ""
    for nearby in _near_lines(lines, index):
        if not name and (labelled := _LABELLED_NAME.match(nearby)):
            name = _plausible_name(labelled.group(1))
        if not domain and (labelled := _LABELLED_DOMAIN.match(nearby)):
            domain = _domain_in(labelled.group(1))
    domain = domain or _domain_in(line[:start] + " " + line[end:])
    if not domain:
        domain = next((d for d in (_domain_in(n) for n in _near_lines(lines, index)) if d), "")
    if name and _domain_in(name) == name.lower().removeprefix("www."):
        domain, name = domain or name.lower().removeprefix("www."), ""
    return name, domain


def _sites_in_text(text: str) -> list[FoundSite]:
    found = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        url_spans = [m.span() for m in _URL.finditer(line)]
        for match in _UUID.finditer(line):
            url_start = next((s for s, e in url_spans if s <= match.start() < e), None)
            if url_start is not None and not _SITE_IN_URL.search(line[url_start : match.start()]):
                continue
            value = _is_site_uuid(match.group())
            if value is None:
                continue
            name, domain = _describe(lines, index, match.start(), match.end())
            found.append(FoundSite(site_uuid=value, name=name, domain=domain))
    return found


def _merge(found: list[FoundSite]) -> tuple[FoundSite, ...]:
    """One entry per UUID in order of first appearance, keeping the first name and domain seen."""
    merged: dict[uuid.UUID, FoundSite] = {}
    for site in found:
        known = merged.get(site.site_uuid)
        if known is None:
            merged[site.site_uuid] = site
        else:
            merged[site.site_uuid] = FoundSite(
                site_uuid=site.site_uuid, name=known.name or site.name, domain=known.domain or site.domain
            )
    return tuple(merged.values())


def _addresses(message: Message) -> tuple[str, ...]:
    values = [v for name in _RECIPIENT_HEADERS for v in _header(message, name)]
    seen: dict[str, None] = {}
    for _, address in email.utils.getaddresses(values):
        if "@" in address:
            seen.setdefault(address.strip().lower()[:254], None)
    return tuple(seen)


def parse_grant_email(raw: bytes) -> ParsedGrantEmail:
    """What a grant email says: its ids, addresses, sites and RG company ids. Never raises."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    subject = " ".join(_header(message, "Subject"))
    try:
        texts, links = _bodies(message)
    except RecursionError:
        # Parts nested beyond Python's recursion limit: only hostile mail does that.
        texts, links = [], []
    found = _sites_in_text(subject)
    for text in texts:
        found.extend(_sites_in_text(text))
    found.extend(FoundSite(site_uuid=value) for link in links for value in _site_uuids_in_url(link))
    company_ids = dict.fromkeys(m.group(1) for chunk in [*texts, *links] for m in _GRANT_URL.finditer(chunk))
    senders = email.utils.getaddresses(_header(message, "From"))
    return ParsedGrantEmail(
        message_id=" ".join(_header(message, "Message-ID")).strip(),
        subject=subject,
        sender=senders[0][1].lower()[:254] if senders else "",
        recipients=_addresses(message),
        sites=_merge(found),
        company_ids=tuple(company_ids),
        readable=any(t.strip() for t in texts),
    )

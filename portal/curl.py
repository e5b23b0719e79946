"""A request to Real Geeks as a shell command an engineer can paste: `curl_command` is pure, and
never holds a credential: the Authorization header is left out and `-u` names two environment
variables instead, so the copied text is safe in a ticket or a chat."""

import shlex
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

CREDENTIALS_PLACEHOLDER = '-u "$RG_USERNAME:$RG_PASSWORD"'


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def curl_command(*, method: str, url: str, headers: Iterable[tuple[str, str]], body: str) -> str:
    """`curl` with the method, URL, headers and body, each quoted for a POSIX shell (shlex.quote),
    one option per line. Credentials are placeholders: any Authorization header is dropped, and
    so is a user:password in the URL."""
    parts = ["curl --silent --show-error", f"--request {shlex.quote(method)}", shlex.quote(_without_userinfo(url))]
    parts.append(CREDENTIALS_PLACEHOLDER)
    for name, value in headers:
        if name.lower() in ("authorization", "proxy-authorization"):
            continue
        parts.append(f"--header {shlex.quote(f'{name}: {value}')}")
    if body:
        parts.append(f"--data-binary {shlex.quote(body)}")
    return " \\\n  ".join(parts)

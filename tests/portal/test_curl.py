"""portal.curl: a request as a shell command that round-trips through a POSIX shell's quoting
and never carries a credential."""

import shlex

from portal.curl import curl_command

URL = "https://receivers.example.com/rest/sites/6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b/leads"


def words(command: str) -> list[str]:
    """The command as the shell would split it (line continuations joined first)."""
    return shlex.split(command.replace(" \\\n", " "))


def test_the_body_reaches_curl_unchanged_whatever_quotes_newlines_and_unicode_it_holds():
    body = '{"notes": "It\'s a \\"big\\" lanai\\n$HOME `rm -rf /` ; echo hi", "name": "Kēhau Ōkala 🌺"}\nsecond line'
    argv = words(curl_command(method="POST", url=URL, headers=[], body=body))
    assert argv[argv.index("--data-binary") + 1] == body


def test_credentials_are_placeholders_and_no_authorization_header_is_copied():
    command = curl_command(
        method="PATCH",
        url="https://acme:rg-password-acme@receivers.example.com/rest/sites/x/leads/y",
        headers=[("Authorization", "Basic YWNtZTpyZy1wYXNzd29yZC1hY21l"), ("Content-Type", "application/json")],
        body="{}",
    )
    assert "rg-password-acme" not in command and "YWNtZTpyZy1wYXNzd29yZC1hY21l" not in command
    assert "acme:" not in command
    assert '-u "$RG_USERNAME:$RG_PASSWORD"' in command
    argv = words(command)
    assert argv[argv.index("-u") + 1] == "$RG_USERNAME:$RG_PASSWORD"  # the shell expands it, not us
    assert "https://receivers.example.com/rest/sites/x/leads/y" in argv
    assert argv[argv.index("--header") + 1] == "Content-Type: application/json"


def test_method_url_and_headers_are_quoted_as_single_words():
    argv = words(
        curl_command(method="POST", url=URL + "?a=1&b=2", headers=[("X-ROUTER-DESTINATIONS", "a b;c")], body="")
    )
    assert argv[:5] == ["curl", "--silent", "--show-error", "--request", "POST"]
    assert URL + "?a=1&b=2" in argv
    assert "X-ROUTER-DESTINATIONS: a b;c" in argv
    assert "--data-binary" not in argv  # no body, no data

"""Whether a grant email comes from Real Geeks, read from the trusted receiving server's
Authentication-Results header (grants/sender_auth.py). Pure: no database."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grants.sender_auth import sender_check
from tests.grants.mail_auth import TRUSTED_SERVER, authenticated, sender_auth_email

DOMAINS = ["realgeeks.com"]


def check(raw: bytes, *, trusted: tuple[str, ...] = (TRUSTED_SERVER,), domains: list[str] = DOMAINS):
    return sender_check(raw, trusted_authserv_ids=trusted, sender_domains=domains)


def message(*results: str, sender: str = "Real Geeks <noreply@realgeeks.com>") -> bytes:
    """A message whose headers start with one Authentication-Results header per value, top first."""
    headers = "".join(f"Authentication-Results: {value}\r\n" for value in results)
    return f"{headers}From: {sender}\r\nTo: grants+acme-leads@portal.example\r\nSubject: Grant\r\n\r\nHi\r\n".encode()


def test_a_trusted_servers_dkim_pass_for_realgeeks_verifies_the_sender():
    result = check(sender_auth_email("authenticated_dkim_pass.eml"))
    assert (result.verified, result.detail) == (True, "DKIM pass for realgeeks.com (checked by mx.portal.example)")


def test_an_spf_pass_for_the_from_domain_verifies_the_sender():
    result = check(message(f"{TRUSTED_SERVER}; dkim=none; spf=pass smtp.mailfrom=bounce@realgeeks.com"))
    assert (result.verified, result.detail) == (True, "SPF pass for realgeeks.com (checked by mx.portal.example)")


def test_subdomains_of_a_sender_domain_count():
    raw = message(f"{TRUSTED_SERVER}; dkim=pass header.d=mail.realgeeks.com", sender="noreply@notify.realgeeks.com")
    assert check(raw).verified


@pytest.mark.parametrize("domain", ["evilrealgeeks.com", "realgeeks.com.evil.example"])
def test_a_lookalike_domain_does_not_count(domain):
    raw = message(f"{TRUSTED_SERVER}; dkim=pass header.d={domain}", sender=f"noreply@{domain}")
    result = check(raw)
    assert not result.verified
    assert (
        result.detail == f"DKIM pass for {domain}; From {domain} is not a sender domain (checked by {TRUSTED_SERVER})"
    )


def test_a_message_from_an_attacker_is_not_verified():
    result = check(sender_auth_email("forged_sender.eml"))
    assert (result.verified, result.detail) == (
        False,
        "DKIM none, SPF pass for evil.example; From evil.example is not a sender domain (checked by mx.portal.example)",
    )


def test_a_trusted_looking_header_below_the_receiving_servers_own_does_not_count():
    # The sender wrote the lower header, claiming the receiving server's name; only the topmost counts.
    result = check(sender_auth_email("forged_trusted_header_below.eml"))
    assert (result.verified, result.detail) == (
        False,
        "DKIM fail for evil.example, SPF fail for evil.example (checked by mx.portal.example)",
    )


def test_a_header_from_a_server_that_is_not_trusted_does_not_count():
    result = check(sender_auth_email("forged_untrusted_authserv_id.eml"))
    assert (result.verified, result.detail) == (
        False,
        "no Authentication-Results from a trusted server (only from mx.evil.example)",
    )


def test_dkim_pass_for_realgeeks_on_mail_from_another_domain_is_not_verified():
    # RG's platform may sign its customers' mail; that is not Real Geeks speaking.
    result = check(sender_auth_email("dkim_pass_other_from_domain.eml"))
    assert (result.verified, result.detail) == (
        False,
        "DKIM pass for realgeeks.com, SPF pass for realgeeks.com; From lanikai-homes.example is not a sender domain "
        "(checked by mx.portal.example)",
    )


def test_a_pass_for_one_sender_domain_must_align_with_a_from_in_the_same_one():
    raw = message(f"{TRUSTED_SERVER}; dkim=pass header.d=rg-mail.example", sender="noreply@realgeeks.com")
    result = check(raw, domains=["realgeeks.com", "rg-mail.example"])
    assert not result.verified
    assert result.detail == (
        "DKIM pass for rg-mail.example; not aligned with From realgeeks.com (checked by mx.portal.example)"
    )


def test_an_unreadable_header_above_any_trusted_one_stops_the_search():
    result = check(sender_auth_email("unreadable_authentication_results.eml"))
    assert (result.verified, result.detail) == (False, "an Authentication-Results header could not be read")


def test_a_later_hops_header_above_the_trusted_servers_is_passed_over():
    raw = message("relay.internal.example; none", f"{TRUSTED_SERVER}; dkim=pass header.d=realgeeks.com")
    assert check(raw).verified


@pytest.mark.parametrize(
    "value",
    [
        # Gmail's shape (ARC comment, header.i only, a base64 header.b).
        f"{TRUSTED_SERVER}; dkim=pass header.i=@realgeeks.com header.s=google header.b=Ab+Cd/EF; arc=pass (i=1 "
        "spf=pass spfdomain=realgeeks.com dkim=pass dkdomain=realgeeks.com dmarc=pass fromdomain=realgeeks.com); "
        "spf=pass (google.com: domain of bounce@realgeeks.com designates 198.51.100.25 as permitted sender) "
        "smtp.mailfrom=bounce@realgeeks.com; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=realgeeks.com",
        # Fastmail's shape (a non-standard x-bits property, many methods).
        f"{TRUSTED_SERVER}; dkim=pass (2048-bit rsa key sha256) header.d=realgeeks.com header.i=@realgeeks.com "
        "header.b=Abc12345 header.a=rsa-sha256 header.s=rg1 x-bits=2048; dmarc=pass policy.published-domain-policy"
        "=reject header.from=realgeeks.com; iprev=pass smtp.remote-ip=198.51.100.25 (mail.realgeeks.com); "
        "spf=pass smtp.mailfrom=bounce@realgeeks.com smtp.helo=mail.realgeeks.com; x-me-sender=none",
        # Yahoo's shape (a ";" at the end).
        f"{TRUSTED_SERVER}; dkim=pass header.i=@realgeeks.com header.s=s1; spf=pass smtp.mailfrom=realgeeks.com; "
        "dmarc=pass(p=REJECT) header.from=realgeeks.com;",
        # OpenDKIM's shape, folded over lines.
        f"{TRUSTED_SERVER};\r\n\tdkim=pass (2048-bit key; unprotected) header.d=realgeeks.com\r\n\t"
        "header.i=@realgeeks.com header.a=rsa-sha256 header.s=rg1 header.b=AbCdEfGh",
    ],
    ids=["gmail", "fastmail", "yahoo", "opendkim"],
)
def test_the_header_shapes_of_common_receiving_servers_are_read(value):
    assert check(message(value)).verified


def test_a_result_whose_domain_cannot_be_read_verifies_nothing():
    result = check(message(f"{TRUSTED_SERVER}; dkim=pass header.d=realgeeks.com (unclosed comment"))
    assert (result.verified, result.detail) == (False, "DKIM pass (checked by mx.portal.example)")


def test_authserv_ids_and_domains_match_whatever_their_case():
    raw = message("MX.Portal.Example; DKIM=Pass header.d=RealGeeks.COM", sender="NoReply@REALGEEKS.com")
    assert check(raw, trusted=("mx.PORTAL.example",), domains=["RealGeeks.com"]).verified


@pytest.mark.parametrize(
    "sender", ["noreply@realgeeks.com, attacker@evil.example", "undisclosed-recipients:;", "not an address"]
)
def test_a_message_without_one_from_address_is_not_verified(sender):
    result = check(message(f"{TRUSTED_SERVER}; dkim=pass header.d=realgeeks.com", sender=sender))
    assert not result.verified
    assert "no single From address" in result.detail


def test_with_no_trusted_server_configured_nothing_is_verified():
    result = check(authenticated(sender_auth_email("authenticated_dkim_pass.eml")), trusted=())
    assert (result.verified, result.detail) == (
        False,
        "no Authentication-Results from a trusted server (GRANT_EMAIL_TRUSTED_AUTHSERV_IDS is empty)",
    )


def test_with_no_sender_domain_configured_nothing_is_verified():
    result = check(sender_auth_email("authenticated_dkim_pass.eml"), domains=[])
    assert (result.verified, result.detail) == (False, "no sender domain is configured (GRANT_EMAIL_SENDER_DOMAINS)")


def test_a_message_without_any_authentication_results_is_not_verified():
    assert check(message()).detail == "no Authentication-Results from a trusted server"


def test_deeply_nested_comments_are_unreadable_not_a_crash():
    raw = message(f"{TRUSTED_SERVER}; dkim=pass {'(' * 5000}{')' * 5000} header.d=realgeeks.com")
    assert check(raw).detail == "an Authentication-Results header could not be read"


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=300), sender=st.text(max_size=60))
def test_any_header_value_is_read_without_an_exception(value, sender):
    raw = message(value.replace("\r", " ").replace("\n", " "), sender=sender.replace("\r", " ").replace("\n", " "))
    result = check(raw)
    assert isinstance(result.verified, bool) and len(result.detail) <= 500


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=500))
def test_any_bytes_are_read_without_an_exception(raw):
    assert not check(raw).verified or b"Authentication-Results" in raw

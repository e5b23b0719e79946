"""The grant-email parser on a corpus of messages, one fixture file per case (tests/grants/emails/)."""

import uuid
from pathlib import Path

import pytest

from grants.parsing import FoundSite, parse_grant_email

EMAILS = Path(__file__).parent / "emails"
ALOHA = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
KAILUA = uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40")
MAUI = uuid.UUID("45c48cce-2e2d-4fbd-8a3c-7b9e1f0d6a52")
HALE_KUONO = "Hale K\u016b\u02bbono Realty"  # Hawaiian: u with macron, then the okina


def parse(name: str):
    return parse_grant_email((EMAILS / name).read_bytes())


CORPUS = [
    ("01_plain.eml", [FoundSite(ALOHA, "Aloha Homes", "alohahomes.com")]),
    ("02_html_only.eml", [FoundSite(KAILUA, "Kailua Realty", "kailuarealty.com")]),
    # The UUID is split by a quoted-printable soft line break in the text part.
    ("03_quoted_printable.eml", [FoundSite(ALOHA, "Aloha Homes", "")]),
    ("04_base64.eml", [FoundSite(MAUI, HALE_KUONO, "")]),
    ("05_forwarded_inline.eml", [FoundSite(MAUI, "Maui Homes", "")]),
    ("06_forwarded_attachment.eml", [FoundSite(KAILUA, "Kailua Realty", "")]),
    (
        "07_several_sites.eml",
        [
            FoundSite(ALOHA, "Aloha Homes", ""),
            FoundSite(KAILUA, "Kailua Realty", ""),
            FoundSite(MAUI, "Maui Homes", ""),
        ],
    ),
    ("08_no_uuid.eml", []),
    # Tracking and unsubscribe ids in links are not sites.
    ("09_tracking_uuid_only.eml", []),
    # A UUID in a link counts only when the link names it as a site (/sites/UUID/).
    ("10_site_and_tracking.eml", [FoundSite(ALOHA, "Aloha Homes", ""), FoundSite(KAILUA, "", "")]),
    # The MD5 next to it is 32 hex digits too, but not an RFC 4122 UUID.
    ("11_dashless.eml", [FoundSite(ALOHA, "", "")]),
    ("12_name_and_domain.eml", [FoundSite(ALOHA, "Aloha Homes LLC", "alohahomes.com")]),
    ("13_latin1.eml", [FoundSite(KAILUA, "Café Realty", "cafe-realty.com")]),
    ("14_unknown_charset_subject_uuid.eml", [FoundSite(MAUI, "", "")]),
    ("15_attachment_only.eml", []),
    # "The following site was granted:" is a sentence, not a name; the nil UUID is no site.
    ("16_sentence_and_nil.eml", [FoundSite(ALOHA, "", "")]),
]


def test_the_corpus_covers_every_fixture_file():
    assert sorted(name for name, _ in CORPUS) == sorted(p.name for p in EMAILS.glob("*.eml"))
    assert len(CORPUS) >= 12


@pytest.mark.parametrize(("name", "sites"), CORPUS, ids=[name for name, _ in CORPUS])
def test_it_reads_the_sites_of_each_message(name, sites):
    assert list(parse(name).sites) == sites


def test_it_reads_the_message_id_subject_and_addresses():
    parsed = parse("01_plain.eml")
    assert parsed.message_id == "<plain-1@mail.realgeeks.com>"
    assert parsed.subject == "Site access granted"
    assert parsed.sender == "noreply@realgeeks.com"
    assert parsed.recipients == ("grants+acme-leads@portal.example",)


def test_it_decodes_an_encoded_word_subject():
    assert parse("04_base64.eml").subject == f"Site granted: {HALE_KUONO}"


def test_it_reads_the_company_id_of_a_grant_page_link_in_text_or_html():
    assert parse("01_plain.eml").company_ids == ("acme-co",)
    assert parse("02_html_only.eml").company_ids == ("acme-co",)
    assert parse("05_forwarded_inline.eml").company_ids == ()


def test_a_message_with_only_an_attachment_is_unreadable():
    parsed = parse("15_attachment_only.eml")
    assert not parsed.readable
    assert parse("08_no_uuid.eml").readable


def test_a_message_in_an_unknown_charset_is_still_read():
    assert parse("14_unknown_charset_subject_uuid.eml").readable


@pytest.mark.parametrize(
    ("line", "name", "domain"),
    [
        ("Aloha Homes (8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21)", "Aloha Homes", ""),
        ("Aloha Homes - Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21", "Aloha Homes", ""),
        ("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21 - alohahomes.com", "", "alohahomes.com"),
        (
            "| Aloha Homes | 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21 | www.alohahomes.com |",
            "Aloha Homes",
            "alohahomes.com",
        ),
        ("Access was granted to site 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21 today", "", ""),
        ("Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21 (mail us at help@alohahomes.com)", "", ""),
    ],
)
def test_it_finds_a_name_or_domain_on_the_uuids_own_line(line, name, domain):
    raw = f"Subject: grant\nContent-Type: text/plain\n\n{line}\n".encode()
    assert parse_grant_email(raw).sites == (FoundSite(ALOHA, name, domain),)


def test_a_name_on_a_line_next_to_another_sites_uuid_is_not_borrowed():
    raw = (
        b"Subject: grants\n\n"
        b"Site name: Aloha Homes\n"
        b"Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21\n"
        b"Site UUID: c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40\n"
    )
    assert parse_grant_email(raw).sites == (FoundSite(ALOHA, "Aloha Homes", ""), FoundSite(KAILUA, "", ""))


def test_realgeeks_own_hosts_are_not_a_sites_domain():
    raw = b"Subject: g\n\nSite UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21\nSee https://leadrouter.realgeeks.com/\n"
    assert parse_grant_email(raw).sites == (FoundSite(ALOHA, "", ""),)


def test_empty_and_garbage_input_parse_to_nothing():
    assert parse_grant_email(b"").sites == ()
    assert parse_grant_email(b"\x00\xff\xfe garbage \r\n\r\n\x80").sites == ()

"""Where a partner's RG credentials may go (grants.rg_url): the allowlist's rules, and every way a
URL gets set (add_partner, partner_create, the production setting) refusing what it refuses."""

import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError, call_command

from grants import rg_url
from grants.models import Partner
from grants.services import partner_create
from tests.production import manage, production_env

PRODUCTION = ["receivers.leadrouter.realgeeks.com"]
DEVELOPMENT = [*PRODUCTION, "127.0.0.1", "localhost", "::1"]


@pytest.mark.parametrize(
    "url",
    [
        "https://receivers.leadrouter.realgeeks.com/rest",
        "https://receivers.leadrouter.realgeeks.com",
        "https://receivers.leadrouter.realgeeks.com:443/rest",
        "HTTPS://Receivers.LeadRouter.RealGeeks.com/rest",  # the same host, spelt loudly
    ],
)
def test_rgs_own_host_over_https_is_allowed(url):
    assert rg_url.refusal(url, PRODUCTION) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://receivers.leadrouter.realgeeks.com/rest", "Use https"),
        ("https://receivers.leadrouter.realgeeks.com:8443/rest", "Use port 443"),
        ("https://receivers.leadrouter.realgeeks.com:0443/rest", "not a plain host"),
        ("https://receivers.leadrouter.realgeeks.com:99999/rest", "not a plain host"),
        ("https://user:pw@receivers.leadrouter.realgeeks.com/rest", "user name and password"),
        ("https://receivers.leadrouter.realgeeks.com@evil.example/rest", "user name and password"),
        ("https://evil.example#@receivers.leadrouter.realgeeks.com/rest", "fragment"),
        ("https://evil.example?@receivers.leadrouter.realgeeks.com/rest", "query"),
        ("https://receivers.leadrouter.realgeeks.com\\@evil.example/rest", "plain ASCII"),
        ("https://receivers.leadrouter.realgeeks.com.evil.example/rest", "not a host the portal may send"),
        ("https://evil-receivers.leadrouter.realgeeks.com/rest", "not a host the portal may send"),
        ("https://receivers.leadrouter.realgeeks.com./rest", "trailing dot"),
        ("https://receivers.leadrouter.realgeeks.com/rest?next=x", "query"),
        ("https://receivers.leadrouter.realgeeks.com/rest#x", "fragment"),
        ("https://receivers.leadrouter.realgeeks.com%2eevil.example/rest", "not a plain host"),
        ("https://receivers.leadrouter.realgeeks.com\t.evil.example/rest", "plain ASCII"),
        ("https://receivers.leadrouter.realgeeks.com /rest", "plain ASCII"),
        ("https://r\u0435ceivers.leadrouter.realgeeks.com/rest", "plain ASCII"),  # a Cyrillic e
        ("receivers.leadrouter.realgeeks.com/rest", "whole URL"),
        ("//receivers.leadrouter.realgeeks.com/rest", "whole URL"),
        ("ftp://receivers.leadrouter.realgeeks.com/rest", "Use https"),
        ("http://127.0.0.1:8000/sandbox/rest", "127.0.0.1 is not a host"),
        ("http://localhost/rest", "localhost is not a host"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is not a host"),
        ("https://[::1]/rest", "[::1] is not a host"),
    ],
)
def test_production_refuses_anything_else_and_says_why(url, why):
    problem = rg_url.refusal(url, PRODUCTION)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/sandbox/rest",
        "http://127.0.0.1:51234/sandbox/rest",
        "https://localhost:8443/rest",
        "http://LOCALHOST:9000/rest",
        "http://[::1]:8000/sandbox/rest",
        "https://receivers.leadrouter.realgeeks.com/rest",
    ],
)
def test_development_also_admits_loopback_on_any_port_over_http(url):
    assert rg_url.refusal(url, DEVELOPMENT) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1:8000/rest",
        "http://2130706433:8000/rest",
        "http://0x7f000001/rest",
        "http://0177.0.0.1/rest",
        "http://127.0.0.2/rest",
        "http://0.0.0.0:8000/rest",
        "http://[::ffff:127.0.0.1]/rest",
        "http://[0:0:0:0:0:0:0:1]/rest",
        "http://localhost./rest",
        "http://127.0.0.1.nip.io/rest",
        "http://user@127.0.0.1:8000/rest",
    ],
)
def test_only_loopback_spelt_as_the_allowlist_spells_it_is_loopback(url):
    assert rg_url.refusal(url, DEVELOPMENT) is not None


def test_an_entry_with_a_port_allows_that_port_only():
    allowed = [*PRODUCTION, "rg-proxy.example.com:8443", "127.0.0.1:8000"]
    assert rg_url.refusal("https://rg-proxy.example.com:8443/rest", allowed) is None
    assert rg_url.refusal("https://rg-proxy.example.com/rest", allowed) is not None
    assert rg_url.refusal("http://127.0.0.1:8000/sandbox/rest", allowed) is None
    assert rg_url.refusal("http://127.0.0.1:8001/sandbox/rest", allowed) is not None
    assert rg_url.refusal("http://127.0.0.1/sandbox/rest", allowed) is not None


def test_a_malformed_allowlist_entry_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="REALGEEKS_ALLOWED_HOSTS"):
        rg_url.refusal(
            "https://receivers.leadrouter.realgeeks.com/rest", ["https://receivers.leadrouter.realgeeks.com"]
        )


def test_the_setting_is_the_default_allowlist_and_its_changes_apply_at_once(settings):
    settings.REALGEEKS_ALLOWED_HOSTS = PRODUCTION
    assert rg_url.refusal("http://127.0.0.1:8000/sandbox/rest") is not None
    settings.REALGEEKS_ALLOWED_HOSTS = DEVELOPMENT
    assert rg_url.refusal("http://127.0.0.1:8000/sandbox/rest") is None


def test_the_send_time_check_looks_at_the_host_of_the_url_called():
    assert rg_url.send_refusal("http://127.0.0.1:8000/sandbox/rest/sites/x/leads?y=1") is None
    assert rg_url.send_refusal("https://internal.example/rest/sites/x/leads") is not None
    assert rg_url.send_refusal("https://receivers.leadrouter.realgeeks.com@internal.example/rest/x") is not None


def test_the_validator_raises_the_refusal():
    with pytest.raises(ValidationError) as caught:
        rg_url.validate("http://10.0.0.5/")
    assert caught.value.code == "rg_url_not_allowed"


def production_check(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` in the production shape, with strong secrets and `overrides`."""
    return manage(production_env(tmp_path, **overrides), "check")


def test_production_refuses_to_start_with_a_realgeeks_api_url_outside_the_allowed_hosts(tmp_path):
    result = production_check(tmp_path, REALGEEKS_API_URL="http://169.254.169.254/rest")

    assert result.returncode != 0
    assert "REALGEEKS_API_URL" in result.stderr and "REALGEEKS_ALLOWED_HOSTS" in result.stderr


def test_production_starts_with_rgs_own_url_or_a_host_it_was_told_to_allow(tmp_path):
    assert production_check(tmp_path).returncode == 0
    allowed = production_check(
        tmp_path,
        REALGEEKS_API_URL="https://rg-proxy.example.com:8443/rest",
        REALGEEKS_ALLOWED_HOSTS="receivers.leadrouter.realgeeks.com,rg-proxy.example.com:8443",
    )
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.django_db
def test_add_partner_refuses_an_api_url_outside_the_allowed_hosts():
    with pytest.raises(CommandError, match="REALGEEKS_ALLOWED_HOSTS"):
        call_command(
            "add_partner",
            "--name=Sneaky",
            "--rg-username=sneaky",
            "--rg-password=pw",
            "--webhook-secret=wh",
            "--api-url=http://10.0.0.5:9200/",
        )
    assert not Partner.objects.exists()


@pytest.mark.django_db
def test_partner_create_refuses_an_api_url_outside_the_allowed_hosts():
    with pytest.raises(ValidationError) as caught:
        partner_create(
            name="Sneaky",
            rg_username="sneaky",
            rg_password="pw",
            webhook_secret="wh",
            rg_api_url="https://receivers.leadrouter.realgeeks.com@evil.example/rest",
        )
    assert "rg_api_url" in caught.value.message_dict
    assert not Partner.objects.exists()

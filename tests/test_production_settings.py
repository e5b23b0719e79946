"""Production hardening: what the production environment refuses at start-up, what Django's deploy
check says about it, and the headers every answer carries."""

import secrets

import pytest
from cryptography.fernet import Fernet

from tests.production import manage, production_env


def test_the_deploy_check_is_clean_under_the_documented_production_environment(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


WEAK_KEYS = ["short-key", "a" * 64, "django-insecure-" + secrets.token_urlsafe(50)]


@pytest.mark.parametrize("weak", WEAK_KEYS, ids=["short", "repetitive", "generated"])
def test_a_weak_secret_key_stops_production_start_up(tmp_path, weak):
    result = manage(production_env(tmp_path, SECRET_KEY=weak), "check")
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production" in result.stderr
    assert weak not in result.stderr  # the refusal never prints the key


def test_a_bad_encryption_key_stops_start_up_before_any_secret_is_written(tmp_path):
    good = Fernet.generate_key().decode()
    result = manage(production_env(tmp_path, FIELD_ENCRYPTION_KEYS=f"{good},not-a-fernet-key"), "check")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


def test_production_redirects_plain_http_and_sends_hsts_except_for_healthz(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/login/"
    assert client.get("/healthz").status_code in (200, 503)  # a load balancer's probe, never redirected

    secure = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_every_page_carries_a_policy_without_inline_code(client):
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy

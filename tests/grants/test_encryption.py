import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from grants.encryption import UndecryptableSecret
from grants.models import Partner


def _raw_column(partner: Partner, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM grants_partner WHERE id = %s", [partner.pk])
        return cursor.fetchone()[0]


def test_it_stores_the_rg_password_and_webhook_secrets_encrypted(partner):
    assert "rg-password-acme" not in _raw_column(partner, "rg_password")
    assert "whsec-acme" not in _raw_column(partner, "webhook_secrets_encrypted")
    fresh = Partner.objects.get(pk=partner.pk)
    assert fresh.rg_password == "rg-password-acme"
    assert fresh.webhook_secrets == ["whsec-acme"]


def test_a_wrong_key_fails_loudly_naming_the_setting(partner, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(UndecryptableSecret, match="FIELD_ENCRYPTION_KEYS"):
        Partner.objects.get(pk=partner.pk)


def test_rotation_re_encrypts_with_the_newest_key_so_old_keys_can_go(partner, settings):
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))

    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = Partner.objects.get(pk=partner.pk)
    assert fresh.rg_password == "rg-password-acme"
    assert fresh.webhook_secrets == ["whsec-acme"]

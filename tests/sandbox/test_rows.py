"""The sandbox's one-row reads (sandbox/rows.py) give values as the models' fields would."""

import pytest

from sandbox import rows
from sandbox.models import SandboxAccount, SandboxFaults

pytestmark = pytest.mark.django_db


def test_a_row_comes_back_typed_as_its_fields_and_none_when_missing():
    SandboxFaults.objects.update_or_create(pk=1, defaults={"outage": True, "error_rate": 0.25, "remaining": None})
    account = SandboxAccount(username="jack", site_uuids=["5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70"])
    account.set_password("secret")
    account.save()

    faults = rows.row(SandboxFaults, ("outage", "error_rate", "remaining"), where="id", equals=1)
    found = rows.row(SandboxAccount, ("id", "site_uuids"), where="username", equals="jack")

    assert faults == {"outage": True, "error_rate": 0.25, "remaining": None}
    assert faults["outage"] is True  # SQLite stores 1
    assert found == {"id": account.pk, "site_uuids": ["5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70"]}  # JSON stored as text
    assert rows.row(SandboxAccount, ("id",), where="username", equals="jill") is None

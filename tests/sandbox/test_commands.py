import io
import json

import pytest
from django.core.management import CommandError, call_command

from sandbox import faults
from sandbox.models import SandboxAccount, SandboxUser
from tests.sandbox.conftest import OTHER_SITE, SITE

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_sandbox_account_creates_credentials_for_the_sites_and_stores_only_a_hash():
    line = run("sandbox_account", "--username", "pump", "--password", "pump-pw-123", "--site", str(SITE))
    assert line == f"pump may send to: {SITE}"
    account = SandboxAccount.objects.get(username="pump")
    assert account.check_password("pump-pw-123")
    assert not account.check_password("pump-pw-12")
    assert "pump-pw-123" not in account.password_hash
    assert "pump-pw-123" not in line


def test_sandbox_account_updates_the_password_and_adds_sites():
    run("sandbox_account", "--username", "pump", "--password", "old", "--site", str(SITE))
    run("sandbox_account", "--username", "pump", "--password", "new", "--site", OTHER_SITE.hex)
    account = SandboxAccount.objects.get(username="pump")
    assert account.check_password("new") and not account.check_password("old")
    assert account.may_send_to(str(SITE)) and account.may_send_to(str(OTHER_SITE))


def test_each_new_site_gets_the_demo_agents_once_and_more_can_be_added():
    run("sandbox_account", "--username", "pump", "--password", "pw", "--site", str(SITE))
    run(
        "sandbox_account",
        *("--username", "pump", "--password", "pw", "--site", str(SITE), "--site", str(OTHER_SITE)),
        *("--agent", "501:Noe Ka'ai:noe@example.com", "--agent", "502:Lani: Realtor:lani@example.com"),
    )
    for site in (SITE, OTHER_SITE):
        users = [u.data for u in SandboxUser.objects.filter(site_uuid=site)]
        assert [(u["id"], u["name"]) for u in users] == [
            ("14187", "Kalani Akana"),
            ("14188", "Mele Kahale"),
            ("501", "Noe Ka'ai"),
            ("502", "Lani: Realtor"),
        ]
        assert users[2] == {"id": "501", "role": "Agent", "name": "Noe Ka'ai", "email": "noe@example.com"}


@pytest.mark.parametrize(
    "args",
    [
        ("--site", "not-a-uuid"),
        ("--site", str(SITE), "--agent", "only-an-id"),
        ("--site", str(SITE), "--agent", "1::x@example.com"),
        (),
    ],
)
def test_sandbox_account_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("sandbox_account", "--username", "pump", "--password", "pw", *args, stdout=io.StringIO())
    assert not SandboxAccount.objects.exists()


def test_sandbox_faults_changes_the_named_settings_and_prints_them_as_json():
    assert json.loads(run("sandbox_faults")) == faults.faults_as_dict(faults.faults_current())
    printed = json.loads(run("sandbox_faults", "--latency-ms", "150", "--error-rate", "0.2", "--outage"))
    assert (printed["latency_ms"], printed["error_rate"], printed["outage"]) == (150, 0.2, True)
    printed = json.loads(
        run("sandbox_faults", "--no-outage", "--hang-seconds", "2.5", "--html-errors", "--remaining", "3")
    )
    assert printed == {
        "latency_ms": 150,
        "error_rate": 0.2,
        "outage": False,
        "hang_seconds": 2.5,
        "html_errors": True,
        "remaining": 3,
    }
    assert faults.faults_as_dict(faults.faults_current()) == printed
    assert json.loads(run("sandbox_faults", "--forever"))["remaining"] is None


def test_sandbox_faults_reset_clears_everything_before_applying_the_rest():
    run("sandbox_faults", "--latency-ms", "150", "--outage")
    printed = json.loads(run("sandbox_faults", "--reset", "--error-rate", "1"))
    assert printed["error_rate"] == 1.0
    assert (printed["latency_ms"], printed["outage"]) == (0, False)


@pytest.mark.parametrize(
    "args", [("--error-rate", "1.5"), ("--error-rate", "nan"), ("--latency-ms", "-5"), ("--hang-seconds", "inf")]
)
def test_sandbox_faults_refuses_out_of_range_settings(args):
    with pytest.raises(CommandError):
        call_command("sandbox_faults", *args, stdout=io.StringIO())
    assert not faults.faults_current().is_active()

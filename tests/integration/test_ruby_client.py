"""RG's Ruby client (the `lead_router` gem, run by Debian's ruby and ruby-rest-client) against
the portal for real: gunicorn behind TLS with a throwaway certificate the client trusts, a Celery
worker and beat, PostgreSQL, Redis, and the sandbox standing in for RG over HTTP.

The client always builds `https://HOST/rest/...`, so a second gunicorn of the same stack serves
HTTPS for it; the stack's own plain-HTTP web process stays where the workers deliver (the
sandbox). One run of tests/integration/ruby/drive.rb makes every call; the tests read its
outcomes and what reached the sandbox.
"""

import ipaddress
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from leads.api.rg_only import LEAD_MANAGER_ONLY
from portal.management.commands.demo_setup import DEMO_SITE_UUID
from tests.integration import servers
from tests.integration.test_pipeline import FAST, new_lead

pytestmark = pytest.mark.integration

# CI clones the repository with RG's client files in ../shared beside it (SOURCE.md there).
CLIENT_LIB = servers.REPO_DIR.parent / "shared" / "clients" / "ruby-lead_router" / "lib"
DRIVER = Path(__file__).parent / "ruby" / "drive.rb"
SITE = str(DEMO_SITE_UUID)  # granted, with a sandbox account, by every stack's demo_setup
DESTINATIONS = ["buyers-team", "crm"]
AGENT_ID = "14187"


@dataclass(frozen=True)
class Drive:
    """One run of the Ruby client as the demo partner (made by every stack's demo_setup): the
    stack it ran against, its two leads and the outcome of each call."""

    stack: servers.PortalStack
    lead_id: str
    seller_id: str
    outcomes: list[dict[str, Any]]

    def wait_delivered(self, lead_id: str, count: int) -> None:
        def delivered() -> bool:
            rows = self.stack.sql(
                "SELECT d.status FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id WHERE l.lead_id = %s",
                (lead_id,),
            )
            return [status for (status,) in rows] == ["delivered"] * count

        servers.wait_for(delivered, timeout=60, what=f"{count} deliveries of lead {lead_id} delivered")

    def received(self, lead_id: str) -> list[dict[str, Any]]:
        """What the sandbox received for the lead, oldest first."""
        return self.stack.sandbox_requests(lead_id)

    def requests_seen(self, lead_id: str) -> list[tuple[str, str, int]]:
        """(method, path under the sandbox, status) of each request for the lead, oldest first."""
        return [(r["method"], r["path"].split("/sandbox")[-1], r["status"]) for r in self.received(lead_id)]


def ruby_or_unavailable() -> str:
    """The ruby binary, once it is known to load rest-client; else skip (or fail on CI)."""
    ruby = shutil.which("ruby")
    if ruby is None:
        servers.unavailable("ruby not found (apt-get install ruby ruby-rest-client)")
    assert ruby is not None
    loads = subprocess.run([ruby, "-e", 'require "rest-client"'], capture_output=True, timeout=60)
    if loads.returncode != 0:
        servers.unavailable("Ruby cannot load rest-client (apt-get install ruby-rest-client)")
    if not (CLIENT_LIB / "lead_router.rb").is_file():
        servers.unavailable(f"RG's Ruby client is not at {CLIENT_LIB} (../shared beside the repository)")
    return ruby


def certificate_make(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files).

    It is its own CA (basicConstraints CA:TRUE), so it can be the only entry of a trust store.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "partner portal integration test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def tls_web_start(stack: servers.PortalStack, cert: Path, key: Path) -> str:
    """Another gunicorn of the stack (the Procfile's web line, same environment) serving HTTPS
    on a free port; its `host:port` once it answers. It stops, and shows its log on a failure,
    with the stack's own processes."""
    port = servers.free_port()
    tls = shlex.join(["--certfile", str(cert), "--keyfile", str(key)])
    command = f"{servers.procfile_commands()['web']} {tls}"
    process = servers.ManagedProcess(
        "web-tls",
        ["/bin/sh", "-c", f"exec {command}"],
        log_path=stack.root / "web-tls.log",
        env={**stack.env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        cwd=servers.REPO_DIR,
    )
    stack.processes["web-tls"] = process
    trusting = ssl.create_default_context(cafile=str(cert))

    def answering() -> bool:
        if not process.alive():
            raise process.startup_error("exited during start-up")
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/login/", context=trusting, timeout=5) as response:
            return response.status == 200

    servers.wait_for(answering, timeout=60, what=f"gunicorn to answer HTTPS on port {port}", interval=0.3)
    return f"127.0.0.1:{port}"


def ruby_client_run(ruby: str, *, cert: Path, host: str, user: str, token: str, calls: list[Any]) -> Any:
    """Run drive.rb with the plan; the outcome of each call, in order."""
    plan = {"host": host, "user": user, "token": token, "calls": calls}
    result = subprocess.run(
        [ruby, "-I", str(CLIENT_LIB), str(DRIVER)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        # Ruby's OpenSSL reads its trust store from here: only the throwaway certificate.
        env={**os.environ, "SSL_CERT_FILE": str(cert)},
        timeout=120,
    )
    assert result.returncode == 0, f"drive.rb exited with {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout)


def demo_api_key(stack: servers.PortalStack) -> tuple[str, str]:
    """The demo partner's API key id and secret, as demo_setup printed them."""
    found = re.search(r"API key for partner 'demo' .*: (\S+):(\S+)", stack.demo_output)
    assert found, stack.demo_output
    return found.group(1), found.group(2)


@pytest.fixture(scope="module")
def drive(module_portal_stack, tmp_path_factory) -> Drive:
    ruby = ruby_or_unavailable()
    stack = module_portal_stack(beat=True, env=FAST)
    cert, key = certificate_make(tmp_path_factory.mktemp("tls"))
    host = tls_web_start(stack, cert, key)
    user, token = demo_api_key(stack)
    lead, seller = new_lead(first_name="Jack"), str(uuid.uuid4())
    calls = [
        {"method": "create_lead", "args": [SITE, lead, DESTINATIONS]},
        {"method": "update_lead", "args": [SITE, lead["id"], {"notes": "Prefers email"}]},
        {"method": "add_activities", "args": [SITE, lead["id"], [{"type": "note", "description": "Called back"}]]},
        {
            "method": "create_potential_seller_lead",
            "args": [SITE, {"id": seller, "activities": [{"type": "property_viewed", "property": {"mls": "12345"}}]}],
        },
        {"method": "update_user", "args": [SITE, AGENT_ID, {"name": "Kai Kahale", "role": "Agent"}]},
        {"method": "delete_user", "args": [SITE, AGENT_ID]},
    ]
    outcomes = ruby_client_run(ruby, cert=cert, host=host, user=user, token=token, calls=calls)
    return Drive(stack, lead["id"], seller, outcomes)


def test_the_portal_answers_the_ruby_client_as_rg_does(drive):
    accepted, refused = drive.outcomes[:4], drive.outcomes[4:]

    assert [(o["status"], json.loads(o["body"])) for o in accepted] == [(201, {}), (200, {}), (200, {}), (201, {})]
    assert all("error" not in o for o in accepted)
    # RG refuses user changes to all but its Lead Manager; the client raises with the answer.
    assert [(o["status"], json.loads(o["body"])) for o in refused] == [(403, {"error": LEAD_MANAGER_ONLY})] * 2
    assert all(o["error"].startswith("403 Forbidden") for o in refused)


def test_the_leads_reach_the_sandbox_in_order_exactly_once(drive):
    drive.wait_delivered(drive.lead_id, count=3)
    drive.wait_delivered(drive.seller_id, count=1)
    time.sleep(1.5)  # a few more sweeps (every 0.5 s): nothing may be sent twice

    assert drive.requests_seen(drive.lead_id) == [
        ("POST", f"/rest/sites/{SITE}/leads", 201),
        ("PATCH", f"/rest/sites/{SITE}/leads/{drive.lead_id}", 200),
        ("POST", f"/rest/sites/{SITE}/leads/{drive.lead_id}/activities", 200),
    ]
    assert drive.requests_seen(drive.seller_id) == [("POST", f"/rest/sites/{SITE}/potential-seller-leads", 201)]


def test_the_creates_router_destinations_reach_the_sandbox(drive):
    drive.wait_delivered(drive.lead_id, count=3)
    drive.wait_delivered(drive.seller_id, count=1)

    create, update, activities = drive.received(drive.lead_id)
    assert create["router_destinations"] == ",".join(DESTINATIONS)
    assert (update["router_destinations"], activities["router_destinations"]) == ("", "")
    assert [r["router_destinations"] for r in drive.received(drive.seller_id)] == [""]

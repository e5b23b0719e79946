"""The signature tests every signed endpoint inherits (REALGEEKS_API.md section 2).

A test class for an endpoint subclasses SignedEndpointContract and provides the `endpoint`
fixture: a SignedEndpoint saying how to post a body with a signature header (or none), which
status means accepted, and how many requests it has stored. The signing secrets are the
partner's webhook secrets, newest first.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from grants.models import Partner
from grants.signing import sign

BODY = b'{"action": "integration_enabled", "site_uuid": "8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21", "partner_id": "p-1"}'


@dataclass
class SignedEndpoint:
    post: Callable[[bytes, str | None], Any]
    """Posts `body` with this X-Lead-Router-Signature (None: no header); returns the response."""
    partner: Partner
    accepted_status: int
    stored: Callable[[], int]
    """How many requests the endpoint has kept."""


class SignedEndpointContract:
    @pytest.fixture
    def endpoint(self) -> SignedEndpoint:
        raise NotImplementedError("A signed endpoint's test class provides the `endpoint` fixture.")

    def assert_rejected(self, endpoint: SignedEndpoint, response: Any) -> None:
        assert response.status_code == 401
        assert isinstance(response.json().get("error"), str)
        assert endpoint.stored() == 0

    def test_the_exact_signed_bytes_are_accepted(self, endpoint: SignedEndpoint):
        response = endpoint.post(BODY, sign(BODY, endpoint.partner.webhook_secrets[0]))
        assert response.status_code == endpoint.accepted_status
        assert endpoint.stored() == 1

    def test_a_missing_signature_is_rejected(self, endpoint: SignedEndpoint):
        self.assert_rejected(endpoint, endpoint.post(BODY, None))

    def test_an_empty_signature_is_rejected(self, endpoint: SignedEndpoint):
        self.assert_rejected(endpoint, endpoint.post(BODY, ""))

    def test_a_wrong_signature_is_rejected(self, endpoint: SignedEndpoint):
        self.assert_rejected(endpoint, endpoint.post(BODY, "0" * 64))

    def test_a_signature_made_with_another_secret_is_rejected(self, endpoint: SignedEndpoint):
        self.assert_rejected(endpoint, endpoint.post(BODY, sign(BODY, "not-the-partners-secret")))

    def test_a_rotated_out_secret_is_accepted_while_listed_and_rejected_once_removed(self, endpoint: SignedEndpoint):
        partner = endpoint.partner
        old = partner.webhook_secrets[0]
        partner.webhook_secrets = ["whsec-rotated-new", old]
        partner.save()
        assert endpoint.post(BODY, sign(BODY, old)).status_code == endpoint.accepted_status
        assert endpoint.post(BODY, sign(BODY, "whsec-rotated-new")).status_code == endpoint.accepted_status

        partner.webhook_secrets = ["whsec-rotated-new"]
        partner.save()
        other = BODY.replace(b"p-1", b"p-2")
        response = endpoint.post(other, sign(other, old))
        assert response.status_code == 401

    def test_a_body_tampered_with_after_signing_is_rejected(self, endpoint: SignedEndpoint):
        signature = sign(BODY, endpoint.partner.webhook_secrets[0])
        self.assert_rejected(endpoint, endpoint.post(BODY.replace(b"p-1", b"p-9"), signature))

    def test_a_body_reserialised_after_signing_is_rejected(self, endpoint: SignedEndpoint):
        signature = sign(BODY, endpoint.partner.webhook_secrets[0])
        reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
        assert reserialised != BODY and json.loads(reserialised) == json.loads(BODY)
        self.assert_rejected(endpoint, endpoint.post(reserialised, signature))

    def test_an_uppercase_hex_signature_of_the_exact_bytes_is_accepted(self, endpoint: SignedEndpoint):
        # RG sends lowercase hex; the comparison is over the digest, not the letter case.
        response = endpoint.post(BODY, sign(BODY, endpoint.partner.webhook_secrets[0]).upper())
        assert response.status_code == endpoint.accepted_status

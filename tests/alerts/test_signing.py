"""Standard Webhooks signatures: the spec's own example, and the secrets the portal accepts."""

from datetime import UTC, datetime

import pytest
import standardwebhooks

from alerts import signing

# The example in the Standard Webhooks specification.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_of_the_specifications_example():
    ours = signing.signature(secret=SECRET, msg_id=MSG_ID, timestamp=TIMESTAMP, body=BODY.encode())
    reference = standardwebhooks.Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(TIMESTAMP, tz=UTC), BODY)
    assert ours == reference == SIGNATURE


def test_a_new_secret_is_accepted_by_the_reference_implementation():
    secret = signing.secret_new()
    assert signing.secret_refusal(secret) is None
    headers = signing.headers(secret=secret, msg_id=MSG_ID, timestamp=int(datetime.now(UTC).timestamp()), body=b"{}")
    assert standardwebhooks.Webhook(secret).verify(b"{}", headers) == {}


@pytest.mark.parametrize(
    "secret, problem",
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with whsec_"),
        ("whsec_not base64!", "is base64"),
        ("whsec_QUJDRA==", "24 to 64 bytes"),
    ],
)
def test_secrets_that_cannot_sign_are_refused(secret, problem):
    assert problem in (signing.secret_refusal(secret) or "")

"""Standard Webhooks signatures, checked by the reference ``standardwebhooks`` library."""

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from delivery.signing import InvalidSecret, generate_secret, sign, webhook_headers


def test_reference_library_verifies_our_signature():
    secret = generate_secret()
    body = '{"type":"message.received","data":{"subject":"héllo"}}'.encode()
    headers = webhook_headers([secret], "evt_123", int(time.time()), body)
    assert Webhook(secret).verify(body, headers)["data"]["subject"] == "héllo"


def test_tampered_body_fails_verification():
    secret = generate_secret()
    headers = webhook_headers([secret], "evt_1", int(time.time()), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def test_rotation_signs_with_every_secret():
    old, new = generate_secret(), generate_secret()
    body = b"{}"
    headers = webhook_headers([new, old], "evt_9", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_secret_format():
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    with pytest.raises(InvalidSecret):
        sign(["nothex"], "evt", 1, b"")

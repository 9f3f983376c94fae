"""The web role over HTTP: health, Prometheus metrics gathered from every ``serve`` process, and the
signed, expiring content links that webhooks carry."""

from __future__ import annotations

import json
import smtplib
import time
from urllib.error import HTTPError
from urllib.parse import parse_qs, quote, urlsplit
from urllib.request import urlopen

import pytest

from tests.conftest import SAMPLES


@pytest.fixture
def running(instance, receiver):
    instance.add_domain("example.com")
    instance.add_webhook(receiver.url)
    instance.start("serve")
    return instance, receiver


def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urlopen(url, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_health_and_metrics_after_traffic(running):
    inst, receiver = running
    base = f"http://127.0.0.1:{inst.web_port}"
    status, body, _ = _get(f"{base}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "database": True, "redis": True}
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.sendmail("a@sender.test", ["support@example.com"], (SAMPLES / "plain.eml").read_bytes())
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("a@sender.test", ["x@elsewhere.test"], b"Subject: x\r\n\r\nx\r\n")
    receiver.wait_for(1)
    deadline = time.monotonic() + 15
    while True:  # the worker's counters land in the shared multiprocess directory
        text = _get(f"{base}/metrics")[1].decode()
        if 'mailkite_webhook_attempts_total{outcome="delivered"} 1.0' in text or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert 'mailkite_smtp_messages_total{outcome="accepted",reason="ok"} 1.0' in text
    assert 'mailkite_smtp_recipients_refused_total{reason="relay_denied"} 1.0' in text
    assert 'mailkite_webhook_attempts_total{outcome="delivered"} 1.0' in text
    assert 'mailkite_pipeline_stage_seconds_count{stage="parse"} 1.0' in text
    assert "mailkite_outbox_depth 0.0" in text and "mailkite_queue_depth 0.0" in text


def test_signed_links_are_checked(running):
    inst, receiver = running
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.sendmail("a@sender.test", ["support@example.com"], (SAMPLES / "attachments.eml").read_bytes())
    data = receiver.wait_for(1)[0].json()["data"]
    pdf = next(a for a in data["attachments"] if a["filename"] == "INV-2026-0042.pdf")
    status, body, headers = _get(pdf["url"])
    assert status == 200 and body.startswith(b"%PDF-1.4") and headers["content-type"] == "application/pdf"
    assert "INV-2026-0042.pdf" in headers["content-disposition"]

    parts = urlsplit(pdf["url"])
    query = parse_qs(parts.query)
    base = f"{parts.scheme}://{parts.netloc}"
    tampered = f"{base}{parts.path}?expires={query['expires'][0]}&signature={'0' * 64}"
    expired = f"{base}{parts.path}?expires={int(time.time()) - 1}&signature={query['signature'][0]}"
    other_message = pdf["url"].replace(data["id"], "msg_000000000000000000000000000")
    unsigned = f"{base}{parts.path}"
    # Hostile query values: each a 403, never a 500 (non-ASCII signature, a digit int() refuses,
    # more digits than int() converts)
    junk = [f"{base}{parts.path}?expires={quote(e)}&signature={quote(sig)}"
            for e, sig in ((query["expires"][0], "é" * 64), ("²", query["signature"][0]),
                           ("9" * 5000, query["signature"][0]))]
    for url in (tampered, expired, other_message, unsigned, *junk):
        status, body, _ = _get(url)
        assert status == 403 and json.loads(body)["error"]["code"] == "forbidden", url
    status, body, _ = _get(f"http://127.0.0.1:{inst.web_port}/nope")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"

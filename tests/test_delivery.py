"""Webhook delivery against a real receiver, with real processes (MX + rq worker over our own Redis)
on a compressed retry schedule: retries keep the webhook-id, 410 disables, timeouts and redirects are
failed attempts, Retry-After is honoured, exhausted events are failed and can be replayed."""

from __future__ import annotations

import smtplib
import threading
import time

import pytest
from standardwebhooks import Webhook

from store.db import Database
from store.events import attempts_for, list_events
from tests.conftest import SAMPLES
from tests.support.instance import MailkiteInstance
from tests.support.servers import WebhookReceiver

RAW = (SAMPLES / "plain.eml").read_bytes()


@pytest.fixture
def make_stack(tmp_path, redis_url):
    made: list[tuple[MailkiteInstance, WebhookReceiver]] = []

    def make(responder, *, schedule="0,0.5,0.5,0.5", timeout="2"):
        receiver = WebhookReceiver(responder=responder).start()
        inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url, extra_env={
            "MAILKITE_WEBHOOK_RETRY_SCHEDULE_S": schedule, "MAILKITE_WEBHOOK_TIMEOUT_S": timeout})
        inst.add_domain("example.com")
        endpoint_id, secret = inst.add_webhook(receiver.url)
        inst.start("serve")
        made.append((inst, receiver))
        return inst, receiver, endpoint_id, secret

    yield make
    for inst, receiver in made:
        inst.stop_all()
        receiver.stop()


def _db(inst: MailkiteInstance) -> Database:
    return Database(f"sqlite:///{inst.data_dir / 'mailkite.db'}")


def _send(inst: MailkiteInstance, raw: bytes = RAW) -> None:
    with smtplib.SMTP("127.0.0.1", inst.mx_port) as c:
        c.sendmail("a@sender.test", ["support@example.com"], raw)


def _wait(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def test_500_500_200_is_three_attempts_with_one_webhook_id(make_stack):
    inst, receiver, _, secret = make_stack(lambda req, n: ([500, 500, 200][min(n, 2)], {}, 0))
    _send(inst)
    reqs = receiver.wait_for(3)
    time.sleep(1.5)
    assert len(receiver.requests) == 3  # no fourth attempt after the 200
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    for r in reqs:
        Webhook(secret).verify(r.body, r.headers)
    db = _db(inst)
    (event,) = _wait(lambda: [e for e in list_events(db) if e.state == "delivered"])
    assert event.id == reqs[0].headers["webhook-id"] and event.attempts == 3
    log = attempts_for(db, event.id)
    assert [(a.attempt, a.status_code, a.outcome) for a in log] == [(1, 500, "retry"), (2, 500, "retry"),
                                                                     (3, 200, "delivered")]
    assert all(a.latency_ms > 0 for a in log)


def test_410_disables_the_endpoint_and_says_why(make_stack):
    inst, receiver, endpoint_id, _ = make_stack(lambda req, n: (410, {}, 0))
    _send(inst)
    receiver.wait_for(1)
    def disabled_listing():
        out = inst.cli("webhook", "list").stdout
        return out if "disabled" in out else None

    listing = _wait(disabled_listing)
    assert endpoint_id in listing and "410 Gone" in listing
    (event,) = list_events(_db(inst))
    assert event.state == "failed"
    _send(inst)  # a disabled endpoint gets nothing more
    time.sleep(2)
    assert len(receiver.requests) == 1
    inst.cli("webhook", "enable", endpoint_id)
    assert "disabled" not in inst.cli("webhook", "list").stdout


def test_timeout_is_a_failed_attempt_then_retried(make_stack):
    inst, receiver, _, _ = make_stack(lambda req, n: (200, {}, 3.0 if n == 0 else 0), timeout="1")
    _send(inst)
    reqs = receiver.wait_for(2, timeout=30)
    assert reqs[0].headers["webhook-id"] == reqs[1].headers["webhook-id"]
    db = _db(inst)
    (event,) = _wait(lambda: [e for e in list_events(db) if e.state == "delivered"])
    first, second = attempts_for(db, event.id)[:2]
    assert first.status_code is None and "timeout" in first.error and first.outcome == "retry"
    assert second.status_code == 200


def test_exhausted_event_is_failed_then_replayed_with_the_same_id(make_stack):
    state = {"ok": False}
    inst, receiver, _, secret = make_stack(lambda req, n: (200 if state["ok"] else 500, {}, 0),
                                           schedule="0,0.3,0.3")
    _send(inst)
    receiver.wait_for(3)
    db = _db(inst)
    (failed,) = _wait(lambda: [e for e in list_events(db, failed_only=True)])
    assert failed.attempts == 3 and failed.last_status_code == 500
    assert failed.id in inst.cli("events", "list", "--failed").stdout
    state["ok"] = True
    inst.cli("events", "replay", failed.id)
    reqs = receiver.wait_for(4)
    assert reqs[3].headers["webhook-id"] == failed.id
    Webhook(secret).verify(reqs[3].body, reqs[3].headers)
    _wait(lambda: [e for e in list_events(db) if e.state == "delivered"])
    bad = inst.cli("events", "replay", "evt_doesnotexist", check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == "mailkite: no event evt_doesnotexist"


def test_retry_after_on_429_is_honoured(make_stack):
    inst, receiver, _, _ = make_stack(lambda req, n: (429, {"Retry-After": "2"}, 0) if n == 0 else (200, {}, 0))
    _send(inst)
    first, second = receiver.wait_for(2, timeout=30)
    assert second.at - first.at >= 1.9  # the schedule alone would retry after 0.5 s


def test_redirects_are_not_followed(make_stack):
    target = WebhookReceiver().start()
    try:
        inst, receiver, _, _ = make_stack(lambda req, n: (302, {"Location": target.url}, 0) if n == 0 else (200, {}, 0))
        _send(inst)
        receiver.wait_for(2)
        assert target.requests == []
        event = _wait(lambda: [e for e in list_events(_db(inst)) if e.state == "delivered"])[0]
        assert "redirect" in attempts_for(_db(inst), event.id)[0].error
    finally:
        target.stop()


def test_concurrent_messages_each_get_one_event_per_endpoint(tmp_path, redis_url):
    receivers = [WebhookReceiver().start() for _ in range(2)]
    inst = MailkiteInstance(data_dir=tmp_path / "var", redis_url=redis_url)
    try:
        inst.add_domain("example.com")
        for r in receivers:
            inst.add_webhook(r.url)
        inst.start("serve")
        threads = [threading.Thread(target=_send, args=(inst,)) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in receivers:
            reqs = r.wait_for(10)
            time.sleep(1)
            assert len(r.requests) == 10
            assert len({q.json()["data"]["id"] for q in reqs}) == 10
    finally:
        inst.stop_all()
        for r in receivers:
            r.stop()

"""New-mail notifications between processes (imapwindow/notify.py), over a real Redis."""

from __future__ import annotations

import json
import time

import redis

from imapwindow.notify import CHANNEL, Publisher


def test_every_distinct_event_arrives_in_order(redis_url) -> None:
    listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    publisher = Publisher(redis_url)
    sent = [{"t": "mail", "domain": f"d{i % 3}.test"} for i in range(60)] + [{"t": "revoked", "id": "app_1"}]
    for event in sent:
        publisher.publish(event)
    publisher.close()
    got, deadline = [], time.monotonic() + 5
    while time.monotonic() < deadline and {"t": "revoked", "id": "app_1"} not in got:
        message = listener.get_message(timeout=0.2)
        if message:
            got.append(json.loads(message["data"]))
    assert [e for e in got if e["t"] == "revoked"] == [{"t": "revoked", "id": "app_1"}]
    assert {e["domain"] for e in got if e["t"] == "mail"} == {"d0.test", "d1.test", "d2.test"}
    assert len(got) <= len(sent)


def test_a_burst_is_published_once_per_distinct_event(redis_url) -> None:
    publisher = Publisher(redis_url)
    publisher.close()  # the thread is gone: what follows stays queued for _drain to see at once
    for domain in ["a.test", "b.test", "a.test", "a.test", "b.test"]:
        publisher.publish({"domain": domain, "t": "mail"})
    publisher.publish(None)
    publisher.publish({"t": "mail", "domain": "after-stop.test"})
    texts, stopping = publisher._drain({"t": "mail", "domain": "b.test"})
    assert [json.loads(t)["domain"] for t in texts] == ["b.test", "a.test"] and stopping

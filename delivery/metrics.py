"""Prometheus metrics of webhook delivery."""

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter("mailkite_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"])
ATTEMPT_SECONDS = Histogram("mailkite_webhook_attempt_seconds", "HTTP time of one delivery attempt",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30))
RELAYED = Counter("mailkite_outbox_relayed_total", "Events moved from the outbox into the queue")

"""Prometheus metrics of the MX listener (exposed by the web role at ``/metrics``)."""

from prometheus_client import Counter, Histogram

MESSAGES = Counter("mailkite_smtp_messages_total", "SMTP transactions by outcome and reason",
                   ["outcome", "reason"])
RECIPIENTS_REFUSED = Counter("mailkite_smtp_recipients_refused_total", "RCPT TO refused, by reason", ["reason"])
STAGE_SECONDS = Histogram("mailkite_pipeline_stage_seconds", "Time spent per ingest stage", ["stage"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
MESSAGE_BYTES = Histogram("mailkite_smtp_message_bytes", "Size of accepted messages",
                          buckets=(1e3, 5e3, 2e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7))

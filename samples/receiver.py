"""A tiny webhook receiver for trying mailkite out: verifies each delivery with the
``standardwebhooks`` library and prints what arrived.

    pip install standardwebhooks
    python samples/receiver.py whsec_… [--port 8025]

Answers 204 to verified deliveries and 401 to anything else (mailkite then retries).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def main() -> None:
    ap = argparse.ArgumentParser(description="Print verified mailkite webhooks.")
    ap.add_argument("secret", help="the whsec_ secret printed by 'mailkite webhook add'")
    ap.add_argument("--port", type=int, default=8025)
    args = ap.parse_args()
    webhook = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        wbufsize = 64 * 1024  # one write per response (no Nagle/delayed-ACK stall)

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = webhook.verify(body, dict(self.headers.items()))
            except WebhookVerificationError as exc:
                print(f"rejected a delivery: {exc}")
                self.send_response(401)
                self.end_headers()
                return
            data = event["data"]
            print(f"{event['type']} {self.headers['webhook-id']}  {data['from']['address'] if data['from'] else '-'}"
                  f" -> {data['inbox']}  {data['subject']!r}")
            print(json.dumps({k: data[k] for k in ("extracted_text", "attachments", "auth", "spam", "virus")},
                             indent=2, ensure_ascii=False))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    print(f"listening on http://127.0.0.1:{args.port}/")
    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

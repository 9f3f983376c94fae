"""inbound.prepare: what the parse processes do (parse, IMAP structure, local blob writes)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from inbound.prepare import BlobKeys, ParsedFacts, prepare
from parser import parse
from store.blobs import BlobError, open_blob_store
from tests.conftest import SAMPLES

RAW = (SAMPLES / "attachments.eml").read_bytes()
TRACE = b"Authentication-Results: mx.test; spf=pass\r\n"


def test_with_a_local_store_both_blobs_are_written_and_only_the_facts_come_back(tmp_path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    keys = BlobKeys.for_transaction("txn_1", datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert (keys.raw, keys.parsed) == ("raw/2026/11/22/txn_1.eml", "parsed/2026/11/22/txn_1.json")
    out = prepare(TRACE + RAW, len(TRACE), keep=True, blobs=(store.local_url, keys), need_parsed=False)
    assert out.blobs_written and out.parsed is None and out.structure is not None
    expected = parse(RAW)
    assert out.facts == ParsedFacts.of(expected)
    assert store.get(keys.raw) == TRACE + RAW
    assert json.loads(store.get(keys.parsed)) == json.loads(json.dumps(expected.to_json()))


def test_without_blobs_nothing_is_written_and_the_whole_message_comes_back(tmp_path) -> None:
    out = prepare(RAW, 0, keep=False)
    assert not out.blobs_written and out.structure is None
    assert out.parsed is not None and out.parsed.subject == out.facts.subject == "Invoice INV-2026-0042"


def test_a_failing_write_raises_blob_error(tmp_path) -> None:
    root = tmp_path / "blobs"
    store = open_blob_store(root.as_uri())
    root.rmdir()
    root.write_text("a file where the folder should be")
    keys = BlobKeys.for_transaction("txn_2", datetime(2026, 11, 22, tzinfo=timezone.utc))
    with pytest.raises(BlobError):
        prepare(RAW, 0, keep=True, blobs=(store.local_url, keys))


def test_s3_stores_are_written_by_the_mx_not_here(blobs) -> None:
    assert (blobs.local_url is None) == blobs.describe().startswith("s3://")

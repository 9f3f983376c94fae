"""The blob store, on a local folder and on S3 over HTTP (moto server)."""

import pytest

from store.blobs import BlobNotFound, check_key, open_blob_store


def test_put_get_delete_roundtrip(blobs):
    data = b"Subject: hi\r\n\r\n" + bytes(range(256)) * 100
    blobs.put("raw/2026/11/22/txn_1.eml", data, "message/rfc822")
    assert blobs.get("raw/2026/11/22/txn_1.eml") == data
    blobs.put("raw/2026/11/22/txn_1.eml", b"replaced")
    assert blobs.get("raw/2026/11/22/txn_1.eml") == b"replaced"
    blobs.delete("raw/2026/11/22/txn_1.eml")
    with pytest.raises(BlobNotFound):
        blobs.get("raw/2026/11/22/txn_1.eml")
    blobs.delete("raw/2026/11/22/txn_1.eml")  # deleting twice is fine


def test_missing_key_is_not_found(blobs):
    with pytest.raises(BlobNotFound):
        blobs.get("parsed/none.json")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/./b", "spaces are bad", "x/"])
def test_hostile_keys_are_refused(key):
    with pytest.raises(ValueError):
        check_key(key)


def test_local_store_leaves_no_temporary_files(tmp_path):
    store = open_blob_store(tmp_path.as_uri())
    store.put("a/b.eml", b"x")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.eml"]


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unsupported blob URL"):
        open_blob_store("ftp://example.com/x")


def test_keys_lists_by_prefix(blobs):
    for key in ("raw/2026/a.eml", "raw/2026/b.eml", "parsed/2026/a.json"):
        blobs.put(key, b"x")
    assert blobs.keys("raw/") == ["raw/2026/a.eml", "raw/2026/b.eml"]
    assert blobs.keys() == ["parsed/2026/a.json", "raw/2026/a.eml", "raw/2026/b.eml"]
    assert blobs.keys("nothing/") == []


def test_unsynced_puts_are_readable_at_once_and_sync_makes_them_durable(blobs):
    for i in range(3):
        blobs.put(f"raw/2026/11/22/txn_s{i}.eml", b"x" * (1000 + i), "message/rfc822", sync=False)
    assert blobs.get("raw/2026/11/22/txn_s2.eml") == b"x" * 1002
    blobs.sync()
    blobs.sync()  # nothing new to sync is fine
    assert blobs.keys("raw/2026/11/22/txn_s") == [f"raw/2026/11/22/txn_s{i}.eml" for i in range(3)]


def test_local_store_remakes_a_folder_removed_behind_its_back(tmp_path):
    store = open_blob_store(tmp_path.as_uri())
    store.put("raw/day/a.eml", b"a", sync=False)
    (tmp_path / "raw" / "day" / "a.eml").unlink()
    (tmp_path / "raw" / "day").rmdir()
    store.put("raw/day/b.eml", b"b", sync=False)
    assert store.get("raw/day/b.eml") == b"b"

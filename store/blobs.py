"""The blob store: raw messages and parsed JSON, behind one small interface.

Adapters: :class:`LocalBlobStore` (``file:///path``: write to a temporary file, fsync, rename,
fsync the directory, so a returned ``put`` survives a crash) and :class:`S3BlobStore`
(``s3://bucket/prefix`` through boto3; a successful PutObject is durable).

Group sync: ``put(..., sync=False)`` may leave the bytes in the operating system's cache until the
next ``sync()``, which makes every such put durable at once. The ingest path writes a batch of
messages this way and syncs once before committing their rows (store/writer.py): one
``syncfs(2)`` per batch instead of two fsyncs per blob (file and folder), the way a mail queue
amortizes its flushes. On S3 every put is durable and ``sync()`` does nothing.

Exceptions (all subclasses of :class:`BlobError`): :class:`BlobNotFound` for a missing key,
:class:`BlobError` for anything else the backend reports. Library errors (``OSError``,
``botocore`` errors) are translated here and nowhere else.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import re
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


class BlobError(Exception):
    """The blob backend failed (I/O error, S3 error, unreachable endpoint)."""


class BlobNotFound(BlobError):
    """No blob under that key."""


def check_key(key: str) -> str:
    """Validate a blob key (``a/b/c.eml``: no empty, ``.`` or ``..`` segments); returns it."""
    if not _KEY_RE.match(key) or any(seg in (".", "..") for seg in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Durable key → bytes storage. Every method may raise :class:`BlobError`."""

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *,
            sync: bool = True) -> None:
        """Store ``data`` under ``key``, replacing what was there (readers see the old or the new
        bytes, never a part). Durable when it returns; with ``sync=False`` only after the next
        :meth:`sync` (a crash before that may lose it, or leave it truncated)."""

    def sync(self) -> None:
        """Make every earlier ``put(..., sync=False)`` of this store durable, whichever process of
        this machine made it."""

    @property
    def local_url(self) -> str | None:
        """A ``file://`` URL another process on this machine can open the same store with (its
        puts are cheap local writes), or None when puts are network calls (S3)."""

    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``; :class:`BlobNotFound` if absent."""

    def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are not an error."""

    def keys(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix`` (sorted); for audits and orphan clean-up."""

    def describe(self) -> str:
        """A short, secret-free description for logs (``file:///var/blobs``, ``s3://bucket/prefix``)."""


class LocalBlobStore:
    """Blobs as files under ``root`` (created if missing)."""

    def __init__(self, root: Path) -> None:
        """Raises :class:`BlobError` when ``root`` cannot be created."""
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobError(f"creating {self.root}: {exc.strerror or exc}") from exc
        self._url = self.root.resolve().as_uri()
        self._folders: set[Path] = set()  # folders known to exist (a mkdir per put is a syscall each)
        self._folders_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *,
            sync: bool = True) -> None:
        path = self._path(key)
        try:
            fd, tmp = self._temporary_file(path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    if sync:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            if sync:
                _fsync_folder(path.parent)
        except OSError as exc:
            raise BlobError(f"writing {key}: {exc.strerror or exc}") from exc

    def sync(self) -> None:
        """``syncfs(2)`` of the file system holding the store: the data and names of every file
        written since by any process (ours and, on a shared file system, others'), one journal commit. Where
        ``syncfs`` is missing, ``sync(2)``. Raises :class:`BlobError` when the kernel reports a
        write-back error (Linux ≥ 5.8 reports those to ``syncfs``)."""
        try:
            fd = os.open(self.root, os.O_RDONLY)
        except OSError as exc:
            raise BlobError(f"syncing {self.root}: {exc.strerror or exc}") from exc
        try:
            if _syncfs is None:
                os.sync()
            elif _syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise BlobError(f"syncing {self.root}: {os.strerror(err)}")
        finally:
            os.close(fd)

    def _temporary_file(self, folder: Path) -> tuple[int, str]:
        """``mkstemp`` in ``folder``, creating the folder the first time (or when it went away)."""
        if folder in self._folders:
            try:
                return tempfile.mkstemp(dir=folder, prefix=".tmp-")
            except FileNotFoundError:
                pass  # removed behind our back: make it again
        folder.mkdir(parents=True, exist_ok=True)
        with self._folders_lock:
            if len(self._folders) > 4096:  # one per day and kind in practice; bound it anyway
                self._folders.clear()
            self._folders.add(folder)
        return tempfile.mkstemp(dir=folder, prefix=".tmp-")

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise BlobError(f"reading {key}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise BlobError(f"deleting {key}: {exc.strerror or exc}") from exc

    def keys(self, prefix: str = "") -> list[str]:
        try:
            found = [p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                     if p.is_file() and not p.name.startswith(".tmp-")]
        except OSError as exc:
            raise BlobError(f"listing {prefix!r}: {exc.strerror or exc}") from exc
        return sorted(k for k in found if k.startswith(prefix))

    @property
    def local_url(self) -> str:
        return self._url

    def describe(self) -> str:
        return self._url


def _fsync_folder(folder: Path) -> None:
    """fsync a folder, so a file created or renamed in it keeps its name after a crash."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _load_syncfs():
    """libc's ``syncfs(int fd)`` (Linux), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


_syncfs = _load_syncfs()


class S3BlobStore:
    """Blobs as objects in ``bucket`` under ``prefix`` (boto3; credentials from the usual AWS
    variables or files, endpoint from ``MAILKITE_S3_ENDPOINT_URL`` for MinIO, Ceph, moto…)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, client=None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                              max_pool_connections=32),
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *,
            sync: bool = True) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise BlobError(f"s3 put {key}: {exc}") from exc

    def sync(self) -> None:
        """Nothing to do: a successful PutObject is already durable."""

    local_url = None  # puts are network round trips: made concurrently from the MX's threads

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(key) from None
            raise BlobError(f"s3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"s3 get {key}: {exc}") from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise BlobError(f"s3 delete {key}: {exc}") from exc

    def keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        full = (f"{self.prefix}/{prefix}" if self.prefix else prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        out: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                out += [obj["Key"][strip:] for obj in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise BlobError(f"s3 list {prefix!r}: {exc}") from exc
        return sorted(out)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def open_blob_store(url: str, *, s3_endpoint_url: str | None = None) -> BlobStore:
    """Open the store named by ``url``: ``file:///abs/path`` or ``s3://bucket[/prefix]``.

    Raises :class:`ValueError` for any other scheme.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 blob URL needs a bucket: {url!r}")
        return S3BlobStore(parts.netloc, parts.path, endpoint_url=s3_endpoint_url)
    raise ValueError(f"unsupported blob URL {url!r}: use file:///path or s3://bucket/prefix")

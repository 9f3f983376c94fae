"""DKIM keys and two independent signers for tests: dkimpy, and OpenDKIM's C library (libopendkim,
installed with Debian's ``opendkim-tools``) through ctypes. (``opendkim-testmsg`` itself only signs
rsa-sha1, so the library is called directly to choose rsa-sha256 or ed25519-sha256.)

    key = DkimKey.generate("rsa", 2048, domain="example.test", selector="s2048")
    zone.add(key.record_name, "TXT", key.txt_record)
    signed = key.sign_dkimpy(message)          # or key.sign_opendkim(message)
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@dataclass(frozen=True)
class DkimKey:
    """A signing key with its DNS record. ``kind``: ``rsa`` or ``ed25519``."""

    kind: str
    bits: int
    domain: str
    selector: str
    private_pem: bytes  # PKCS#1 (RSA) / PKCS#8 (ed25519) PEM, as OpenDKIM reads it
    dkimpy_private: bytes  # what dkimpy's sign() wants (PEM for RSA, base64 seed for ed25519)
    public_b64: str

    @classmethod
    def generate(cls, kind: str, bits: int = 2048, *, domain: str, selector: str) -> "DkimKey":
        if kind == "rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
            public = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
            return cls("rsa", bits, domain, selector, pem, pem, base64.b64encode(public).decode())
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls("ed25519", 256, domain, selector, pem, base64.b64encode(seed), base64.b64encode(public).decode())

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt_record(self) -> str:
        return f"v=DKIM1; k={self.kind}; p={self.public_b64}"

    @property
    def algorithm(self) -> str:
        return "rsa-sha256" if self.kind == "rsa" else "ed25519-sha256"

    def sign_dkimpy(self, message: bytes, *, canonicalize=(b"relaxed", b"simple"),
                    algorithm: str | None = None) -> bytes:
        """``message`` with a dkimpy ``DKIM-Signature`` prepended."""
        signature = dkim.sign(message, self.selector.encode(), self.domain.encode(), self.dkimpy_private,
                              canonicalize=canonicalize,
                              signature_algorithm=(algorithm or self.algorithm).encode())
        return signature + message

    def sign_opendkim(self, message: bytes) -> bytes:
        """``message`` with a ``DKIM-Signature`` made by libopendkim (relaxed/relaxed)."""
        return OpenDkim.get().sign(message, self)


class OpenDkim:
    """libopendkim (OpenDKIM 2.11) through ctypes: ``dkim_sign`` → ``dkim_chunk`` → ``dkim_eom`` →
    ``dkim_getsighdr``."""

    CANON_RELAXED = 1
    ALGORITHMS = {"rsa-sha1": 0, "rsa-sha256": 1, "ed25519-sha256": 2}
    _instance: "OpenDkim | None" = None

    def __init__(self) -> None:
        path = ctypes.util.find_library("opendkim") or "libopendkim.so.11"
        lib = ctypes.CDLL(path)
        lib.dkim_init.restype = ctypes.c_void_p
        lib.dkim_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.dkim_sign.restype = ctypes.c_void_p
        lib.dkim_sign.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p,
                                  ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_ssize_t, ctypes.POINTER(ctypes.c_int)]
        lib.dkim_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.dkim_eom.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.dkim_getsighdr.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
        lib.dkim_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.handle = lib.dkim_init(None, None)

    @classmethod
    def get(cls) -> "OpenDkim":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def sign(self, message: bytes, key: DkimKey, algorithm: str | None = None) -> bytes:
        status = ctypes.c_int(0)
        handle = self.lib.dkim_sign(self.handle, b"mailkite-test", None, key.private_pem, key.selector.encode(),
                                    key.domain.encode(), self.CANON_RELAXED, self.CANON_RELAXED,
                                    self.ALGORITHMS[algorithm or key.algorithm], -1, ctypes.byref(status))
        if not handle or status.value != 0:
            raise RuntimeError(f"dkim_sign failed with status {status.value}")
        try:
            for step in (self.lib.dkim_chunk(handle, message, len(message)), self.lib.dkim_chunk(handle, None, 0),
                         self.lib.dkim_eom(handle, None)):
                if step != 0:
                    raise RuntimeError(f"libopendkim signing step failed with status {step}")
            buf = ctypes.create_string_buffer(8192)
            if self.lib.dkim_getsighdr(handle, buf, len(buf), len("DKIM-Signature: ")) != 0:
                raise RuntimeError("dkim_getsighdr failed")
        finally:
            self.lib.dkim_free(handle)
        eol = b"\r\n" if b"\r\n" in message else b"\n"
        return b"DKIM-Signature: " + buf.value.replace(b"\r\n", b"\n").replace(b"\n", eol) + eol + message


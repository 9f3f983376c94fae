"""TLS material: the configured certificate, or a self-signed pair generated once into DATA_DIR."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path


def ensure_self_signed(data_dir: Path, hostname: str, *, in_child: bool = False) -> tuple[Path, Path]:
    """``(cert, key)`` paths in ``data_dir/tls``, generating an ECDSA P-256 pair valid 10 years for
    ``hostname``, ``localhost`` and ``127.0.0.1`` on first use.

    ``in_child``: generate in a short-lived ``python -m mailkite.tls`` process, so that a long-lived
    caller (the IMAP role) never loads ``cryptography`` (~8 MB resident). Raises ``OSError`` when the
    folder cannot be written, ``subprocess.CalledProcessError`` when the child fails."""
    tls_dir = data_dir / "tls"
    cert_path, key_path = tls_dir / "selfsigned.crt", tls_dir / "selfsigned.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    if in_child:
        import subprocess  # noqa: PLC0415
        import sys  # noqa: PLC0415

        subprocess.run([sys.executable, "-m", "mailkite.tls", str(data_dir), hostname], check=True)
        return cert_path, key_path
    # cryptography is imported only to generate: processes that merely load the pair are spared it.
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    tls_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost"),
                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2+) loaded with ``cert``/``key``. Raises ``ssl.SSLError``/``OSError``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


if __name__ == "__main__":  # ``python -m mailkite.tls DATA_DIR HOSTNAME``: see ensure_self_signed(in_child=True)
    import sys

    ensure_self_signed(Path(sys.argv[1]), sys.argv[2])

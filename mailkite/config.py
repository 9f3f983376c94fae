"""Configuration: read once from the environment (``MAILKITE_*``) and ``mailkite.toml``.

The CLI calls :func:`load_settings` once and passes the resulting :class:`Settings` (or values taken
from it) down to each component; no other module reads the environment. Keys and defaults are the
contract in DESIGN.md ("Configuration"). Environment variables win over the TOML file, which wins
over defaults. Secrets are :class:`pydantic.SecretStr` so they never print.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_RETRY_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
CONFIG_FILE_ENV = "MAILKITE_CONFIG"


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class HostPort:
    """A ``host:port`` listen or connect address (IPv6 hosts in brackets: ``[::1]:25``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> "HostPort":
        """Parse ``host:port``; raises :class:`ValueError` on a bad value."""
        parts = urlsplit("//" + value.strip())
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"expected host:port, got {value!r}")
        return cls(parts.hostname, parts.port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Settings(BaseSettings):
    """Every mailkite setting, typed. Units: bytes, seconds.

    Raises :class:`ConfigError` (through :func:`load_settings`) on a malformed value.
    """

    model_config = SettingsConfigDict(env_prefix="MAILKITE_", extra="ignore", case_sensitive=False)

    data_dir: Path = Path("./var")
    database_url: str | None = None
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    redis_url: str | None = None
    hostname: str = Field(default_factory=lambda: os.uname().nodename)
    mx_listen: str = "0.0.0.0:25"
    imap_listen: str = "0.0.0.0:993"
    web_listen: str = "127.0.0.1:8000"
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    dns_nameservers: str | None = None
    spam_url: str | None = None
    virus_url: str | None = None
    max_message_bytes: int = 10 * 1024 * 1024
    max_recipients: int = 50
    webhook_timeout_s: float = 15.0
    webhook_retry_schedule_s: str = ",".join(str(s) for s in DEFAULT_RETRY_SCHEDULE_S)
    attachment_url_ttl_s: int = 3600
    secret_key: SecretStr | None = None
    worker_processes: int = 2
    imap_max_connections_per_account: int = 20
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, "mailkite.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(_LowercaseToml(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("mx_listen", "imap_listen", "web_listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        HostPort.parse(value)
        return value

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        delays = [float(x) for x in value.split(",") if x.strip()]
        if not delays or any(d < 0 for d in delays):
            raise ValueError("needs one or more non-negative delays in seconds, comma-separated")
        return value

    @field_validator("max_message_bytes", "max_recipients", "attachment_url_ttl_s", "worker_processes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    # Derived values -----------------------------------------------------------------------------

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        """Delays in seconds before attempt 1, 2, … (DESIGN.md: ten attempts over ~75 hours)."""
        return tuple(float(x) for x in self.webhook_retry_schedule_s.split(",") if x.strip())

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; default SQLite file ``DATA_DIR/mailkite.db``."""
        if self.database_url:
            url = self.database_url
            # Accept the common postgres:// and postgresql:// spellings; we drive psycopg 3.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix):]
            return url
        return f"sqlite:///{(self.data_dir / 'mailkite.db').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        """``file:///abs/path`` (default ``DATA_DIR/blobs``) or ``s3://bucket/prefix``."""
        return self.blob_url or (self.data_dir / "blobs").resolve().as_uri()

    @property
    def nameservers(self) -> list[HostPort]:
        """Configured DNS servers; empty means the system resolver's."""
        if not self.dns_nameservers:
            return []
        return [_nameserver(x) for x in self.dns_nameservers.split(",") if x.strip()]

    @property
    def web_base_url(self) -> str:
        """Base URL for links we hand out (attachment and raw URLs); ``PUBLIC_URL`` or the web listener."""
        if self.public_url:
            return self.public_url.rstrip("/")
        hp = HostPort.parse(self.web_listen)
        host = "127.0.0.1" if hp.host in ("0.0.0.0", "") else ("::1" if hp.host == "::" else hp.host)
        return f"http://{HostPort(host, hp.port)}"

    def secret_key_bytes(self) -> bytes:
        """The server secret (≥ 32 bytes): ``SECRET_KEY`` or one generated once into ``DATA_DIR``."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


class _LowercaseToml(TomlConfigSettingsSource):
    """``mailkite.toml`` keys may be written as in the environment (``MAX_RECIPIENTS``) or lowercase."""

    def __call__(self) -> dict[str, Any]:
        return {k.lower(): v for k, v in super().__call__().items()}


def _nameserver(value: str) -> HostPort:
    value = value.strip()
    try:
        return HostPort.parse(value)
    except ValueError:
        return HostPort(value.strip("[]"), 53)


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration once. Raises :class:`ConfigError` with a one-line reason."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "MAILKITE_" + ".".join(str(x) for x in first["loc"]).upper()
        raise ConfigError(f"{key}: {first['msg']}") from None

"""App configuration, from environment variables only, validated once at start.

A missing or malformed variable stops the app with one line naming the variable
(`ConfigurationError`); no value of a secret variable is ever echoed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# The environments whose Redis is across the internet (Redis Cloud): sessions and the token blacklist
# must not travel in clear, so REDIS_URL must be rediss:// there (staging may opt out, see redis_url_with_tls).
TLS_ENVIRONMENTS = ("staging", "production")
ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigurationError(Exception):
    """A configuration variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may cost the app. A payroll extract of 200,000 rows by 13 columns fits well inside
    these; a file built to exhaust the server (a sheet declaring 16,384 columns, millions of shared
    strings, a header of 100,000 fields) meets one of them and is refused with a 422 that names it.
    Each is an environment variable (the name in the comment)."""

    max_rows: int = 200_000  # UPLOAD_MAX_ROWS: employees in one file
    max_columns: int = 1024  # UPLOAD_MAX_COLUMNS: a header (or any row) wider than this is refused
    max_cells: int = 3_000_000  # UPLOAD_MAX_CELLS: cells and row records read, blank ones included
    max_shared_strings: int = 1_000_000  # UPLOAD_MAX_SHARED_STRINGS: an .xlsx's shared-strings table
    parse_seconds: float = 30.0  # UPLOAD_PARSE_SECONDS: wall time to read, check and report one file
    parse_cpu_seconds: int = 20  # UPLOAD_PARSE_CPU_SECONDS: CPU time of the worker reading one file
    parse_memory_mb: int = 1024  # UPLOAD_PARSE_MEMORY_MB: address space of that worker
    parse_workers: int = 2  # UPLOAD_PARSE_WORKERS: files read at once; more wait their turn

    def describe(self) -> dict[str, float]:
        return {"max_rows": self.max_rows, "max_columns": self.max_columns, "max_cells": self.max_cells,
                "max_shared_strings": self.max_shared_strings, "parse_seconds": self.parse_seconds,
                "parse_cpu_seconds": self.parse_cpu_seconds, "parse_memory_mb": self.parse_memory_mb}


@dataclass(frozen=True)
class Settings:
    app_env: str
    app_version: str
    host: str
    port: int
    database_url: str
    redis_url: str
    s3_endpoint_url: str | None
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str
    s3_bucket_uploads: str
    sentry_dsn: str | None
    auth_secret: str
    stripe_webhook_secret: str | None = None
    rate_limit_per_minute: int = 120
    login_rate_limit_per_minute: int = 10
    db_pool_max: int = 20
    # Peers whose CF-Connecting-IP names the visitor (api.client_ip): the app's own proxy, Caddy.
    trusted_proxies: tuple[ProxyNetwork, ...] = ()
    redis_ca_pem: str | None = None  # REDIS_CA_CERT (base64): the CA that signs Redis's server certificate
    db_pool_max_idle_s: float = 30.0
    db_connect_timeout_s: float = 2.0
    ready_check_timeout_s: float = 2.0
    limits: UploadLimits = field(default_factory=lambda: UploadLimits())
    # DATABASE_REPLICA_URL: a read-only replica of the same database (Neon's read_only endpoint on `main`);
    # the lag-tolerant reads go there (autoenroll.db.lag_tolerant_read). Unset: every read is the primary's.
    database_replica_url: str | None = None

    def __repr__(self) -> str:  # never print secrets, even in a debugger
        return f"Settings(app_env={self.app_env!r}, version={self.app_version!r}, port={self.port})"


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name}: required but not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}: must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def database_url_with_tls(name: str, url: str) -> str:
    """Validate a PostgreSQL URL; require TLS (sslmode=require or stricter) unless it is local."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"{name}: must start with postgresql://")
    if not parts.hostname:
        raise ConfigurationError(f"{name}: has no host")
    if not parts.path.strip("/"):
        raise ConfigurationError(f"{name}: has no database name")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.hostname not in LOCAL_HOSTS:
        mode = query.get("sslmode")
        if mode in ("disable", "allow", "prefer"):
            raise ConfigurationError(f"{name}: sslmode={mode} is not allowed for a non-local database")
        query.setdefault("sslmode", "require")
    return urlunsplit(parts._replace(query=urlencode(query)))


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ConfigurationError(f"{name}: must be true or false, got {raw!r}")
    return raw in ("1", "true")


def redis_url_with_tls(app_env: str, url: str, allow_plaintext: bool) -> str:
    """Validate REDIS_URL; in staging and production require rediss:// (TLS).

    Production never accepts redis://: Redis Cloud is reached over the internet and the URL's
    connections carry sessions and the token blacklist. Staging may, only with
    REDIS_ALLOW_PLAINTEXT=true (the stack's `cache.allow_plaintext`, for Redis Cloud's free plan,
    which has no TLS). The URL itself is never echoed: it holds the password."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss"):
        raise ConfigurationError("REDIS_URL: must start with redis:// or rediss://")
    if scheme == "redis" and app_env in TLS_ENVIRONMENTS:
        if app_env == "production":
            raise ConfigurationError("REDIS_URL: must be rediss:// (TLS) in production; redis:// sends sessions "
                                     "in clear (Redis Cloud's free plan has no TLS: use a paid plan)")
        if not allow_plaintext:
            raise ConfigurationError(f"REDIS_URL: must be rediss:// (TLS) in {app_env}, or set "
                                     "REDIS_ALLOW_PLAINTEXT=true (the stack's cache.allow_plaintext)")
    return url


def redis_ca_pem(raw: str) -> str | None:
    """REDIS_CA_CERT: the PEM bundle of the CA that signs the Redis server's certificate, base64-encoded
    (`base64 -w0 redis_ca.pem`): an env file holds one line per variable."""
    if not raw:
        return None
    try:
        pem = base64.b64decode(raw, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise ConfigurationError("REDIS_CA_CERT: must be a base64-encoded PEM bundle") from None
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError("REDIS_CA_CERT: the decoded bundle holds no PEM certificate")
    return pem


def trusted_proxies(raw: str) -> tuple[ProxyNetwork, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or networks of the app's proxy (Caddy)."""
    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return tuple(networks)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable; raise ConfigurationError naming the first bad one."""
    env = os.environ if env is None else env
    app_env = env.get("APP_ENV", "local")
    redis_url = redis_url_with_tls(app_env, _require(env, "REDIS_URL"), _flag(env, "REDIS_ALLOW_PLAINTEXT"))
    redis_ca = redis_ca_pem(env.get("REDIS_CA_CERT", "").strip())
    endpoint = env.get("S3_ENDPOINT_URL", "").strip() or None
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigurationError("S3_ENDPOINT_URL: must be an http(s) URL")
    dsn = env.get("SENTRY_DSN", "").strip() or None
    if dsn and urlsplit(dsn).scheme not in ("http", "https"):
        raise ConfigurationError("SENTRY_DSN: must be an http(s) URL")
    auth_secret = _require(env, "AUTH_SECRET")
    if len(auth_secret) < 32:
        raise ConfigurationError("AUTH_SECRET: must be at least 32 characters")
    stripe_secret = env.get("STRIPE_WEBHOOK_SECRET", "").strip() or None
    if stripe_secret and not stripe_secret.startswith("whsec_"):
        raise ConfigurationError("STRIPE_WEBHOOK_SECRET: must be a Stripe signing secret (whsec_...)")
    return Settings(
        auth_secret=auth_secret,
        stripe_webhook_secret=stripe_secret,
        rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 120, 1, 100000),
        login_rate_limit_per_minute=_int(env, "LOGIN_RATE_LIMIT_PER_MINUTE", 10, 1, 10000),
        app_env=app_env,
        app_version=env.get("APP_VERSION", "dev"),
        host=env.get("HOST", "127.0.0.1"),
        port=_int(env, "PORT", 8000, 1, 65535),
        database_url=database_url_with_tls("DATABASE_URL", _require(env, "DATABASE_URL")),
        database_replica_url=(database_url_with_tls("DATABASE_REPLICA_URL", env["DATABASE_REPLICA_URL"].strip())
                              if env.get("DATABASE_REPLICA_URL", "").strip() else None),
        redis_url=redis_url,
        s3_endpoint_url=endpoint,
        s3_region=env.get("S3_REGION", "auto"),
        s3_access_key_id=_require(env, "S3_ACCESS_KEY_ID"),
        s3_secret_access_key=_require(env, "S3_SECRET_ACCESS_KEY"),
        s3_bucket_uploads=_require(env, "S3_BUCKET_UPLOADS"),
        sentry_dsn=dsn,
        db_pool_max=_int(env, "DB_POOL_MAX", 20, 1, 200),
        # Loopback by default (the sandbox's Caddy); a host's deploy script sets the Docker bridge's
        # gateway (or its subnet), the peer a container sees for all that arrives through its published port.
        trusted_proxies=trusted_proxies(env.get("TRUSTED_PROXIES", "127.0.0.1,::1")),
        redis_ca_pem=redis_ca,
        limits=UploadLimits(
            max_rows=_int(env, "UPLOAD_MAX_ROWS", 200_000, 1, 1_048_575),
            max_columns=_int(env, "UPLOAD_MAX_COLUMNS", 1024, 8, 16_384),
            max_cells=_int(env, "UPLOAD_MAX_CELLS", 3_000_000, 100, 100_000_000),
            max_shared_strings=_int(env, "UPLOAD_MAX_SHARED_STRINGS", 1_000_000, 100, 100_000_000),
            parse_seconds=float(_int(env, "UPLOAD_PARSE_SECONDS", 30, 1, 3600)),
            parse_cpu_seconds=_int(env, "UPLOAD_PARSE_CPU_SECONDS", 20, 1, 3600),
            parse_memory_mb=_int(env, "UPLOAD_PARSE_MEMORY_MB", 1024, 256, 65536),
            parse_workers=_int(env, "UPLOAD_PARSE_WORKERS", 2, 1, 64),
        ),
    )

"""One frozen settings object, read and validated from the environment at start-up."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable; see the README's configuration table."""

    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    redis_key_prefix: str = "dicom-api:"
    secret_key: str = field(default="", repr=False)
    monthly_quota: int = 1000
    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 7 * 24 * 3600
    max_upload_bytes: int = 512 * 1024 * 1024
    max_pixel_bytes: int = 1024 * 1024 * 1024
    max_zip_entries: int = 1000
    max_zip_total_bytes: int = 1024 * 1024 * 1024
    max_zip_ratio: int = 100
    render_threads: int = 2
    inline_pixel_bytes: int = 128 * 1024
    db_pool_size: int = 10
    response_timeout: int = 600
    clock_file: Path | None = None  # tests and drills only: read the time from this file

    @property
    def sqlite_path(self) -> Path:
        """The embedded store's single database file."""
        return self.data_dir / "dicom-api.sqlite3"

    @property
    def backend_name(self) -> str:
        """Human-readable name of the storage and quota backends in use."""
        store = "postgres" if self.database_url else "sqlite"
        quota = "redis" if self.redis_url else store
        return f"store={store} quota={quota}"


_INT_SETTINGS: dict[str, tuple[str, int, int]] = {
    # env var -> (attribute, minimum, maximum)
    "DICOM_API_MONTHLY_QUOTA": ("monthly_quota", 0, 10**12),
    "DICOM_API_ACCESS_TOKEN_TTL": ("access_token_ttl", 10, 24 * 3600),
    "DICOM_API_REFRESH_TOKEN_TTL": ("refresh_token_ttl", 60, 365 * 24 * 3600),
    "DICOM_API_MAX_UPLOAD_BYTES": ("max_upload_bytes", 1024, 64 * 1024**3),
    "DICOM_API_MAX_PIXEL_BYTES": ("max_pixel_bytes", 1024, 256 * 1024**3),
    "DICOM_API_MAX_ZIP_ENTRIES": ("max_zip_entries", 1, 1_000_000),
    "DICOM_API_MAX_ZIP_TOTAL_BYTES": ("max_zip_total_bytes", 1024, 256 * 1024**3),
    "DICOM_API_MAX_ZIP_RATIO": ("max_zip_ratio", 1, 10_000),
    "DICOM_API_RENDER_THREADS": ("render_threads", 1, 256),
    "DICOM_API_INLINE_PIXEL_BYTES": ("inline_pixel_bytes", 0, 16 * 1024 * 1024),
    "DICOM_API_DB_POOL_SIZE": ("db_pool_size", 1, 1000),
    "DICOM_API_RESPONSE_TIMEOUT": ("response_timeout", 1, 24 * 3600),
}

# Every environment variable the service reads; the README documents each one.
ENVIRONMENT_VARIABLES: tuple[str, ...] = (
    "DATABASE_URL",
    "REDIS_URL",
    "DICOM_API_REDIS_PREFIX",
    "DICOM_API_DATA_DIR",
    "DICOM_API_SECRET_KEY",
    "DICOM_API_CLOCK_FILE",
    *_INT_SETTINGS,
)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, convert and validate the environment; raise SettingsError naming the bad variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (attribute, low, high) in _INT_SETTINGS.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            number = int(raw.replace("_", ""))
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high}, got {number}")
        values[attribute] = number

    database_url = env.get("DATABASE_URL", "").strip() or None
    if database_url and not database_url.startswith(("postgres://", "postgresql://")):
        raise SettingsError("DATABASE_URL must be a postgresql:// URL")
    redis_url = env.get("REDIS_URL", "").strip() or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL must be a redis://, rediss:// or unix:// URL")

    data_dir = Path(env.get("DICOM_API_DATA_DIR", "").strip() or "data")
    secret_key = env.get("DICOM_API_SECRET_KEY", "")
    if secret_key and len(secret_key) < 32:
        raise SettingsError("DICOM_API_SECRET_KEY must be at least 32 characters long")
    if not secret_key:
        secret_key = _stored_secret_key(data_dir)

    clock_file = env.get("DICOM_API_CLOCK_FILE", "").strip()
    return Settings(
        clock_file=Path(clock_file) if clock_file else None,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=env.get("DICOM_API_REDIS_PREFIX", "dicom-api:"),
        secret_key=secret_key,
        **values,  # type: ignore[arg-type]
    )


def _stored_secret_key(data_dir: Path) -> str:
    """The JWT secret kept in the data dir, created once so that every worker shares it.

    The key is written to a temporary file and hard-linked into place: linking fails if another
    process won the race, so no reader ever sees a half-written key.
    """
    path = data_dir / "secret_key"
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            temporary = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        key = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"DICOM_API_DATA_DIR {data_dir} is not usable: {exc}") from None
    if len(key) < 32:
        raise SettingsError(f"{path} is damaged: delete it to generate a new key")
    return key

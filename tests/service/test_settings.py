"""Settings: conversion, validation with clear messages, the shared secret key, the CLI."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import build_parser
from service.settings import ENVIRONMENT_VARIABLES, SettingsError, load_settings
from tests.support import REPO, clean_env


def run_python(env: dict[str, str], *args: str, umask: int = -1) -> subprocess.CompletedProcess:
    """``python *args`` in a child process with that environment; its output as text."""
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60, umask=umask
    )


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DICOM_API_DATA_DIR": str(tmp_path)})
    assert settings.monthly_quota == 1000
    assert settings.access_token_ttl == 900 and settings.refresh_token_ttl == 7 * 86400
    assert settings.database_url is None and settings.redis_url is None
    assert settings.sqlite_path == tmp_path / "dicom-api.sqlite3"
    assert "secret" not in repr(settings).lower() or settings.secret_key not in repr(settings)


def test_secret_key_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = load_settings({"DICOM_API_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"DICOM_API_DATA_DIR": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    given = "s" * 40
    assert load_settings({"DICOM_API_DATA_DIR": str(tmp_path), "DICOM_API_SECRET_KEY": given})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DICOM_API_MONTHLY_QUOTA", "lots", "must be an integer"),
        ("DICOM_API_MONTHLY_QUOTA", "-1", "between"),
        ("DICOM_API_ACCESS_TOKEN_TTL", "1", "between"),
        ("DICOM_API_RENDER_THREADS", "0", "between"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("REDIS_URL", "http://x", "redis://"),
        ("DICOM_API_SECRET_KEY", "short", "at least 32"),
    ],
)
def test_invalid_values_name_the_variable(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=name) as info:
        load_settings({"DICOM_API_DATA_DIR": str(tmp_path), name: value})
    assert message in str(info.value)


def test_bad_setting_stops_the_cli_with_a_clear_message(tmp_path: Path) -> None:
    env = clean_env({"DICOM_API_DATA_DIR": str(tmp_path), "DICOM_API_MONTHLY_QUOTA": "many"})
    result = run_python(env, "-m", "service", "serve")
    assert result.returncode == 2
    assert "DICOM_API_MONTHLY_QUOTA must be an integer" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content", [None, "tomorrow", "2026-12-31T23:59:59"])
def test_a_bad_clock_file_stops_the_cli_with_a_clear_message(
    tmp_path: Path, content: str | None
) -> None:
    clock = tmp_path / "now"
    if content is not None:
        clock.write_text(content)
    env = clean_env({"DICOM_API_DATA_DIR": str(tmp_path), "DICOM_API_CLOCK_FILE": str(clock)})
    result = run_python(env, "-m", "service", "migrate")
    assert result.returncode == 2
    assert "configuration error: DICOM_API_CLOCK_FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_embedded_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """The SQLite file, its WAL and shared-memory files, the secret key and their folder."""
    data_dir = tmp_path / "data"
    env = clean_env({"DICOM_API_DATA_DIR": str(data_dir)})
    # The usual umask, which leaves new files readable by everyone.
    result = run_python(env, "-c", KEEP_STORE_OPEN, umask=0o022)
    assert result.returncode == 0, result.stderr
    modes = {line.split()[0]: int(line.split()[1], 8) for line in result.stdout.splitlines()}
    assert set(modes) == {"dicom-api.sqlite3", "dicom-api.sqlite3-wal", "dicom-api.sqlite3-shm"}
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert stat.S_IMODE((data_dir / "secret_key").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


# Opens the embedded store the way a worker does, writes to it, and lists the modes of its files
# while it is open (the WAL and shared-memory files exist only then).
KEEP_STORE_OPEN = """
import asyncio, os, stat
from service.clock import make_clock
from service.settings import load_settings
from service.store import make_store

async def main():
    settings = load_settings()
    store = make_store(settings, make_clock(settings))
    await store.open()
    await store.migrate()
    await store.create_user("owner@example.com", "h", "", "")
    for name in sorted(os.listdir(settings.data_dir)):
        if name.startswith("dicom-api"):
            mode = stat.S_IMODE(os.stat(settings.data_dir / name).st_mode)
            print(name, oct(mode)[2:])
    await store.close()

asyncio.run(main())
"""


def test_migrate_command_on_the_embedded_store(tmp_path: Path) -> None:
    env = clean_env({"DICOM_API_DATA_DIR": str(tmp_path)})
    first, second = (run_python(env, "-m", "service", "migrate") for _ in range(2))
    assert first.returncode == 0 and "[1]" in first.stdout
    assert second.returncode == 0 and "up to date" in second.stdout
    assert (tmp_path / "dicom-api.sqlite3").exists()


def test_cli_help_lists_the_commands() -> None:
    text = build_parser().format_help()
    assert "serve" in text and "migrate" in text


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document: {missing}"

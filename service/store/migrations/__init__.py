"""Versioned SQL migrations, one folder per backend with the same numbered files."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The ``NNNN_name.sql`` files of one backend (``sqlite`` or ``postgres``), in order."""
    folder = resources.files(__package__).joinpath(backend)
    migrations = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        migrations.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(migrations, key=lambda m: m.version)

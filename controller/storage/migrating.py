"""Versioned SQL migrations: discovery, planning and application, sync and async.

Migrations are package data, `controller/storage/migrations/NNNN_name.sql`. `migrate(dsn)` (the CLI's
`ringpilot migrate`) and `migrate_async(dsn)` (process start) apply the pending ones in order, in one
transaction under an advisory lock, and record each with its SHA-256 in `schema_migrations`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg
from psycopg.rows import DictRow

from controller.storage.db import aconnect, connect

log = logging.getLogger(__name__)

#: `pg_advisory_xact_lock` key held while migrating ("RPMG" in ASCII), so concurrent starts serialize.
LOCK_KEY = 0x52504D47

_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_SELECT_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"


class MigrationError(Exception):
    """The migrations on disk and the ones recorded in the database disagree, or a file is misnamed."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: `version` from its four-digit prefix, `name` is the file stem."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, recorded when applied so later edits are detected."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def _default_directory() -> Traversable:
    return resources.files("controller.storage") / "migrations"


def discover(directory: Traversable | None = None) -> list[Migration]:
    """Read every `NNNN_name.sql` in `directory` (default: the shipped migrations), sorted by version.

    A `.sql` file with another name, or two files with one version, is a `MigrationError`.
    """
    root = directory if directory is not None else _default_directory()
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"Migration file {entry.name!r} is not named NNNN_lower_snake.sql")
        version = int(match["version"])
        migration = Migration(version, entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        if version in found:
            raise MigrationError(f"Migrations {found[version].name!r} and {migration.name!r} share version {version}")
        found[version] = migration
    return [found[v] for v in sorted(found)]


def plan(available: Sequence[Migration], applied: Iterable[Mapping[str, object]]) -> list[Migration]:
    """Return the migrations still to apply, after checking the applied ones against their files.

    `applied` are rows of `schema_migrations`. A recorded checksum that differs from the file's is a
    `MigrationError` naming the migration: released migrations must never be edited. Versions
    recorded in the database but unknown here (a newer release migrated first) are logged and skipped.
    """
    by_version = {m.version: m for m in available}
    done: set[int] = set()
    for row in applied:
        version = int(str(row["version"]))
        done.add(version)
        migration = by_version.get(version)
        if migration is None:
            log.warning("Database has migration %r that this release does not know", row["name"])
            continue
        if row["checksum"] != migration.checksum:
            raise MigrationError(
                f"Migration {migration.name!r} was changed after it was applied "
                f"(recorded checksum {str(row['checksum'])[:12]}…, file {migration.checksum[:12]}…); "
                "add a new migration instead of editing a released one"
            )
    return [m for m in available if m.version not in done]


def migrate(dsn: str, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply pending migrations to the database at `dsn`; return the names applied (empty if none)."""
    available = list(migrations) if migrations is not None else discover()
    with connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        pending = plan(available, conn.execute(_SELECT_APPLIED).fetchall())
        for migration in pending:
            _apply_sync(conn, migration)
    return [m.name for m in pending]


async def migrate_async(dsn: str, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Async twin of `migrate`, for processes that migrate at start inside their event loop."""
    available = list(migrations) if migrations is not None else discover()
    async with await aconnect(dsn) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(_CREATE_TABLE)
        cursor = await conn.execute(_SELECT_APPLIED)
        pending = plan(available, await cursor.fetchall())
        for migration in pending:
            await _apply_async(conn, migration)
    return [m.name for m in pending]


def _apply_sync(conn: psycopg.Connection[DictRow], migration: Migration) -> None:
    log.info("Applying migration %r", migration.name)
    try:
        conn.execute(migration.sql.encode("utf-8"))
    except psycopg.Error as e:
        raise MigrationError(f"Migration {migration.name!r} failed: {e}") from e
    conn.execute(_INSERT_APPLIED, (migration.version, migration.name, migration.checksum))


async def _apply_async(conn: psycopg.AsyncConnection[DictRow], migration: Migration) -> None:
    log.info("Applying migration %r", migration.name)
    try:
        await conn.execute(migration.sql.encode("utf-8"))
    except psycopg.Error as e:
        raise MigrationError(f"Migration {migration.name!r} failed: {e}") from e
    await conn.execute(_INSERT_APPLIED, (migration.version, migration.name, migration.checksum))

"""Migrations apply once, in order, atomically, and refuse an edited released migration."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from controller.storage.db import connect
from controller.storage.migrating import Migration, MigrationError, discover, migrate, migrate_async


def applied(dsn: str) -> list[tuple[int, str]]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    return [(row["version"], row["name"]) for row in rows]


def test_the_shipped_migrations_are_discovered_in_order() -> None:
    migrations = discover()
    assert [m.name for m in migrations][:1] == ["0001_foundation"]
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert all(len(m.checksum) == 64 for m in migrations)


def test_migrate_applies_everything_once(blank_database_url: str) -> None:
    names = [m.name for m in discover()]
    assert migrate(blank_database_url) == names
    assert migrate(blank_database_url) == []
    assert applied(blank_database_url) == [(m.version, m.name) for m in discover()]


async def test_async_migrate_is_idempotent_too(blank_database_url: str) -> None:
    assert await migrate_async(blank_database_url) == [m.name for m in discover()]
    assert await migrate_async(blank_database_url) == []


def test_only_new_migrations_are_applied(database_url: str) -> None:
    extra = Migration(9000, "9000_widgets", "CREATE TABLE widgets (id int PRIMARY KEY);")
    assert migrate(database_url, [*discover(), extra]) == ["9000_widgets"]
    assert applied(database_url)[-1] == (9000, "9000_widgets")
    assert migrate(database_url, [*discover(), extra]) == []


def test_an_edited_applied_migration_is_refused(database_url: str) -> None:
    first, *rest = discover()
    edited = Migration(first.version, first.name, first.sql + "\n-- sneaky edit\n")
    with pytest.raises(MigrationError, match=r"Migration '0001_foundation' was changed after it was applied"):
        migrate(database_url, [edited, *rest])


async def test_an_edited_applied_migration_is_refused_async(database_url: str) -> None:
    first, *rest = discover()
    edited = Migration(first.version, first.name, "SELECT 1;")
    with pytest.raises(MigrationError, match=r"add a new migration instead"):
        await migrate_async(database_url, [edited, *rest])


def migrate_in_new_loop(dsn: str, migrations: list[Migration]) -> list[str]:
    return asyncio.run(migrate_async(dsn, migrations))


@pytest.mark.parametrize("runner", [migrate, migrate_in_new_loop], ids=["sync", "async"])
def test_a_failing_migration_leaves_nothing_behind(
    database_url: str, runner: Callable[[str, list[Migration]], list[str]]
) -> None:
    good = Migration(9001, "9001_good", "CREATE TABLE good (id int);")
    bad = Migration(9002, "9002_bad", "CREATE TABLE bad (id int;")
    before = applied(database_url)
    migrations = [*discover(), good, bad]
    with pytest.raises(MigrationError, match=r"Migration '9002_bad' failed: syntax error"):
        runner(database_url, migrations)
    assert applied(database_url) == before
    with connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('good') AS t").fetchone() == {"t": None}


def test_concurrent_migrations_apply_once(blank_database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate(blank_database_url))
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], [], [m.name for m in discover()]]


def test_a_migration_from_a_newer_release_is_tolerated(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with connect(database_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')")
    with caplog.at_level(logging.WARNING, logger="controller.storage.migrating"):
        assert migrate(database_url) == []
    assert "9999_future" in caplog.text


def test_discover_reads_a_directory(tmp_path: Path) -> None:
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")
    assert [m.name for m in discover(tmp_path)] == ["0001_first", "0002_second"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["1_short.sql"], r"'1_short.sql' is not named NNNN_lower_snake.sql"),
        (["0001_Upper.sql"], r"'0001_Upper.sql' is not named"),
        (["0001_a.sql", "0001_b.sql"], r"share version 1"),
    ],
)
def test_discover_refuses_misnamed_files(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)


def test_the_migrated_schema_has_its_tables(database_url: str) -> None:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()
    assert {r["tablename"] for r in rows} >= {
        "audit_events",
        "step_claims",
        "evidence_packs",
        "plane_manifests",
        "conversations",
        "messages",
        "schema_migrations",
    }


def test_broken_dsn_fails_fast() -> None:
    with pytest.raises(psycopg.OperationalError):
        migrate("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
